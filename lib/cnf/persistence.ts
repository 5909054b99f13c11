// The manager's persistent state (DESIGN §6) mapped onto its /cnf context and Site.
//
// On start the stored changes are reconciled with the editor config (the later intent wins per
// item) and applied before the site runs; afterwards every change made through /cnf or flow nodes
// is written to the store and on disk before it is acknowledged; energy counters and budget usage
// periodically, with every write, and on close.
//
// What is kept: parameters set without tmp (never max_total_cur_prc), devices added, changed or
// deleted, users with their RFIDs, the saved set of CM variables, the admin password (scrypt hash),
// charging plans set without tmp, per wallbox its energy total, and the budget usage of users and
// cards. A stored item that no longer fits the configuration is reported and kept in the store,
// never dropped silently.

import { join } from 'node:path';
import { isEvse, type DeviceEntry } from '../site/schema';
import { EDITOR_PARAM_FIELDS, userTableText } from '../site/editor';
import {
    ADMIN_PASSWORD_ITEM,
    deviceItem,
    EDITOR_ABSENT,
    hashEditorValue,
    paramItem,
    reconcile,
    userItem,
    type EditorConfig,
} from '../store/reconcile';
import {
    NOT_PERSISTED_PARAMS,
    type DeviceConfig,
    type DeviceCounters,
    type StoreDocument,
    type StoredUser,
} from '../store/schema';
import { StoreError } from '../store/errors';
import type { ManagerStore } from '../store/store';
import { hashPasswordForStore, verifyStoredPassword, type ScryptCost } from './auth';
import type { CnfChange, CnfContext } from './context';
import { notSaved } from './errors';

/** What the editor (the deployed flow) says, for the precedence rule. */
export interface EditorState {
    /** `users` is absent when the flow carries no user table: the stored users then all stay. */
    readonly config: EditorConfig;
    /** The admin password credential in clear text ('' = none). */
    readonly adminPassword: string;
}

/** Default period for saving energy counters (ms). */
export const COUNTER_SAVE_MS = 60_000;

const has = (record: object, key: string): boolean => Object.hasOwn(record, key);

/** A JSON table from the editor (already validated by the manager node). */
function editorTable(text: unknown): Record<string, unknown>[] {
    return JSON.parse(typeof text === 'string' && text.trim() ? text : '[]') as Record<
        string,
        unknown
    >[];
}

/**
 * The editor's items from the manager node's config as the user wrote them (so that a new default
 * in a later version is not taken for a change): the parameter fields it sets (as saved, strings),
 * its device table entries by dev_id, and its users by id. A config without a user table (neither
 * `userTable` nor the older `users`) says nothing about users, which is not the same as an empty
 * table: no user set through the API gives way to it. The config must already have passed
 * parseManagerConfig and parseUsersText.
 */
export function editorStateOf(def: Record<string, unknown>, adminPassword: string): EditorState {
    const params: Record<string, string | number | boolean> = {};
    for (const field of EDITOR_PARAM_FIELDS) {
        const v = def[field];
        if (typeof v === 'string' ? v !== '' : typeof v === 'number' || typeof v === 'boolean') {
            params[field] = v as string | number | boolean;
        }
    }
    const devices: Record<string, DeviceConfig> = {};
    for (const entry of editorTable(def.devices)) {
        const { dev_id: devId, ...config } = entry;
        devices[String(devId)] = config as DeviceConfig;
    }
    const table = userTableText(def);
    if (table === undefined) return { config: { params, devices }, adminPassword };
    const users: Record<string, StoredUser> = {};
    for (const user of editorTable(table)) users[String(user.id)] = user as StoredUser;
    return { config: { params, devices, users }, adminPassword };
}

/** The stored form of a parsed device entry: its fields without dev_id. */
function configOf(entry: DeviceEntry, fields?: readonly string[]): DeviceConfig {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(entry)) {
        if (key === 'dev_id' || value === undefined) continue;
        if (fields && !fields.includes(key)) continue;
        out[key] = value;
    }
    return structuredClone(out) as DeviceConfig;
}

// ---- admin password precedence ----

export interface PasswordReconcile {
    /** The document with the password's baseline (and, if the editor won, no stored password). */
    readonly storeDoc: StoreDocument;
    /** The editor's password replaced the one set through the API. */
    readonly replaced: boolean;
    /** storeDoc differs from the input. */
    readonly changed: boolean;
}

/**
 * The precedence rule for the admin password. The baseline is a salted scrypt hash of the editor
 * value (or the absent marker for none), so that a change of the credential can be seen without
 * keeping the clear text or a fast hash of it.
 */
export async function reconcileAdminPassword(
    editorPassword: string,
    storeDoc: StoreDocument,
    cost?: ScryptCost,
): Promise<PasswordReconcile> {
    const doc = structuredClone(storeDoc);
    const before = doc.editorBaseline[ADMIN_PASSWORD_ITEM];
    const sameAsBefore =
        before === undefined
            ? undefined
            : before === EDITOR_ABSENT
              ? editorPassword === ''
              : editorPassword !== '' && (await verifyStoredPassword(editorPassword, before));
    let replaced = false;
    if (sameAsBefore === false) {
        replaced = doc.adminPasswordHash !== null || doc.adminPasswordRemoved === true;
        doc.adminPasswordHash = null;
        delete doc.adminPasswordRemoved;
    }
    if (sameAsBefore !== true) {
        doc.editorBaseline[ADMIN_PASSWORD_ITEM] = editorPassword
            ? await hashPasswordForStore(editorPassword, cost)
            : EDITOR_ABSENT;
    }
    return { storeDoc: doc, replaced, changed: sameAsBefore !== true };
}

// ---- energy counters ----

/**
 * Keeps each wallbox's energy total (get_dev_info total_energy, soft_meter) from going down: after
 * a restart it continues from the stored total, and when a wallbox's own counter starts again
 * lower (a reboot, a simulation) the soft-meter offset takes up the difference.
 */
export class EnergyCounters {
    private readonly lastOwn = new Map<string, number>();
    /** Stored totals waiting for the wallbox's first counter reading after the start. */
    private readonly pending = new Map<string, { total: number; own: number | undefined }>();

    constructor(
        private readonly ctx: CnfContext,
        stored: Readonly<Record<string, DeviceCounters>>,
    ) {
        for (const [devId, c] of Object.entries(stored)) {
            const d = ctx.site.device(devId);
            if (!d || !isEvse(d) || c.total_energy === undefined) continue;
            // shown as is until the wallbox's own counter is known
            ctx.softMeters.set(devId, c.total_energy);
            this.pending.set(devId, { total: c.total_energy, own: c.own_energy });
        }
    }

    private own(devId: string): number | undefined {
        const reading = this.ctx.site.manager.deviceState(devId).sample.reading as
            { totalEnergyWh?: number } | undefined;
        return reading?.totalEnergyWh;
    }

    /** Once per cycle; returns whether an offset changed. */
    update(): boolean {
        let changed = false;
        const offsets = this.ctx.softMeters;
        for (const d of this.ctx.site.devices) {
            if (!isEvse(d)) continue;
            const own = this.own(d.dev_id);
            if (own === undefined) continue;
            const restore = this.pending.get(d.dev_id);
            if (restore) {
                this.pending.delete(d.dev_id);
                // kept counting: continue from the total; started again lower: start at the total
                const continued = restore.own !== undefined && own >= restore.own;
                offsets.set(d.dev_id, restore.total - (continued ? restore.own! : own));
                changed = true;
            } else {
                const last = this.lastOwn.get(d.dev_id);
                if (last !== undefined && own < last) {
                    offsets.set(d.dev_id, (offsets.get(d.dev_id) ?? 0) + (last - own));
                    changed = true;
                }
            }
            this.lastOwn.set(d.dev_id, own);
        }
        return changed;
    }

    /** An explicit soft_meter value replaces a stored total still waiting to be applied. */
    forget(devId: string): void {
        this.pending.delete(devId);
    }

    /** A deleted device: a device made later with its id starts afresh. */
    drop(devId: string): void {
        this.pending.delete(devId);
        this.lastOwn.delete(devId);
    }

    /** The counters of one wallbox as shown now, or undefined while its stored total waits. */
    current(devId: string): DeviceCounters | undefined {
        if (this.pending.has(devId)) return undefined;
        const own = this.own(devId) ?? 0;
        const total = own + (this.ctx.softMeters.get(devId) ?? 0);
        return { total_energy: Math.max(0, Math.round(total)), own_energy: Math.round(own) };
    }

    /** Counters of every wallbox that has counted something or has a soft meter. */
    snapshot(): Record<string, DeviceCounters> {
        const out: Record<string, DeviceCounters> = {};
        for (const d of this.ctx.site.devices) {
            if (!isEvse(d)) continue;
            const c = this.current(d.dev_id);
            if (c && (c.total_energy! > 0 || this.ctx.softMeters.has(d.dev_id))) {
                out[d.dev_id] = c;
            }
        }
        return out;
    }
}

// ---- restore ----

export interface RestoreReport {
    /** Items whose stored API change gave way to a changed editor value. */
    readonly replaced: readonly string[];
    /** Stored items that could not be applied (they stay in the store). */
    readonly problems: readonly string[];
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Runs `step` on the items again and again while some succeed; returns the last failures. */
async function untilNoProgress<T>(
    items: readonly T[],
    step: (item: T) => Promise<void> | void,
): Promise<{ item: T; error: unknown }[]> {
    let todo = [...items];
    for (;;) {
        const failed: { item: T; error: unknown }[] = [];
        for (const item of todo) {
            try {
                await step(item);
            } catch (error) {
                failed.push({ item, error });
            }
        }
        if (!failed.length || failed.length === todo.length) return failed;
        todo = failed.map((f) => f.item);
    }
}

/** Groups first (others refer to them), then meters (EVSEs attach to them), then EVSEs. */
function rank(config: { dev_type?: unknown; dev_id?: unknown }): number {
    return config.dev_type === 'evse_group' ? 0 : String(config.dev_id).startsWith('M') ? 1 : 2;
}

async function applyStoredDevices(
    ctx: CnfContext,
    editor: EditorConfig,
    doc: StoreDocument,
    effective: Record<string, DeviceConfig>,
    problems: string[],
): Promise<void> {
    const site = ctx.site;
    const deletions = site.devices
        .filter((d) => !has(effective, d.dev_id))
        .sort((a, b) => rank(b) - rank(a));
    for (const { item, error } of await untilNoProgress(deletions, (d) =>
        site.deleteDevice(d.dev_id),
    )) {
        problems.push(
            `${deviceItem(item.dev_id)}: the deletion cannot be applied: ${message(error)}`,
        );
    }
    const changes = Object.keys(doc.devices)
        .filter((devId) => has(effective, devId))
        .map((devId) => ({ ...effective[devId], dev_id: devId }) as Record<string, unknown>)
        .sort((a, b) => rank(a) - rank(b));
    for (const { item, error } of await untilNoProgress(changes, async (c) => {
        await site.setDevice(c);
    })) {
        const devId = String(item.dev_id);
        const what = has(editor.devices, devId) ? 'the change' : 'the device';
        problems.push(`${deviceItem(devId)}: ${what} cannot be applied: ${message(error)}`);
    }
}

/**
 * Reconciles the store with the editor and applies what stays to the context and its site, which
 * must not be running yet. Saves the reconciled document (baselines, dropped overrides).
 */
export async function restoreFromStore(
    ctx: CnfContext,
    store: ManagerStore,
    editor: EditorState,
    options: { scrypt?: ScryptCost } = {},
): Promise<{ report: RestoreReport; counters: EnergyCounters }> {
    const problems: string[] = [];
    const reconciled = reconcile(editor.config, store.document);
    const password = await reconcileAdminPassword(
        editor.adminPassword,
        reconciled.storeDoc,
        options.scrypt,
    );
    const doc = password.storeDoc;
    const replaced = [...reconciled.replaced, ...(password.replaced ? [ADMIN_PASSWORD_ITEM] : [])];
    if (reconciled.changed || password.changed) {
        store.update((draft) => {
            for (const key of Object.keys(draft)) delete (draft as Record<string, unknown>)[key];
            Object.assign(draft, structuredClone(doc));
        });
    }
    const site = ctx.site;

    // Parameters: all together, else one by one (a pair may only be valid together).
    const params = Object.fromEntries(
        Object.entries(doc.params).filter(([name]) => !NOT_PERSISTED_PARAMS.has(name)),
    );
    if (Object.keys(params).length) {
        try {
            site.setParams(params);
        } catch {
            for (const { item, error } of await untilNoProgress(Object.entries(params), (p) => {
                site.setParams({ [p[0]]: p[1] });
            })) {
                problems.push(`${paramItem(item[0])}: ${message(error)}`);
            }
        }
    }

    await applyStoredDevices(ctx, editor.config, doc, reconciled.effective.devices, problems);

    // Users: the stored ones replace or join the editor's (a card may move between users).
    const storedIds = new Set(doc.users.map((u) => u.id));
    const users = reconciled.effective.users.filter((u) => storedIds.has(u.id));
    for (const { item, error } of await untilNoProgress(users, (u) => {
        ctx.users.set(u);
    })) {
        problems.push(`${userItem(item.id)}: ${message(error)}`);
    }

    try {
        if (doc.adminPasswordHash !== null)
            await ctx.auth.password.setStored(doc.adminPasswordHash);
        else if (doc.adminPasswordRemoved) await ctx.auth.password.set('');
    } catch (err) {
        problems.push(`${ADMIN_PASSWORD_ITEM}: ${message(err)}`);
    }

    if (doc.variables.length) {
        try {
            ctx.variables.setMany(doc.variables);
        } catch {
            for (const v of doc.variables) {
                try {
                    ctx.variables.set(v.name, v.expr);
                } catch (err) {
                    problems.push(`variable ${v.name}: ${message(err)}`);
                }
            }
        }
    }
    ctx.variables.markSaved();

    for (const [devId, stored] of Object.entries(doc.plans ?? {})) {
        const d = site.device(devId);
        if (!d || !isEvse(d)) {
            problems.push(`plan of ${devId}: no such wallbox`);
            continue;
        }
        if (Array.isArray(stored)) {
            ctx.plans.set(devId, { cplan: structuredClone(stored), tmp: false });
            continue;
        }
        // A target counts again from the restart (what was charged before is not stored); one
        // whose departure has passed is over.
        const departure = stored.departure * 1000;
        const target =
            departure > site.now()
                ? { energyWh: stored.req_energy, departure, chargedWh: 0 }
                : undefined;
        if (!stored.cplan.length && !target) continue;
        ctx.plans.set(devId, {
            cplan: structuredClone(stored.cplan),
            tmp: false,
            ...(target ? { target } : {}),
        });
    }

    ctx.budgets.restore(doc.budgets ?? {});

    const counters = new EnergyCounters(ctx, doc.counters);
    ctx.touch();
    return { report: { replaced, problems }, counters };
}

// ---- saving changes ----

/** Whether a store keeps a change: not one sent with tmp=1, not max_total_cur_prc alone. */
export function keptChange(change: CnfChange): boolean {
    if (change.kind === 'params')
        return !change.tmp && change.names.some((n) => !NOT_PERSISTED_PARAMS.has(n));
    if (change.kind === 'plan') return !change.tmp;
    return true;
}

export interface PersistenceOptions {
    /** Period for saving energy counters (ms). */
    readonly counterSaveMs?: number;
    /** A change that could not be saved, or a write that failed. Never throws. */
    readonly onProblem: (err: Error) => void;
    readonly scrypt?: ScryptCost;
}

/**
 * Saves every change made through the context to the store, from restore to close, and answers
 * the context's committed(): a change is acknowledged once the write that holds it is on disk.
 * A change whose write fails stays in effect and pending, is retried with the next write (at the
 * latest on the next counter save), and its request is told it is not saved.
 */
export class ManagerPersistence {
    private readonly offCycle: () => void;
    private readonly offError: () => void;
    private readonly timer: ReturnType<typeof setInterval>;
    private closing: Promise<void> | undefined;
    /** A change that did not reach the store: the next committed() says it is not saved. */
    private unsaved: unknown;

    private constructor(
        private readonly ctx: CnfContext,
        private readonly store: ManagerStore,
        private readonly editor: EditorState,
        readonly counters: EnergyCounters,
        private readonly options: PersistenceOptions,
    ) {
        // Listens as long as the context lives: a change after close is refused as not saved.
        ctx.onChange((change) => this.record(change));
        ctx.setCommitter(() => this.committed());
        this.offCycle = ctx.site.manager.events.on('cycle', () => {
            if (counters.update()) ctx.touch();
        });
        this.offError = store.onError((err) => options.onProblem(err));
        // Energy counters and budget usage ride along with every write.
        store.setBeforeWrite(() => this.guard(() => this.saveCounters()));
        this.timer = setInterval(() => {
            this.guard(() => this.saveCounters());
            // also retries a write that failed when no change has come since
            store.commit().catch(() => undefined);
        }, options.counterSaveMs ?? COUNTER_SAVE_MS);
        this.timer.unref?.();
    }

    /** Applies the store to the context (see restoreFromStore), then saves its changes. */
    static async start(
        ctx: CnfContext,
        store: ManagerStore,
        editor: EditorState,
        options: PersistenceOptions,
    ): Promise<{ persistence: ManagerPersistence; report: RestoreReport }> {
        const opts = options.scrypt ? { scrypt: options.scrypt } : {};
        const { report, counters } = await restoreFromStore(ctx, store, editor, opts);
        return {
            persistence: new ManagerPersistence(ctx, store, editor, counters, options),
            report,
        };
    }

    /**
     * Saves the energy counters of every wallbox (they never go down in the store) and the
     * budget usage of users and cards.
     */
    saveCounters(): void {
        const saved = this.store.document;
        const budgets = this.ctx.budgets.snapshot();
        const budgetsChanged = JSON.stringify(budgets) !== JSON.stringify(saved.budgets ?? {});
        const snapshot = this.counters.snapshot();
        const changed = Object.entries(snapshot).filter(
            ([devId, c]) =>
                saved.counters[devId]?.total_energy !== c.total_energy ||
                saved.counters[devId]?.own_energy !== c.own_energy,
        );
        if (!budgetsChanged && !changed.length) return;
        this.store.update((doc) => {
            if (budgetsChanged) doc.budgets = budgets;
            for (const [devId, c] of changed)
                doc.counters[devId] = { ...doc.counters[devId], ...c };
        });
    }

    /** Saves the counters, writes what is pending and stops listening. Never rejects. */
    close(): Promise<void> {
        this.closing ??= (async () => {
            this.offCycle();
            clearInterval(this.timer);
            this.store.setBeforeWrite(undefined);
            this.guard(() => this.saveCounters());
            // a failed write has reached onProblem through onError
            await this.store.close().catch(() => undefined);
            this.offError();
        })();
        return this.closing;
    }

    private report(err: unknown): void {
        try {
            this.options.onProblem(err instanceof Error ? err : new Error(String(err)));
        } catch {
            // a reporter that fails must not stop the caller
        }
    }

    /**
     * A change reported by the context: into the store, or remembered as not saved. Returns
     * whether its request has to wait for committed() (not for changes that are not kept).
     */
    private record(change: CnfChange): boolean {
        if (this.closing) {
            if (!keptChange(change)) return false;
            this.unsaved = new StoreError('STORE_CLOSED', 'the manager is stopping');
            return true;
        }
        const before = this.store.revision;
        try {
            this.save(change);
        } catch (err) {
            this.unsaved = err;
            this.report(err);
            return true;
        }
        return this.store.revision !== before;
    }

    /**
     * Resolves once the changes made so far are on disk; rejects with a 503 CnfError when one of
     * them did not reach the store or its write failed.
     */
    private async committed(): Promise<void> {
        // changes made before close are in close's final write
        if (this.closing) await this.closing;
        const unsaved = this.unsaved;
        this.unsaved = undefined;
        if (unsaved !== undefined) throw notSaved(unsaved);
        try {
            await this.store.commit();
        } catch (err) {
            throw notSaved(err);
        }
    }

    private guard(action: () => void): void {
        try {
            action();
        } catch (err) {
            this.report(err);
        }
    }

    /** The editor's hash of an item, for recording a baseline the first time it is stored. */
    private editorHash(record: object, key: string): string {
        return has(record, key)
            ? hashEditorValue((record as Record<string, unknown>)[key])
            : EDITOR_ABSENT;
    }

    private save(change: CnfChange): void {
        const { ctx, store, editor } = this;
        const config = editor.config;
        switch (change.kind) {
            case 'params': {
                if (change.tmp) return;
                const names = change.names.filter((n) => !NOT_PERSISTED_PARAMS.has(n));
                if (!names.length) return;
                const params = ctx.site.params as unknown as Record<string, unknown>;
                store.update((doc) => {
                    for (const name of names) {
                        doc.params[name] = structuredClone(params[name]) as never;
                        doc.editorBaseline[paramItem(name)] ??= this.editorHash(
                            config.params,
                            name,
                        );
                    }
                });
                return;
            }
            case 'device': {
                const entry = ctx.site.device(change.devId);
                if (!entry) return;
                const devId = change.devId;
                const inEditor = has(config.devices, devId);
                store.update((doc) => {
                    const wasDeleted = doc.deleted.includes(devId);
                    doc.deleted = doc.deleted.filter((id) => id !== devId);
                    const stored = doc.devices[devId];
                    if (wasDeleted || (!stored && !inEditor)) {
                        // a new device, or an editor device deleted and made again: all of it
                        doc.devices[devId] = { added: !inEditor, config: configOf(entry) };
                    } else if (stored) {
                        stored.config = { ...stored.config, ...configOf(entry, change.fields) };
                    } else {
                        doc.devices[devId] = {
                            added: false,
                            config: configOf(entry, change.fields),
                        };
                    }
                });
                return;
            }
            case 'device-deleted': {
                const devId = change.devId;
                this.counters.drop(devId);
                store.update((doc) => {
                    delete doc.devices[devId];
                    if (has(config.devices, devId) && !doc.deleted.includes(devId)) {
                        doc.deleted.push(devId);
                    }
                    delete doc.counters[devId];
                    if (doc.plans) delete doc.plans[devId];
                });
                return;
            }
            case 'device-reset': {
                this.counters.forget(change.devId);
                const c = this.counters.current(change.devId);
                if (c) store.setCounters(change.devId, c);
                store.update((doc) => {
                    if (doc.plans) delete doc.plans[change.devId];
                });
                return;
            }
            case 'soft-meter': {
                this.counters.forget(change.devId);
                const c = this.counters.current(change.devId);
                if (c) store.setCounters(change.devId, c);
                return;
            }
            case 'user': {
                const user = ctx.users.get(change.id);
                if (!user) return;
                store.update((doc) => {
                    const copy = structuredClone(user) as StoredUser;
                    const at = doc.users.findIndex((u) => u.id === user.id);
                    if (at >= 0) doc.users[at] = copy;
                    else doc.users.push(copy);
                    doc.editorBaseline[userItem(user.id)] ??= this.editorHash(
                        config.users ?? {},
                        user.id,
                    );
                });
                return;
            }
            case 'admin-password': {
                const hash = ctx.auth.password.stored();
                store.update((doc) => {
                    doc.adminPasswordHash = hash;
                    if (hash === null) doc.adminPasswordRemoved = true;
                    else delete doc.adminPasswordRemoved;
                });
                return;
            }
            case 'variables': {
                if (!ctx.variables.dirty) return;
                const vars = ctx.variables.persistent();
                store.update((doc) => {
                    doc.variables = structuredClone(vars);
                });
                ctx.variables.markSaved();
                return;
            }
            case 'plan': {
                if (change.tmp) return;
                const plan = ctx.plans.get(change.devId);
                store.update((doc) => {
                    doc.plans ??= {};
                    if (!plan) delete doc.plans[change.devId];
                    else if (plan.target) {
                        doc.plans[change.devId] = {
                            cplan: structuredClone(plan.cplan),
                            req_energy: plan.target.energyWh,
                            departure: Math.round(plan.target.departure / 1000),
                        };
                    } else doc.plans[change.devId] = structuredClone(plan.cplan);
                });
                return;
            }
        }
    }
}

/** Folder under Node-RED's userDir that holds the managers' store files. */
export const STORE_DIR = 'evcm-charging-manager';

/**
 * The store file of a manager: `<userDir>/evcm-charging-manager/<node id>.json`. A node id that
 * is not a plain file name (hand-written flows may use anything) is replaced by its hash.
 */
export function storeFileFor(userDir: string, nodeId: string): string {
    const name = /^[A-Za-z0-9_-]{1,64}$/.test(nodeId)
        ? nodeId
        : `id-${hashEditorValue(nodeId).slice(0, 24)}`;
    return join(userDir, STORE_DIR, `${name}.json`);
}
