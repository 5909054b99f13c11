// What /cnf keeps per charging manager besides the Site itself: admin password, soft meters,
// values pushed by HTTP-input devices, writes to register views, the diagnostic log. Users,
// entered cards, overrides, plans and budgets belong to the site (site.authorisation and its
// limits stage site.limits), so that their caps hold without /cnf; the context hands them out
// under their /cnf names. One context per Site, shared by every evcm-cnf node that serves it.
import type { CmVariables } from '../rules/variables';
import type { Override, Plan } from '../site/controls';
import type { Site } from '../site/site';
import type { EnteredToken } from '../users/authorisation';
import type { BudgetLedger, SessionBudget } from '../users/budget';
import type { UserDirectory } from '../users/directory';
import { SessionBook, type SessionStorage } from '../sessions/book';
import { CnfAuth, type ScryptCost, type ThrottleOptions } from './auth';
import { DiagLog } from './diag-log';

export { OVERRIDE, type Override, type PlanEntry } from '../site/controls';

export interface AjaxExtras {
    model?: string;
    isVa?: boolean;
    /** set_ajax_evse max_charging_current (mA). */
    maxCurrent?: number;
    soc?: number;
    /** Energy counters pushed by a meter: the last raw value, and what earlier counting adds. */
    importCounter?: { raw: number; offset: number };
    exportCounter?: { raw: number; offset: number };
}

/** What a change through /cnf or a flow node touched, for the persistent store (DESIGN §6). */
export type CnfChange =
    | { kind: 'params'; names: readonly string[]; tmp: boolean }
    /** Added or changed: `fields` are the fields the request set. */
    | { kind: 'device'; devId: string; fields: readonly string[] }
    | { kind: 'device-deleted'; devId: string }
    /** Deleted and recreated: its soft meter and plan are gone. */
    | { kind: 'device-reset'; devId: string }
    | { kind: 'user'; id: string }
    | { kind: 'admin-password' }
    | { kind: 'variables' }
    | { kind: 'soft-meter'; devId: string }
    | { kind: 'plan'; devId: string; tmp: boolean };

export interface CnfContextOptions {
    /** Admin password in clear text as configured (hashed at once, never kept). '' = none. */
    adminPassword?: string;
    scrypt?: ScryptCost;
    throttle?: ThrottleOptions;
    /**
     * The users directory, for callers that make it together with the context: the site's
     * authorisation uses it from now on. The manager node gives its users to the Site instead.
     */
    users?: UserDirectory;
    now?: () => number;
    /** File the diagnostic log appends to (under Node-RED's user directory); none = memory only. */
    diagFile?: string;
    /** Where the manager's log lines go (diagnostic log on and off). */
    log?: (text: string) => void;
    /** Where session records are kept (the log under the user directory); none = memory only. */
    sessionStorage?: SessionStorage;
    onSessionError?: (err: Error) => void;
}

export class CnfContext {
    readonly auth: CnfAuth;
    /** soft_meter: offset added to an EVSE's own energy counter (Wh). */
    readonly softMeters = new Map<string, number>();
    readonly ajax = new Map<string, AjaxExtras>();
    /** Register writes to devices served from a register view: dev_id → word address → value. */
    readonly registerWrites = new Map<string, Map<number, number>>();
    readonly now: () => number;
    license = { accepted: false, usageStats: false };
    /** The diagnostic log (set_diag_logging): every cycle's inputs and decisions while on. */
    readonly diag: DiagLog;
    /** Charging session records: opened by the manager before the first cycle, closed after the
     *  last. */
    readonly sessions: SessionBook;
    private touched = 0;
    /** Counts the changes a listener took to keep (see onChange): each waits for committed(). */
    changes = 0;
    private readonly changeListeners = new Set<(change: CnfChange) => boolean>();
    private committer: (() => Promise<void>) | undefined;
    private readonly offCycle: () => void;

    constructor(
        readonly site: Site,
        options: CnfContextOptions = {},
    ) {
        this.now = options.now ?? Date.now;
        this.auth = new CnfAuth({
            ...(options.scrypt ? { cost: options.scrypt } : {}),
            throttle: { now: this.now, ...options.throttle },
        });
        void this.auth.password.set(options.adminPassword ?? '');
        if (options.users) site.authorisation.useDirectory(options.users);
        this.diag = new DiagLog({
            now: this.now,
            ...(options.diagFile ? { file: options.diagFile } : {}),
            ...(options.log ? { log: options.log } : {}),
        });
        this.offCycle = site.manager.events.on('cycle', (report) => this.diag.record(report));
        this.sessions = new SessionBook(site.sessions, options.sessionStorage ?? null, {
            ...(options.onSessionError ? { onError: options.onSessionError } : {}),
        });
    }

    /** Bumped on every change made through this context, and when a cycle ends overrides or
     *  enters a card (view caches key on it). */
    get revision(): number {
        return this.touched + this.site.limits.revision;
    }

    get users(): UserDirectory {
        return this.site.authorisation.users;
    }

    /** Energy and time used against users' and cards' budgets. */
    get budgets(): BudgetLedger {
        return this.site.limits.budgets;
    }

    /** override_device per EVSE; ends when the car is unplugged. */
    get overrides(): Map<string, Override> {
        return this.site.limits.overrides;
    }

    /** RFIDs/PINs entered per EVSE (enter_rfid, or the wallbox's reader). */
    get rfids(): Map<string, EnteredToken> {
        return this.site.authorisation.rfids;
    }

    /** Charging plans per EVSE (set_cplan); `tmp` ones are not to be persisted. */
    get plans(): Map<string, Plan> {
        return this.site.limits.plans;
    }

    /** Ends what the context keeps running (the diagnostic log) when its manager closes. */
    close(): void {
        this.offCycle();
        this.diag.close();
    }

    /** CM variables live with the site: its formulas read them every cycle. */
    get variables(): CmVariables {
        return this.site.variables;
    }

    /** The budget the session at a wallbox counts against: the card's, else the user's. */
    sessionBudgetAt(devId: string): SessionBudget | null {
        return this.site.authorisation.sessionBudgetAt(devId);
    }

    /** A wallbox needs authorisation as soon as a user is assigned to it (vendor rule). */
    needsAuth(devId: string): boolean {
        return this.site.authorisation.needsAuth(devId);
    }

    /** Whether the card, PIN or user id entered at the wallbox belongs to a user allowed there. */
    authorized(devId: string): boolean {
        return this.site.authorisation.authorized(devId);
    }

    /** Whether a card, PIN or user id would authorise charging at the wallbox. */
    authorizes(devId: string, token: string): boolean {
        return this.site.authorisation.authorizes(devId, token);
    }

    /** Waiting for authorisation: a car is there, a user is required and none has been given. */
    waitingForAuth(devId: string): boolean {
        return this.site.authorisation.waitingForAuth(devId);
    }

    /** The user a card, PIN or user id belongs to. */
    userFor(token: string): string | null {
        return this.site.authorisation.userFor(token);
    }

    /** Marks a change; with `change`, also tells the listeners what it was (for the store). */
    touch(change?: CnfChange): void {
        this.touched++;
        if (!change) return;
        let kept = false;
        for (const listener of this.changeListeners) if (listener(change)) kept = true;
        if (kept) this.changes++;
    }

    /**
     * Resolves once every change reported so far is safe on disk; rejects with a 503 CnfError
     * when it is not saved. Resolves at once without a store.
     */
    committed(): Promise<void> {
        return this.committer ? this.committer() : Promise.resolve();
    }

    /** Installed by the store's persistence (or by a manager whose store cannot be used). */
    setCommitter(committer: (() => Promise<void>) | undefined): void {
        this.committer = committer;
    }

    /**
     * Listens to changes that may need saving; the listener returns whether it keeps the change
     * (a tmp change is not kept). Returns the unsubscribe function.
     */
    onChange(listener: (change: CnfChange) => boolean): () => void {
        this.changeListeners.add(listener);
        return () => this.changeListeners.delete(listener);
    }
}

const contexts = new WeakMap<Site, CnfContext>();

/** The context of a site, made on first use (later options are ignored). */
export function cnfContextFor(site: Site, options: CnfContextOptions = {}): CnfContext {
    let ctx = contexts.get(site);
    if (!ctx) {
        ctx = new CnfContext(site, options);
        contexts.set(site, ctx);
    }
    return ctx;
}
