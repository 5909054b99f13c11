// Values pushed for HTTP-input devices (meter_ajax, evse_ajax) in the vendor's set_ajax_meter and
// set_ajax_evse shapes (api-spec §4.5): a JSON object, or the GET form where arrays are
// comma-separated strings. One implementation for every surface: the /cnf commands, and through
// them the evcm-meter-in and evcm-evse-in nodes. Currents are mA, energies Wh, power W.
import { z } from 'zod';
import type { EvseReading, EvseSetpoint, MeterReading, Phases3 } from '../core/types';
import { describeIssues, type DeviceEntry } from '../site/schema';
import type { CnfContext } from './context';
import { badRequest } from './errors';
import { parseDecimal } from './query';

const num = z.number({ message: 'must be a number' }).finite();
/** A number in the GET form: the same decimals as every other query parameter. */
const decimal = z.string().transform((text, ctx) => {
    const n = parseDecimal(text.trim());
    if (n === undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be a number' });
        return z.NEVER;
    }
    return n;
});
const numish = z.union([num, decimal]);
const triple = z
    .union([
        z.array(numish).length(3, 'must hold 3 values'),
        z
            .string()
            .transform((s) => s.split(','))
            .pipe(z.array(decimal).length(3, 'must be 3 numbers')),
    ])
    .pipe(z.array(z.number().min(-1e7).max(1e7)))
    .transform((a) => a.map(Math.round) as unknown as Phases3);
const boolish = z.union([
    z.boolean(),
    z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true'),
]);
const energy = numish.pipe(z.number().min(0).max(1e13));
const power = numish.pipe(z.number().min(-1e8).max(1e8));

export const AjaxMeterSchema = z.object({
    model: z.string().max(100).optional(),
    import_wh: energy.optional(),
    import_vah: energy.optional(),
    export_wh: energy.optional(),
    export_vah: energy.optional(),
    voltage: triple.optional(),
    current: triple.optional(),
    power_w: power.optional(),
    power_va: power.optional(),
    is_va: boolish.optional(),
    soc: numish.pipe(z.number().min(0).max(100)).optional(),
});

export const AjaxEvseSchema = z.object({
    state: numish.pipe(
        z
            .number()
            .int('state must be 1..5')
            .min(1, 'state must be 1..5')
            .max(5, 'state must be 1..5'),
    ),
    max_charging_current: numish.pipe(z.number().min(0).max(80_000)).optional(),
    current: triple.optional(),
    total_energy: energy.optional(),
    model: z.string().max(100).optional(),
    rfid: z.string().max(32).optional(),
});

/** The control object of an HTTP-input wallbox (the set_ajax_evse answer, the evcm-evse-in
 *  output): what the flow must apply to the real wallbox. */
export interface EvseControl {
    device_enabled: boolean;
    charging_enabled: boolean;
    paused: boolean;
    /** mA per phase the car may draw; 0 = no charging. */
    charging_current: number;
    /** Wallboxes that switch phases: the phases to connect (1 or 3). Changes only while
     *  charging is disabled and the car has stopped drawing. */
    phases?: 1 | 3;
}

export function controlOf(sp: EvseSetpoint | undefined, enabled = true): EvseControl {
    if (!sp) {
        return {
            device_enabled: enabled,
            charging_enabled: false,
            paused: false,
            charging_current: 0,
        };
    }
    return {
        device_enabled: enabled && sp.state !== 'disabled',
        charging_enabled: sp.chargingEnabled && sp.current > 0,
        paused: sp.state === 'paused',
        charging_current: sp.current,
        ...(sp.phaseCount ? { phases: sp.phaseCount } : {}),
    };
}

function parseWith<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
    const r = schema.safeParse(input);
    if (!r.success) throw badRequest(describeIssues(r.error, what));
    return r.data;
}

/**
 * An energy counter as the manager shows it: it keeps its last value when a push leaves it out,
 * and it never goes backwards — a pushed value below the last one is taken as the meter's
 * counter starting again (a replaced or reset meter), and counting continues from the total.
 */
function continueCounter(
    pushed: number | undefined,
    last: { raw: number; offset: number } | undefined,
): { raw: number; offset: number } | undefined {
    if (pushed === undefined) return last;
    if (!last) return { raw: pushed, offset: 0 };
    return { raw: pushed, offset: pushed < last.raw ? last.offset + last.raw : last.offset };
}

/** set_ajax_meter: validates the whole push before anything changes, then stores the reading. */
export function pushAjaxMeter(ctx: CnfContext, d: DeviceEntry, input: unknown): void {
    const b = parseWith(AjaxMeterSchema, input, 'body');
    const voltages = b.voltage;
    let powerW = b.power_w ?? b.power_va;
    if (powerW === undefined && b.current) {
        const v = voltages ?? [
            ctx.site.params.voltage,
            ctx.site.params.voltage,
            ctx.site.params.voltage,
        ];
        powerW = (b.current[0] * v[0] + b.current[1] * v[1] + b.current[2] * v[2]) / 1000;
    }
    // An empty push is not a reading of 0 W: that would show headroom nobody measured.
    if (powerW === undefined)
        throw badRequest('set_ajax_meter needs power_w (or power_va) or current');
    const reading: MeterReading = { powerW: Math.round(powerW) };
    if (b.current) reading.currents = b.current;
    if (voltages) reading.voltages = voltages;
    if (b.soc !== undefined) reading.soc = b.soc;
    const before = ctx.ajax.get(d.dev_id);
    const imported = continueCounter(round(b.import_wh ?? b.import_vah), before?.importCounter);
    const exported = continueCounter(round(b.export_wh ?? b.export_vah), before?.exportCounter);
    if (imported) reading.importWh = imported.raw + imported.offset;
    if (exported) reading.exportWh = exported.raw + exported.offset;
    ctx.site.push(d.dev_id, reading);
    const extras = { ...before };
    if (imported) extras.importCounter = imported;
    if (exported) extras.exportCounter = exported;
    if (b.model !== undefined) extras.model = b.model;
    if (b.is_va !== undefined) extras.isVa = b.is_va;
    if (b.soc !== undefined) extras.soc = b.soc;
    ctx.ajax.set(d.dev_id, extras);
    ctx.touch();
}

/** set_ajax_evse: validates, stores the reading, answers what the wallbox may do now. */
export function pushAjaxEvse(ctx: CnfContext, d: DeviceEntry, input: unknown): EvseControl {
    const b = parseWith(AjaxEvseSchema, input, 'body');
    const reading: EvseReading = { state: b.state as EvseReading['state'] };
    if (b.current) reading.currents = b.current;
    // A push without its counter keeps the last one (the wallbox's total goes on from there).
    const lastTotal = (
        ctx.site.manager.deviceState(d.dev_id).sample.reading as EvseReading | undefined
    )?.totalEnergyWh;
    const total = round(b.total_energy) ?? lastTotal;
    if (total !== undefined) reading.totalEnergyWh = total;
    if (b.rfid) reading.rfid = b.rfid;
    ctx.site.push(d.dev_id, reading);
    const extras = { ...ctx.ajax.get(d.dev_id) };
    if (b.model !== undefined) extras.model = b.model;
    if (b.max_charging_current !== undefined)
        extras.maxCurrent = Math.round(b.max_charging_current);
    ctx.ajax.set(d.dev_id, extras);
    ctx.touch();
    return controlOf(ctx.site.manager.lastCycle?.result.setpoints.get(d.dev_id), d.device_enabled);
}

function round(v: number | undefined): number | undefined {
    return v === undefined ? undefined : Math.round(v);
}
