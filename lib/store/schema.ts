// The store document: everything a manager keeps across restarts that did not come from the
// editor (changes through /cnf or flow nodes), plus what it needs to apply the editor/API
// precedence rule. One JSON file per manager; this schema validates the whole document on every
// load and every change.
//
// Field names inside records (params, device configs, users, RFIDs) are the vendor's API names,
// because that is what the /cnf layer receives and returns.

import { z } from 'zod';

/** The version this code writes; older files are migrated on load (migrations.ts). */
export const STORE_VERSION = 1;

/** Site parameters that are never persisted, as with the vendor (`max_total_cur_prc`). */
export const NOT_PERSISTED_PARAMS: ReadonlySet<string> = new Set(['max_total_cur_prc']);

const jsonRecord = z.record(z.string(), z.json());

/**
 * API overrides of site parameters, by vendor name (`max_total_current`, `reserve_current`,
 * `title`, …). Values are as the API accepted them: numbers, formula strings, booleans.
 * Parameters that are never persisted are dropped.
 */
export const ParamOverridesSchema = jsonRecord.transform((params) => {
    for (const key of NOT_PERSISTED_PARAMS) delete params[key];
    return params;
});

/** A charging rule as the API sends it (api-spec §7.1); refined by the rules layer. */
export const ChargingRuleSchema = z.looseObject({
    days: z.number().int().optional(),
    mode: z.number().int().optional(),
    current: z.number().optional(),
    enabled: z.boolean().optional(),
    udur: z.number().optional(),
    time: z.number().optional(),
    dur: z.number().optional(),
    expr: z.string().optional(),
    input: z.string().optional(),
    price_level: z.number().optional(),
    solar: z.number().optional(),
});

/**
 * Device configuration fields (vendor names, api-spec §5.3–§5.5). For a device added through
 * the API this is its whole configuration; for an editor device only the fields the API changed.
 * Further fields pass through unchanged.
 */
export const DeviceConfigSchema = z.looseObject({
    dev_type: z.string().optional(),
    name: z.string().optional(),
    address: z.string().optional(),
    /** Modbus unit id. */
    id: z.number().int().optional(),
    device_enabled: z.union([z.boolean(), z.number()]).optional(),
    prio: z.number().optional(),
    /** mA; may be a formula. */
    min_charging_cur: z.union([z.number(), z.string()]).optional(),
    max_charging_cur: z.union([z.number(), z.string()]).optional(),
    charging_rules: z.array(ChargingRuleSchema).optional(),
});

export const DeviceEntrySchema = z.object({
    /** true: created through the API (not in the editor); false: overrides an editor device. */
    added: z.boolean(),
    config: DeviceConfigSchema,
});

/** An RFID card or PIN (api-spec §4.6); budgets and validity are refined by the users layer. */
export const RfidSchema = z.looseObject({
    id: z.string().min(1),
    name: z.string().optional(),
    /** The user the card belongs to, if any. */
    user_id: z.string().optional(),
    /** The card authorises charging. */
    ac_auth: z.boolean().optional(),
    /** The card stops / toggles charging. */
    ac_ovch: z.boolean().optional(),
    /** Phases to use, 0 = do not override. */
    used_phases: z.number().int().optional(),
});

/** A user (api-spec §4.6). */
export const UserSchema = z.looseObject({
    /** Secret user id (digits), usable for authorisation. */
    id: z.string().min(1),
    name: z.string().optional(),
    display: z.boolean().optional(),
    /** EVSEs the user may charge at. */
    dev_ids: z.array(z.string()).optional(),
    rfids: z.array(RfidSchema).optional(),
    charging_rules: z.array(ChargingRuleSchema).optional(),
});

/** A persistent CM variable (set_cm_vars without tmp). */
export const StoredVariableSchema = z.object({
    name: z.string().regex(/^[A-Za-z0-9]+$/),
    expr: z.union([z.number(), z.string()]),
});

const wattHours = z.number().finite().nonnegative();

/** Energy (Wh) and charging time (s) used in the period that began at periodStart (ms). */
export const BudgetUsageSchema = z
    .object({
        usedWh: wattHours,
        usedS: z.number().finite().nonnegative(),
        periodStart: z.number().finite(),
    })
    .strict();

/** Energy counters of one device, Wh. soft_meter and total_energy are never lowered by a save. */
export const CountersSchema = z.object({
    soft_meter: wattHours.optional(),
    total_energy: wattHours.optional(),
    /**
     * The device's own counter when total_energy was saved: tells on restart whether the device
     * kept counting or started again lower. Not monotonic.
     */
    own_energy: wattHours.optional(),
});
export type CounterName = keyof z.infer<typeof CountersSchema>;
export const COUNTER_NAMES: readonly CounterName[] = ['soft_meter', 'total_energy'];

/** One entry of a charging plan (set_cplan without tmp). */
export const PlanEntrySchema = z.object({
    dc: z.boolean(),
    st: z.number().int().min(0).max(1439),
    dr: z.number().int().min(1).max(1440),
    lm: z.number().int().min(0),
});

/** A plan with a target (req_energy Wh by departure, Unix s): stored as an object. */
export const PlanWithTargetSchema = z
    .object({
        cplan: z.array(PlanEntrySchema),
        req_energy: z.number().finite().positive(),
        departure: z.number().int(),
    })
    .strict();

export const StoreDocumentSchema = z.object({
    version: z.literal(STORE_VERSION),
    params: ParamOverridesSchema,
    /** By dev_id. */
    devices: z.record(z.string(), DeviceEntrySchema),
    /** dev_ids of editor devices deleted through the API. */
    deleted: z.array(z.string()),
    users: z.array(UserSchema),
    /** RFIDs/PINs not held inside a user object. */
    rfids: z.array(RfidSchema),
    variables: z.array(StoredVariableSchema),
    /** Admin password as a scrypt hash string (`scrypt…`), null while none is set. */
    adminPasswordHash: z.string().startsWith('scrypt').nullable(),
    /** true: the admin password was removed through the API (adminPasswordHash is then null). */
    adminPasswordRemoved: z.boolean().optional(),
    /** By dev_id. */
    counters: z.record(z.string(), CountersSchema),
    /** Charging plans by dev_id (added after version 1 was defined, hence optional). */
    plans: z
        .record(z.string(), z.union([z.array(PlanEntrySchema), PlanWithTargetSchema]))
        .optional(),
    /** Budget usage by `user:<id>` / `rfid:<card id>` (optional for the same reason). */
    budgets: z.record(z.string(), BudgetUsageSchema).optional(),
    /**
     * Item key (`param:<name>`, `device:<dev_id>`, `user:<id>`, `admin_password`) → hash of the
     * editor value last reconciled (for the password a salted scrypt hash, never a fast one).
     */
    editorBaseline: z.record(z.string(), z.string()),
});

export type StoreDocument = z.infer<typeof StoreDocumentSchema>;
export type DeviceConfig = z.infer<typeof DeviceConfigSchema>;
export type DeviceEntry = z.infer<typeof DeviceEntrySchema>;
export type StoredUser = z.infer<typeof UserSchema>;
export type StoredRfid = z.infer<typeof RfidSchema>;
export type StoredVariable = z.infer<typeof StoredVariableSchema>;
export type DeviceCounters = z.infer<typeof CountersSchema>;
export type StoredPlanEntry = z.infer<typeof PlanEntrySchema>;

/** The document of a manager that has nothing stored yet. */
export function emptyDocument(): StoreDocument {
    return {
        version: STORE_VERSION,
        params: {},
        devices: {},
        deleted: [],
        users: [],
        rfids: [],
        variables: [],
        adminPasswordHash: null,
        counters: {},
        editorBaseline: {},
    };
}
