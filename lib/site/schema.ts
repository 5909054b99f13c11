// The site as users and the vendor's API describe it: global parameters and a device table with
// the vendor's field names. Validated with zod at every boundary (editor, /cnf, store); numbers
// are coerced because the Node-RED editor and query strings deliver strings.
import { z } from 'zod';
import type { DeviceDefinition } from '../devices/definition';
import { isModbusDevType, userDefinitionProblems } from '../devices/registry';
import { definitionIssues } from '../devices/defined-device';
import { hashPassword, isPasswordHash } from '../ocpp/credentials';
import { ChargingRuleSchema } from '../rules/rules';
import { numberOrFormula } from './formula-scope';

/** JSON text → its value (arrays and objects only); anything else is left for the schema. */
function jsonText(v: unknown): unknown {
    if (typeof v !== 'string' || !/^\s*[[{]/.test(v)) return v;
    try {
        return JSON.parse(v) as unknown;
    } catch {
        return v;
    }
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** A current (mA): a fraction is rounded to whole mA, as the vendor's parser takes it. */
const milliamps = (min: number, max: number) =>
    z.coerce.number().finite().transform(Math.round).pipe(z.number().min(min).max(max));
const bool = z
    .union([z.boolean(), z.literal(0), z.literal(1), z.enum(['0', '1', 'true', 'false'])])
    .transform((v) => v === true || v === 1 || v === '1' || v === 'true');

/** Top of a wallbox's current setting (mA). */
const MAX_EVSE_CURRENT = 80_000;

/** Global parameters (vendor names; times in the vendor's units, seconds unless named _ms). */
export const ParamsSchema = z
    .object({
        title: z.string().max(200).default(''),
        desc: z.string().max(2000).default(''),
        /** The grid connection's limit per phase (mA): a number or a formula. */
        max_total_current: numberOrFormula(0, 10_000_000).default(32_000),
        reserve_current: milliamps(0, 1_000_000).default(2000),
        max_total_evse_current: milliamps(0, 10_000_000).default(0),
        max_total_cur_prc: int(1, 100).default(100),
        max_imbalance: milliamps(0, 1_000_000).default(0),
        imbalance_add: bool.default(false),
        min_pause_time: int(0, 86_400).default(300),
        lb_enabled: bool.default(true),
        disable_policy: z.coerce
            .number()
            .int()
            .refine((v) => v === -1 || v === 0 || v === 1, 'disable_policy must be -1, 0 or 1')
            .default(0),
        /** After a reduction, raises wait this long (s). */
        increase_hold_time: int(0, 3600).default(10),
        /** Largest raise per cycle (mA). */
        max_increase_per_cycle: milliamps(100, 100_000).default(2000),
        /** Cut after an overdraw lasts this long (s). */
        overdraw_penalty_time: int(0, 86_400).default(300),
        /** A car drawing less than given this long is counted at its draw (s). */
        underdraw_time: int(0, 86_400).default(60),
        underdraw_margin: milliamps(0, 32_000).default(2000),
        voltage: int(100, 400).default(230),
        // Phase switching (wallboxes with switch_phases): delays and the interval in s.
        /** One → three phases once three have been possible this long (the vendor's "delay for
         *  switching to 3-phase"). */
        phase_up_delay: int(0, 86_400).default(300),
        /** Three → one phase once one has been better this long. */
        phase_down_delay: int(0, 86_400).default(60),
        /** Shortest time between two automatic switches of a wallbox. */
        phase_switch_interval: int(0, 86_400).default(600),
        /** Most automatic switches per charging session. */
        phase_switch_max: int(0, 1000).default(10),
        /** Three phases only with this much more than the minimum per phase (mA). */
        phase_up_threshold: milliamps(0, 32_000).default(1000),
        /** Longest wait for the car to stop drawing before a switch (s). */
        phase_stop_wait: int(1, 600).default(20),
        /** The car stays stopped this long after a switch (s; the vendor waits 120). */
        phase_settle_time: int(0, 600).default(30),
        /** Control period (ms). */
        cycle_ms: int(200, 60_000).default(1000),
        /**
         * The user's own Modbus device definitions (lib/devices/definition.ts), kept as written;
         * a device whose dev_type is one of theirs runs on it. JSON text is taken too (query
         * strings, the editor's field).
         */
        device_defs: z
            .preprocess(jsonText, z.array(z.unknown()))
            .superRefine((defs, ctx) => {
                for (const p of userDefinitionProblems(defs)) {
                    ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
                }
            })
            .transform((defs) => defs as DeviceDefinition[])
            .default([]),
        /** Home battery: below this SoC (%) it charges before the car gets surplus; 0 = off. */
        battery_priority_soc: int(0, 100).default(0),
        /** A "storage all" battery's discharge is surplus only from this SoC (%); 0 = always. */
        battery_buffer_soc: int(0, 100).default(0),
    })
    .strict();
export type Params = z.output<typeof ParamsSchema>;

/** Device types with drivers of their own; every other type is a Modbus definition (registry). */
const OWN_TYPES: readonly string[] = [
    'evse_sim',
    'evse_ajax',
    'evse_ocpp',
    'evse_group',
    'meter_sim',
    'meter_ajax',
];
const EVSE_TYPE = /^evse_[a-z0-9_]+$/;
const METER_TYPE = /^(meter|inverter)_[a-z0-9_]+$/;

/** A wallbox type (`evse_…`, not the group). */
export function isEvseType(type: unknown): boolean {
    return typeof type === 'string' && EVSE_TYPE.test(type) && type !== 'evse_group';
}
/** A meter type (`meter_…` or `inverter_…`: an inverter is read as a meter). */
export function isMeterType(type: unknown): boolean {
    return typeof type === 'string' && METER_TYPE.test(type);
}

/** Whether a device of this type can be driven: one of ours, a built-in or a user definition. */
export function knownDevType(type: unknown, user: readonly DeviceDefinition[] = []): boolean {
    return typeof type === 'string' && (OWN_TYPES.includes(type) || isModbusDevType(type, user));
}

/**
 * A user id: digits, kept as text. A number is taken only while it is exact (older configs wrote
 * ids as numbers); larger ids must be strings.
 */
const userId = z.union([z.string(), z.number()]).transform((id, ctx) => {
    const text = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : id;
    if (typeof text === 'string' && /^[0-9]{1,20}$/.test(text)) return text;
    ctx.addIssue({
        code: 'custom',
        message:
            typeof id === 'number' && Number.isInteger(id) && id > 0
                ? 'user ids above 2^53 must be strings'
                : 'a user id is 1..20 digits',
    });
    return z.NEVER;
});

const common = {
    dev_type: z.string(),
    dev_id: z.string().regex(/^[EM][1-9][0-9]{0,4}$/, 'dev_id must be E<n> or M<n>'),
    name: z.string().max(100).default(''),
    desc: z.string().max(500).default(''),
    number: int(0, 1_000_000).default(0),
    address: z.string().max(200).default(''),
    /** Modbus unit id. */
    id: int(0, 255).default(1),
    device_enabled: bool.default(true),
    /** dev_id of the group this device belongs to ('' = main). */
    group: z
        .union([
            z.literal(''),
            z.literal(0),
            z.literal('0'),
            z.string().regex(/^E[1-9][0-9]{0,4}$/),
        ])
        .transform((g) => (g === 0 || g === '0' ? '' : g))
        .default(''),
    phase_rotation: z.coerce
        .number()
        .refine((v) => v === 0 || v === 120 || v === 240, 'phase_rotation must be 0, 120 or 240')
        .default(0),
    /** A reading older than this counts as missing (s). */
    stale_after: int(1, 3600).optional(),
};

export const EvseEntrySchema = z
    .object({
        ...common,
        dev_type: z.string().refine(isEvseType, 'a wallbox type starts with evse_'),
        dev_id: common.dev_id.refine((id) => id.startsWith('E'), 'an EVSE dev_id starts with E'),
        label: z.string().max(100).default(''),
        min_charging_cur: milliamps(6000, 80_000).default(6000),
        /** mA: a number or a formula evaluated every cycle (0 while it cannot be evaluated). */
        max_charging_cur: numberOrFormula(6000, MAX_EVSE_CURRENT).default(16_000),
        prio: int(0, 100).default(1),
        used_phases: int(0, 7).default(0),
        /**
         * 1p/3p switching (the vendor's per-wallbox `switch_phases`: −1 automatic, 1 or 3 fixed);
         * 0 or absent: the wallbox is never switched. The driver must be able to switch (Power
         * Brain relay 8087, OCPP numberPhases, evse_ajax through its control object).
         */
        switch_phases: z.coerce
            .number()
            .refine(
                (v) => v === -1 || v === 0 || v === 1 || v === 3,
                'switch_phases must be -1, 0, 1 or 3',
            )
            .optional(),
        /**
         * Current while site measurements are stale: 0 = pause; else within [min, max]. A
         * wallbox with a fail-safe of its own (Power Brain) also falls back to it when the
         * manager stops talking to it for fail_safe_duration. Default: min_charging_cur.
         */
        fail_safe_cur: milliamps(0, 80_000).optional(),
        /** Power Brain: seconds without communication before the wallbox itself goes to fail_safe_cur (default 180). */
        fail_safe_duration: int(5, 86_400).optional(),
        attach: z
            .string()
            .regex(/^M[1-9][0-9]{0,4}$/)
            .optional(),
        /** Ids of the users allowed here; ids are strings (leading zeros, more than 53 bits). */
        users: z.array(userId).max(10_000).optional(),
        /** Charging stops for this session when the car's current stays below this (mA); 0 = off. */
        battery_save_threshold: milliamps(0, 80_000).optional(),
        // Kept and shown for clients that send the vendor's whole device object back.
        enable_snooze: bool.optional(),
        enable_wakeup: bool.optional(),
        /** RFID used for OCPP when none is presented. */
        fixed_rfid: z
            .string()
            .regex(/^[0-9A-Za-z]{0,32}$/, 'must be 0..32 digits or letters')
            .optional(),
        ocpp_gateway_client_id: z.string().max(100).optional(),
        /**
         * evse_ocpp: the charge point's HTTP Basic password (security profile 1/2). Kept only as
         * an scrypt hash: a plain value is hashed when it comes in; '' = no password.
         */
        ocpp_password: z
            .string()
            .max(500)
            .transform((v) => (v === '' || isPasswordHash(v) ? v : hashPassword(v)))
            .optional(),
        /** The soft meter's value as last set with the device (Wh). */
        soft_meter: z.coerce.number().finite().min(0).max(1e13).transform(Math.round).optional(),
        /** The wallbox's charging rules (vendor format), evaluated every cycle. */
        charging_rules: z.array(ChargingRuleSchema).max(100).optional(),
        // Simulation: the car behind an evse_sim.
        sim_plugged: bool.default(true),
        sim_car_current: int(1000, 80_000).default(16_000),
        sim_car_phases: z.coerce.number().int().min(1).max(3).default(3),
        sim_battery_wh: int(1000, 500_000).default(60_000),
        sim_soc: z.coerce.number().min(0).max(1).default(0.3),
    })
    .strict()
    .refine(
        (e) => typeof e.max_charging_cur !== 'number' || e.max_charging_cur >= e.min_charging_cur,
        {
            message: 'max_charging_cur must be at least min_charging_cur',
            path: ['max_charging_cur'],
        },
    )
    .refine(
        (e) =>
            e.fail_safe_cur === undefined ||
            e.fail_safe_cur === 0 ||
            (e.fail_safe_cur >= e.min_charging_cur &&
                e.fail_safe_cur <= staticMaxCurrent(e.max_charging_cur)),
        {
            message: 'fail_safe_cur must be 0 or within [min_charging_cur, max_charging_cur]',
            path: ['fail_safe_cur'],
        },
    );
export type EvseEntry = z.output<typeof EvseEntrySchema>;

/** Highest a wallbox's current can be in any cycle: its number, or the field's top for a formula. */
export function staticMaxCurrent(maxChargingCur: number | string): number {
    return typeof maxChargingCur === 'number' ? maxChargingCur : MAX_EVSE_CURRENT;
}

export const MeterEntrySchema = z
    .object({
        ...common,
        dev_type: z.string().refine(isMeterType, 'a meter type starts with meter_ or inverter_'),
        dev_id: common.dev_id.refine((id) => id.startsWith('M'), 'a meter dev_id starts with M'),
        /** 0 display, 1 consumption, 2 production, 3 grid demand, 4 EV, 5 storage home, 6 storage all. */
        role: int(0, 6).default(0),
        invert: bool.default(false),
        is_va: bool.default(false),
        /** meter_modbus: the register map (checked by the driver). */
        registers: z.unknown().optional(),
        // Simulation: what a meter_sim sees.
        sim_base_current: int(0, 100_000).default(1500),
        sim_step_current: int(0, 100_000).default(12_000),
        sim_pv_peak_w: int(0, 1_000_000).default(0),
        sim_seed: int(0, 1_000_000).default(1),
        /** How often the household load may change (s). */
        sim_step_s: int(1, 3600).default(60),
        /** Appliances per phase: with more than one the load builds up step by step. */
        sim_appliances: int(1, 10).default(1),
        /** The profile starts over when the site starts (the same story every time). */
        sim_from_start: bool.default(false),
    })
    .strict();
export type MeterEntry = z.output<typeof MeterEntrySchema>;

export const GroupEntrySchema = z
    .object({
        ...common,
        dev_type: z.literal('evse_group'),
        dev_id: common.dev_id.refine((id) => id.startsWith('E'), 'a group dev_id starts with E'),
        /** The group's limit per phase (mA). */
        max_charging_cur: milliamps(0, 2_000_000).default(32_000),
    })
    .strict();
export type GroupEntry = z.output<typeof GroupEntrySchema>;

export type DeviceEntry = EvseEntry | MeterEntry | GroupEntry;

/**
 * Parses one device-table entry; the schema is chosen by dev_type, which must be known (`user`:
 * the user's definitions).
 */
export function parseDevice(
    input: unknown,
    user: readonly DeviceDefinition[] = [],
): z.ZodSafeParseResult<DeviceEntry> {
    const type = (input as { dev_type?: unknown } | null)?.dev_type;
    if (knownDevType(type, user)) {
        if (type === 'evse_group') return GroupEntrySchema.safeParse(input);
        if (isEvseType(type)) return EvseEntrySchema.safeParse(input);
        if (isMeterType(type)) return MeterEntrySchema.safeParse(input);
    }
    return z
        .object({
            dev_type: z.string().refine(() => false, `unknown dev_type ${JSON.stringify(type)}`),
        })
        .safeParse({ dev_type: String(type) }) as z.ZodSafeParseResult<DeviceEntry>;
}

/** The settings a device of this type has (empty for an unknown type). */
export function deviceFieldNames(devType: unknown): ReadonlySet<string> {
    const schema =
        devType === 'evse_group'
            ? GroupEntrySchema
            : isEvseType(devType)
              ? EvseEntrySchema
              : isMeterType(devType)
                ? MeterEntrySchema
                : undefined;
    return new Set(schema ? Object.keys(schema.shape) : []);
}

export function isEvse(d: DeviceEntry): d is EvseEntry {
    return isEvseType(d.dev_type);
}
export function isMeter(d: DeviceEntry): d is MeterEntry {
    return isMeterType(d.dev_type);
}
export function isGroup(d: DeviceEntry): d is GroupEntry {
    return d.dev_type === 'evse_group';
}

/** One readable line from a zod error: "devices[2].max_charging_cur: …". */
export const describeIssues = definitionIssues;
