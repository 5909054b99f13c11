// What /cnf keeps per charging manager besides the Site itself: admin password, users, overrides,
// soft meters, CM variables, values pushed by HTTP-input devices, and writes to register views.
// One context per Site, shared by every evcm-cnf node that serves it.
import type { EvseReading } from '../core/types';
import type { ChargingRule } from '../rules/rules';
import type { CmVariables } from '../rules/variables';
import { isEvse, type EvseEntry } from '../site/schema';
import type { Site } from '../site/site';
import { BudgetLedger, sessionBudget, type SessionBudget } from '../users/budget';
import { CnfAuth, type ScryptCost, type ThrottleOptions } from './auth';
import { DiagLog } from './diag-log';
import { MemoryUsers, type User, type UserDirectory } from './users';

/** override_device flag bits as get_dev_info reports them in `overrides`. */
export const OVERRIDE = {
    chargingDisabled: 1,
    evseRulesDisabled: 2,
    userRulesDisabled: 4,
} as const;

export interface Override {
    flags: number;
    /** Current limit (mA) set with mamps, or null. */
    current: number | null;
}

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

/** One entry of a charging plan (set_cplan): from st for dr minutes of the day, limit lm mA. */
export interface PlanEntry {
    dc: boolean;
    st: number;
    dr: number;
    lm: number;
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
    users?: UserDirectory;
    now?: () => number;
    /** File the diagnostic log appends to (under Node-RED's user directory); none = memory only. */
    diagFile?: string;
    /** Where the manager's log lines go (diagnostic log on and off). */
    log?: (text: string) => void;
}

export class CnfContext {
    readonly auth: CnfAuth;
    readonly users: UserDirectory;
    /** Energy and time used against users' and cards' budgets. */
    readonly budgets = new BudgetLedger();
    readonly overrides = new Map<string, Override>();
    /** soft_meter: offset added to an EVSE's own energy counter (Wh). */
    readonly softMeters = new Map<string, number>();
    readonly ajax = new Map<string, AjaxExtras>();
    /** RFIDs/PINs entered per EVSE (enter_rfid). */
    readonly rfids = new Map<string, { rfid: string; user: string | null; at: number }>();
    /** Register writes to devices served from a register view: dev_id → word address → value. */
    readonly registerWrites = new Map<string, Map<number, number>>();
    /** Charging plans per EVSE (set_cplan); `tmp` ones are not to be persisted. */
    readonly plans = new Map<string, { cplan: PlanEntry[]; tmp: boolean }>();
    readonly now: () => number;
    license = { accepted: false, usageStats: false };
    /** The diagnostic log (set_diag_logging): every cycle's inputs and decisions while on. */
    readonly diag: DiagLog;
    /** Bumped on every change made through this context (view caches key on it). */
    revision = 0;
    /** Counts the changes a listener took to keep (see onChange): each waits for committed(). */
    changes = 0;
    private readonly lastState = new Map<string, number>();
    /** Per wallbox: its state as the reader logic last saw it, and a reader value left from a
     *  session that ended (card#count). */
    private readonly readerState = new Map<string, number>();
    private readonly staleReader = new Map<string, string>();
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
        this.users = options.users ?? new MemoryUsers();
        this.diag = new DiagLog({
            now: this.now,
            ...(options.diagFile ? { file: options.diagFile } : {}),
            ...(options.log ? { log: options.log } : {}),
        });
        this.offCycle = site.manager.events.on('cycle', (report) => this.diag.record(report));
        // Override E switches the wallbox's own charging rules off until the car is unplugged.
        site.setEvseRulesDisabled(
            (id) => ((this.overrides.get(id)?.flags ?? 0) & OVERRIDE.evseRulesDisabled) !== 0,
        );
        // Override U switches the user's rules off at that wallbox until the car is unplugged.
        site.setUserRules((id) => this.userRulesAt(id));
        // Called by the engine once per cycle; no event subscription is left behind.
        site.manager.setExtraLimits(() => {
            this.forgetUnplugged();
            this.takeReaderCards();
            return this.limits(this.recordBudgets());
        });
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

    /** The user identified at a wallbox (card, PIN or user id entered there), if any. */
    private userAt(devId: string) {
        const user = this.rfids.get(devId)?.user;
        return user ? this.users.get(user) : undefined;
    }

    private userRulesAt(devId: string): readonly ChargingRule[] | null {
        if ((this.overrides.get(devId)?.flags ?? 0) & OVERRIDE.userRulesDisabled) return null;
        const rules = this.userAt(devId)?.charging_rules;
        return rules?.length ? rules : null;
    }

    /** The budget the session at a wallbox counts against: the card's, else the user's. */
    sessionBudgetAt(devId: string): SessionBudget | null {
        const entered = this.rfids.get(devId);
        const user = this.userAt(devId);
        if (!entered || !user) return null;
        return sessionBudget(
            user,
            user.rfids.find((r) => r.id === entered.rfid),
        );
    }

    /**
     * Adds what each wallbox charged this cycle to its session's budget; returns the wallboxes
     * whose budget is used up.
     */
    private recordBudgets(): Set<string> {
        const spent = new Set<string>();
        const now = this.now();
        for (const d of this.site.devices) {
            if (!isEvse(d)) continue;
            const session = this.sessionBudgetAt(d.dev_id);
            if (!session) {
                this.budgets.forget(d.dev_id);
                continue;
            }
            const r = this.site.manager.deviceState(d.dev_id).sample.reading as
                EvseReading | undefined;
            const charging = (r?.state === 3 || r?.state === 4) && (r.powerW ?? 1) > 0;
            this.budgets.record(d.dev_id, session, now, {
                energyWh: r?.totalEnergyWh,
                powerW: r?.powerW,
                charging,
            });
            if (this.budgets.exhausted(session, now)) spent.add(d.dev_id);
        }
        return spent;
    }

    private evseState(id: string): number | undefined {
        return (this.site.manager.deviceState(id).sample.reading as EvseReading | undefined)?.state;
    }

    /** A wallbox needs authorisation as soon as a user is assigned to it (vendor rule). */
    needsAuth(devId: string): boolean {
        const d = this.site.device(devId);
        return needsAuthAt(devId, d && isEvse(d) ? d : undefined, this.users.list());
    }

    /** Whether the card, PIN or user id entered at the wallbox belongs to a user allowed there. */
    authorized(devId: string): boolean {
        const entered = this.rfids.get(devId);
        if (!entered?.user) return false;
        const user = this.users.get(entered.user);
        return !!user && this.userAuthorizes(user, entered.rfid, devId);
    }

    /** Whether a card, PIN or user id would authorise charging at the wallbox. */
    authorizes(devId: string, token: string): boolean {
        const id = this.userFor(token);
        const user = id === null ? undefined : this.users.get(id);
        return !!user && this.userAuthorizes(user, token, devId);
    }

    private userAuthorizes(user: User, token: string, devId: string): boolean {
        const card = user.rfids.find((r) => r.id === token);
        if (card && !card.ac_auth) return false;
        const d = this.site.device(devId);
        const listed = d && isEvse(d) && d.users?.includes(user.id);
        return user.dev_ids.includes(devId) || !!listed;
    }

    /** Waiting for authorisation: a car is there, a user is required and none has been given. */
    waitingForAuth(devId: string): boolean {
        return this.plugged(devId) && this.needsAuth(devId) && !this.authorized(devId);
    }

    private plugged(devId: string): boolean {
        const state = this.evseState(devId);
        return state !== undefined && state >= 2 && state <= 4;
    }

    /** The user a card, PIN or user id belongs to. */
    userFor(token: string): string | null {
        return this.users.byRfid(token)?.id ?? this.users.get(token)?.id ?? null;
    }

    /** A card held to a wallbox's own reader (Power Brain register 8096) counts as entered there. */
    private takeReaderCards(): void {
        for (const d of this.site.devices) {
            if (!isEvse(d)) continue;
            const id = d.dev_id;
            const r = this.site.manager.deviceState(id).sample.reading as EvseReading | undefined;
            if (!r) continue;
            const seen = r.rfid ? `${r.rfid}#${r.rfidCount ?? ''}` : '';
            const before = this.readerState.get(id);
            this.readerState.set(id, r.state);
            // What the reader shows when a session ends (or when we first see it with no car)
            // belongs to the past: a wallbox keeps its last card, and it must not let the next
            // car charge. A new presentation changes the card or the reader's count.
            if (r.state === 1 && before !== 1) {
                if (seen) this.staleReader.set(id, seen);
                continue;
            }
            const stale = this.staleReader.get(id);
            if (stale !== undefined && seen !== stale) this.staleReader.delete(id);
            if (!r.rfid || seen === stale || this.rfids.get(id)?.rfid === r.rfid) continue;
            // As with enter_rfid: a card that cannot authorise here does not end a session.
            const user = this.userFor(r.rfid);
            if (!user || (this.needsAuth(id) && !this.authorizes(id, r.rfid))) continue;
            this.rfids.set(id, { rfid: r.rfid, user, at: this.now() });
            this.touch();
        }
    }

    /** Marks a change; with `change`, also tells the listeners what it was (for the store). */
    touch(change?: CnfChange): void {
        this.revision++;
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

    /**
     * Per-EVSE caps: no authorisation yet = 0, a used-up budget = 0, override C = 0,
     * mamps = that current, plans.
     */
    private limits(budgetSpent: ReadonlySet<string>): ReadonlyMap<string, number> | undefined {
        const out = new Map<string, number>();
        const cap = (id: string, mA: number): void => {
            out.set(id, Math.min(mA, out.get(id) ?? Infinity));
        };
        // waitingForAuth for every wallbox, with the device entry at hand and the user list read
        // once: the directory copies its list on every call.
        const users = this.users.list();
        const devices = this.site.devices;
        for (let i = 0; i < devices.length; i++) {
            const d = devices[i]!;
            if (!isEvse(d) || !this.plugged(d.dev_id)) continue;
            if (needsAuthAt(d.dev_id, d, users) && !this.authorized(d.dev_id)) cap(d.dev_id, 0);
        }
        for (const id of budgetSpent) cap(id, 0);
        if (!this.overrides.size && !this.plans.size) return out.size ? out : undefined;
        for (const [id, o] of this.overrides) {
            if (o.flags & OVERRIDE.chargingDisabled) cap(id, 0);
            else if (o.current !== null) cap(id, o.current);
        }
        if (this.plans.size) {
            const t = new Date(this.now());
            const minute = t.getHours() * 60 + t.getMinutes();
            for (const [id, plan] of this.plans) {
                for (const e of plan.cplan) {
                    if (e.dc) continue; // discharge limits concern storage, not wallboxes
                    if ((minute - e.st + 1440) % 1440 < e.dr) cap(id, e.lm);
                }
            }
        }
        return out;
    }

    /** Overrides and entered RFIDs last until the car is unplugged, as with the vendor. */
    private forgetUnplugged(): void {
        // Every wallbox, so that an unplug in the cycle right after a card arrived is seen too.
        for (const d of this.site.devices) {
            if (!isEvse(d)) continue;
            const id = d.dev_id;
            const state = (
                this.site.manager.deviceState(id).sample.reading as EvseReading | undefined
            )?.state;
            if (state === undefined) continue;
            const before = this.lastState.get(id);
            this.lastState.set(id, state);
            if (state === 1 && before !== undefined && before !== 1) {
                if (this.overrides.delete(id)) this.touch();
                if (this.rfids.delete(id)) this.touch();
            }
        }
    }
}

/** Whether a wallbox has users assigned: in its own entry, or in a user's dev_ids. */
function needsAuthAt(devId: string, entry: EvseEntry | undefined, users: readonly User[]): boolean {
    if (entry?.users?.length) return true;
    for (let i = 0; i < users.length; i++) if (users[i]!.dev_ids.includes(devId)) return true;
    return false;
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
