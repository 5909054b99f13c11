// The editor/API precedence rule (DESIGN §6): the later intent wins per item. Items are each
// global parameter (`param:<name>`), each device's settings (`device:<dev_id>`) and each user
// (`user:<id>`, RFIDs included). The admin password (`admin_password`) follows the same rule but
// needs a slow hash, so lib/cnf/persistence.ts handles it.
//
// The store remembers, per item, a hash of the editor value it last reconciled against
// (`editorBaseline`). On every start or deploy:
//   - editor value unchanged since then → a stored API override of the item stays in force;
//   - editor value changed (including added or removed) → the deploy is the later intent: the
//     stored override of that item is dropped, and an API deletion of that device is undone;
//   - no baseline yet (a store from before the item was tracked) → nothing is known to have
//     changed, so the override stays: nothing a user set is dropped on a guess.
// Pure: the store document is copied, never modified.

import { createHash } from 'node:crypto';
import type { DeviceConfig, StoreDocument, StoredUser } from './schema';

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface EditorConfig {
    /** Site parameters as set in the editor, by vendor name (`max_total_current`, …). */
    readonly params: Readonly<Record<string, JsonValue>>;
    /** Devices as set in the editor, by dev_id, in editor order. */
    readonly devices: Readonly<Record<string, DeviceConfig>>;
    /** Users as set in the editor, by id (absent: the editor says nothing about users; every stored user stays). */
    readonly users?: Readonly<Record<string, StoredUser>>;
}

export interface EffectiveConfig {
    params: Record<string, JsonValue>;
    /** Editor devices (minus those deleted through the API), then devices added through the API. */
    devices: Record<string, DeviceConfig>;
    /** Editor users, each replaced by its stored API version if that stays, then API-added users. */
    users: StoredUser[];
}

export interface ReconcileResult {
    readonly effective: EffectiveConfig;
    readonly storeDoc: StoreDocument;
    /** True when storeDoc differs from the input (the caller should save it). */
    readonly changed: boolean;
    /** Items whose stored API change was replaced by the editor's value. */
    readonly replaced: readonly string[];
}

/** Baseline marker for an item the editor did not have. */
export const EDITOR_ABSENT = '-';
const ABSENT = EDITOR_ABSENT;

export const paramItem = (name: string): string => `param:${name}`;
export const deviceItem = (devId: string): string => `device:${devId}`;
export const userItem = (id: string): string => `user:${id}`;
export const ADMIN_PASSWORD_ITEM = 'admin_password';

/** JSON with object keys sorted, so that equal values hash equally whatever their key order. */
function canonicalJson(value: unknown): string {
    if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
    if (value !== null && typeof value === 'object') {
        const entries = Object.entries(value as Record<string, unknown>)
            .filter(([, v]) => v !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
    }
    return JSON.stringify(value ?? null);
}

/** Hash of an editor value, independent of key order. */
export function hashEditorValue(value: unknown): string {
    return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 32);
}

export function reconcile(editor: EditorConfig, storeDoc: StoreDocument): ReconcileResult {
    const doc = structuredClone(storeDoc);
    const baseline = doc.editorBaseline;
    const replaced: string[] = [];
    const has = (record: object, key: string): boolean => Object.hasOwn(record, key);

    // Parameters
    const params: Record<string, JsonValue> = {};
    const paramNames = new Set([...Object.keys(editor.params), ...Object.keys(doc.params)]);
    for (const key of Object.keys(baseline)) {
        if (key.startsWith('param:')) paramNames.add(key.slice('param:'.length));
    }
    for (const name of paramNames) {
        const item = paramItem(name);
        const inEditor = has(editor.params, name);
        const hash = inEditor ? hashEditorValue(editor.params[name]) : ABSENT;
        const before = baseline[item];
        if (before !== undefined && before !== hash && has(doc.params, name)) {
            delete doc.params[name];
            replaced.push(item);
        }
        if (inEditor || has(doc.params, name)) baseline[item] = hash;
        else delete baseline[item];

        if (has(doc.params, name)) params[name] = doc.params[name] as JsonValue;
        else if (inEditor) params[name] = editor.params[name]!;
    }

    // Devices
    const deleted = new Set(doc.deleted);
    const devIds = new Set([
        ...Object.keys(editor.devices),
        ...Object.keys(doc.devices),
        ...deleted,
    ]);
    for (const key of Object.keys(baseline)) {
        if (key.startsWith('device:')) devIds.add(key.slice('device:'.length));
    }
    for (const devId of devIds) {
        const item = deviceItem(devId);
        const inEditor = has(editor.devices, devId);
        const hash = inEditor ? hashEditorValue(editor.devices[devId]) : ABSENT;
        const entry = doc.devices[devId];
        // a device added through the API was, by definition, not in the editor then
        const before = baseline[item] ?? (entry?.added ? ABSENT : undefined);
        if (before !== undefined && before !== hash) {
            if (entry) {
                delete doc.devices[devId];
                replaced.push(item);
            }
            if (deleted.delete(devId) && !entry) replaced.push(item);
        }
        // a deletion of a device the editor no longer has hides nothing
        if (!inEditor) deleted.delete(devId);
        if (inEditor || has(doc.devices, devId)) baseline[item] = hash;
        else delete baseline[item];
    }
    doc.deleted = doc.deleted.filter((devId) => deleted.has(devId));

    const devices: Record<string, DeviceConfig> = {};
    for (const [devId, config] of Object.entries(editor.devices)) {
        if (deleted.has(devId)) continue;
        const entry = doc.devices[devId];
        devices[devId] = entry ? { ...config, ...entry.config } : { ...config };
    }
    for (const [devId, entry] of Object.entries(doc.devices)) {
        // an override of a device the editor no longer has is kept, but there is nothing to apply it to
        if (!has(devices, devId) && entry.added) devices[devId] = { ...entry.config };
    }

    // Users: a stored user replaces the editor's user with the same id as a whole.
    const users: StoredUser[] = [];
    if (editor.users) {
        const editorUsers = editor.users;
        const stored = new Map(doc.users.map((u) => [u.id, u]));
        const userIds = new Set([...Object.keys(editorUsers), ...stored.keys()]);
        for (const key of Object.keys(baseline)) {
            if (key.startsWith('user:')) userIds.add(key.slice('user:'.length));
        }
        for (const id of userIds) {
            const item = userItem(id);
            const inEditor = has(editorUsers, id);
            const hash = inEditor ? hashEditorValue(editorUsers[id]) : ABSENT;
            const before = baseline[item];
            if (before !== undefined && before !== hash && stored.delete(id)) replaced.push(item);
            if (inEditor || stored.has(id)) baseline[item] = hash;
            else delete baseline[item];
        }
        doc.users = doc.users.filter((u) => stored.get(u.id) === u);
        for (const [id, user] of Object.entries(editorUsers)) {
            users.push(structuredClone(stored.get(id) ?? user));
        }
        for (const user of doc.users) {
            if (!has(editorUsers, user.id)) users.push(structuredClone(user));
        }
    } else {
        users.push(...structuredClone(doc.users));
    }

    const changed = canonicalJson(doc) !== canonicalJson(storeDoc);
    return { effective: { params, devices, users }, storeDoc: doc, changed, replaced };
}
