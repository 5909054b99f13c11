// The evcm-manager node's editor configuration: site parameters as separate fields (strings, as
// the editor saves them) and the device table as JSON text.
import { z } from 'zod';
import { describeIssues, type DeviceEntry, type Params } from './schema';
import { parseDevices, parseParams, SiteConfigError } from './site';

/** Editor fields that are site parameters, under their vendor names. */
export const EDITOR_PARAM_FIELDS = [
    'title',
    'max_total_current',
    'reserve_current',
    'max_total_evse_current',
    'max_imbalance',
    'imbalance_add',
    'min_pause_time',
    'lb_enabled',
    'disable_policy',
    'cycle_ms',
    'device_defs',
] as const satisfies readonly (keyof Params)[];

const DevicesText = z.string().max(1_000_000);

/**
 * The manager's user table as JSON text, or undefined when its configuration carries none. The
 * editor saves it as `userTable`; flows written before that carry it as `users`, a name Node-RED's
 * editor reserves for config nodes (it drops the property), so that name is read only when
 * `userTable` is missing.
 */
export function userTableText(def: Record<string, unknown>): string | undefined {
    if (typeof def.userTable === 'string') return def.userTable;
    if (typeof def.users === 'string') return def.users;
    return undefined;
}

export interface ManagerSetup {
    params: Params;
    devices: DeviceEntry[];
}

/** Parses the node's editor config; throws a SiteConfigError that names the bad field. */
export function parseManagerConfig(def: Record<string, unknown>): ManagerSetup {
    const raw: Record<string, unknown> = {};
    for (const field of EDITOR_PARAM_FIELDS) {
        const v = def[field];
        if (v !== undefined && v !== '') raw[field] = v;
    }
    const params = parseParams(raw);
    const text = DevicesText.safeParse(def.devices ?? '[]');
    if (!text.success) throw new SiteConfigError(describeIssues(text.error, 'devices'));
    let table: unknown;
    try {
        table = JSON.parse(text.data || '[]');
    } catch (err) {
        throw new SiteConfigError(`devices: not valid JSON (${(err as Error).message})`);
    }
    return { params, devices: parseDevices(table, params.device_defs) };
}
