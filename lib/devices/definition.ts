// A Modbus wallbox or meter described as data: which registers hold its state, currents, power
// and energy (function code, address, data type, word order, scale), how its state maps to the
// vendor's states 1–6, and which writes enable it, set its current, switch its phases and arm its
// own communication fail-safe. One driver runs every definition; the built-in families and the
// ones users add are the same kind of object, checked by the same schema.
//
// Conventions (so that a definition reads like the manufacturer's register table):
// - Addresses are the protocol addresses (0-based, as on the wire). Where a manufacturer's
//   document numbers registers from 1 or as 30001/40001, the definition subtracts.
// - A value read is `raw × scale` (× 10^sf where a scale-factor register is named) in the field's
//   unit: A for currents, W for power, Wh for energy, V for voltages.
// - A value written is `round(value / scale)`: a current written in 0.1 A has scale 0.1.
// - In a SunSpec definition (`sunspec`), addresses are offsets from the start of the model
//   block, where offset 0 is the model's ID register and 1 its length (as in the SunSpec tables
//   whose first point, "ID", has offset 0).
import { z } from 'zod';

/** The schema's version; a stored or user definition names the version it was written for. */
export const DEFINITION_VERSION = 1;

export const dataTypeSchema = z.enum([
    'uint16',
    'int16',
    'uint32',
    'int32',
    'uint64',
    'int64',
    'float32',
    'float64',
    'string',
]);

const address = z.number().int().min(0).max(65535);
const wordOrder = z.enum(['big', 'little']);

/** One value read from the device. */
export const fieldSchema = z
    .object({
        /** 3 holding, 4 input; default: the definition's `fc`. */
        fc: z.union([z.literal(3), z.literal(4)]).optional(),
        address,
        type: dataTypeSchema.default('uint16'),
        /** Registers of a string (type `string` only). */
        words: z.number().int().min(1).max(64).optional(),
        /** raw × scale = the field's unit. */
        scale: z.number().finite().default(1),
        /** Word order of multi-register values; default: the definition's. */
        wordOrder: wordOrder.optional(),
        /** Bytes swapped within each word (some meters); default: the definition's. */
        byteSwap: z.boolean().optional(),
        /** A register holding a power-of-ten exponent (int16) that scales the value (SunSpec `_SF`). */
        scaleFactor: z
            .object({ fc: z.union([z.literal(3), z.literal(4)]).optional(), address })
            .optional(),
        /** Raw values that mean "not available" (e.g. SunSpec 0x8000, 0xFFFF): the field is absent. */
        missing: z.array(z.number()).optional(),
        /**
         * The value a `missing` raw value stands for, where "not available" has a meaning: an
         * inverter's NaN power and currents at night are 0 W and 0 A (SMA), a single-phase SunSpec
         * meter's unimplemented phases B and C carry 0 A. Without it the field is absent.
         */
        missingValue: z.number().optional(),
    })
    .strict();
export type FieldDef = z.input<typeof fieldSchema>;

const triple = z.tuple([fieldSchema, fieldSchema, fieldSchema]);
/** Per-phase values: three fields, or one for a single-phase meter (L2 and L3 then read 0). */
const perPhase = z.union([triple, z.tuple([fieldSchema])]);

/** A condition on named status fields: each named field's raw value is one of the listed ones. */
const conditionSchema = z.record(
    z.string(),
    z.union([
        z.array(z.number()).min(1),
        z.object({ min: z.number().optional(), max: z.number().optional() }).strict(),
    ]),
);

/** The first rule whose condition holds gives the vendor state (1 idle … 6 error/offline). */
export const stateRuleSchema = z
    .object({
        when: conditionSchema,
        state: z.number().int().min(1).max(6),
    })
    .strict();

/** One write: a value (after scaling) into a register. */
export const writeSchema = z
    .object({
        /**
         * 6 single register, 16 multiple registers; default 16 for values over one register.
         * 5 writes a coil (a value ≠ 0 switches it ON): Phoenix Contact's enable is coil 20000.
         */
        fc: z.union([z.literal(5), z.literal(6), z.literal(16)]).optional(),
        address,
        type: dataTypeSchema.exclude(['string']).default('uint16'),
        /** Written raw = round(value / scale). */
        scale: z.number().finite().positive().default(1),
        wordOrder: wordOrder.optional(),
    })
    .strict();
export type WriteDef = z.input<typeof writeSchema>;

/** A fixed value written to a register (to switch a mode or keep the device listening). */
const fixedWriteSchema = writeSchema.extend({ value: z.number() }).strict();

export const readingsSchema = z
    .object({
        /** Phase currents (A). */
        currentsA: perPhase.optional(),
        /** Active power (W), positive = import (or, for a wallbox, drawn by the car). */
        powerW: fieldSchema.optional(),
        /** Phase powers (W): their signs give the currents' direction where currents are unsigned. */
        phasePowersW: perPhase.optional(),
        voltagesV: perPhase.optional(),
        /** Meters: energy imported / exported (Wh). Wallboxes: `energyWh`, the total charged. */
        importWh: fieldSchema.optional(),
        exportWh: fieldSchema.optional(),
        energyWh: fieldSchema.optional(),
        /** Identity, read once at start (strings or numbers). */
        model: fieldSchema.optional(),
        serial: fieldSchema.optional(),
        firmware: fieldSchema.optional(),
        /** A card presented at the wallbox's reader. */
        rfid: fieldSchema.optional(),
        /** Storage meters: the battery's state of charge (%). */
        soc: fieldSchema.optional(),
    })
    .strict();

export const evseControlSchema = z
    .object({
        /** The charging current the car may draw (A before scaling). */
        current: writeSchema
            .extend({
                /** The device refuses currents below this (A); 0 then means "stop" where `zeroStops`. */
                min: z.number().min(0).default(6),
                max: z.number().positive().default(32),
                /** Writing 0 pauses charging (most wallboxes); otherwise `enable` must be used. */
                zeroStops: z.boolean().default(true),
                /**
                 * With `zeroStops`: the raw word that stops charging where it is not 0 (ABL eMH1:
                 * 0x03E8, a 100 % duty cycle, is "no charging"; 0 % is not a valid setting).
                 */
                stop: z.number().int().min(0).max(0xffff).optional(),
                /**
                 * The device forgets a written current after a while and falls back to its safe
                 * current (Alfen: the "validity time", 60 s by default): write it again at least
                 * this often (ms), also when it has not changed.
                 */
                rewriteMs: z.number().int().min(1000).optional(),
            })
            .strict(),
        /** A separate enable register: `on` lets the car charge, `off` stops it. */
        enable: writeSchema.extend({ on: z.number(), off: z.number() }).strict().optional(),
        /** Phase switching: the value that selects one and three phases. */
        phases: writeSchema.extend({ one: z.number(), three: z.number() }).strict().optional(),
        /** The wallbox's own communication fail-safe: the current it falls back to after `timeout`. */
        failSafe: z
            .object({
                current: writeSchema.optional(),
                /** Seconds (before scaling) without Modbus traffic until the fall-back. */
                timeout: writeSchema.optional(),
            })
            .strict()
            .optional(),
        /** A register that must be written regularly or the wallbox falls back (life bit). */
        keepAlive: fixedWriteSchema
            .extend({ everyMs: z.number().int().min(100) })
            .strict()
            .optional(),
        /** Written once after connecting (e.g. "controlled by Modbus" mode). */
        init: z.array(fixedWriteSchema).optional(),
    })
    .strict();

export const deviceDefinitionSchema = z
    .object({
        version: z.literal(DEFINITION_VERSION).default(DEFINITION_VERSION),
        /** dev_type, e.g. `evse_heidelberg`; user definitions start with `evse_user_` / `meter_user_`. */
        type: z
            .string()
            .regex(
                /^(evse|meter|inverter)_[a-z0-9_]+$/,
                'dev_type: evse_…, meter_… or inverter_…, lower case',
            ),
        kind: z.enum(['evse', 'meter']),
        /** Display name as the vendor's `dev_meta` shows it. */
        title: z.string().min(1),
        /** Manufacturer's document the definition follows (name, version). */
        source: z.string().optional(),
        /** Default function code for reads. */
        fc: z.union([z.literal(3), z.literal(4)]).default(3),
        wordOrder: wordOrder.default('big'),
        byteSwap: z.boolean().default(false),
        /** Default unit id. */
        unit: z.number().int().min(0).max(255).default(1),
        /** Unrequested registers one read may bridge (only for devices that answer them). */
        maxGap: z.number().int().min(0).max(100).default(0),
        /** Largest registers per read the device accepts (some answer fewer than 125). */
        maxCount: z.number().int().min(1).max(125).default(125),
        /** Fields the state rules test (raw values, before scaling). */
        status: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), fieldSchema).default({}),
        /** Wallboxes: vendor state from the status fields; no rule matching → `defaultState`. */
        states: z.array(stateRuleSchema).default([]),
        defaultState: z.number().int().min(1).max(6).default(6),
        readings: readingsSchema.default({}),
        /** Wallboxes only. */
        control: evseControlSchema.optional(),
        /** SunSpec devices: found by scanning for `SunS`; addresses are offsets in the model. */
        sunspec: z
            .object({
                /** Model ids this definition reads, e.g. [201, 202, 203, 204]. */
                models: z.array(z.number().int().min(1).max(65534)).min(1),
                /** Where to look for the `SunS` marker. */
                bases: z.array(address).default([40000, 50000, 0]),
            })
            .strict()
            .optional(),
    })
    .strict()
    .superRefine((d, ctx) => {
        if (d.kind === 'evse' && !d.control) {
            ctx.addIssue({
                code: 'custom',
                path: ['control'],
                message: 'a wallbox needs control.current',
            });
        }
        if (d.kind === 'meter' && d.control) {
            ctx.addIssue({ code: 'custom', path: ['control'], message: 'a meter has no control' });
        }
        if (d.kind === 'evse' && d.states.length === 0) {
            ctx.addIssue({
                code: 'custom',
                path: ['states'],
                message: 'a wallbox needs state rules',
            });
        }
        if (d.kind === 'meter' && !d.readings.powerW && !d.readings.currentsA) {
            ctx.addIssue({
                code: 'custom',
                path: ['readings'],
                message: 'a meter needs powerW or currentsA',
            });
        }
        for (const [i, rule] of d.states.entries()) {
            for (const name of Object.keys(rule.when)) {
                if (!(name in d.status)) {
                    ctx.addIssue({
                        code: 'custom',
                        path: ['states', i, 'when', name],
                        message: `no status field "${name}"`,
                    });
                }
            }
        }
    });

export type DeviceDefinition = z.input<typeof deviceDefinitionSchema>;
export type ParsedDefinition = z.output<typeof deviceDefinitionSchema>;
