// Values pushed from flows for HTTP-input devices, in the shapes of the vendor's set_ajax_meter
// and set_ajax_evse (api-spec §4.5): JSON objects, or the GET form where arrays are
// comma-separated strings. Currents are mA, energies Wh, power W.
import { z } from 'zod';
import type { EvseControl } from './control';
import type { EvseReading, EvseState, MeterReading, Phases3 } from '../core/types';

const num = z.coerce.number().finite();
/** `[c1,c2,c3]`, `"c1,c2,c3"`, or a single value meaning one phase. */
const triple = z
    .union([z.array(num).min(1).max(3), z.string().regex(/^\s*-?[\d.]+(\s*,\s*-?[\d.]+){0,2}\s*$/)])
    .transform((v): Phases3 => {
        const arr = typeof v === 'string' ? v.split(',').map((s) => Number(s.trim())) : v;
        return [arr[0] ?? 0, arr[1] ?? 0, arr[2] ?? 0].map(Math.round) as unknown as Phases3;
    });
const flag = z
    .union([z.boolean(), z.literal(0), z.literal(1), z.enum(['0', '1', 'true', 'false'])])
    .transform((v) => v === true || v === 1 || v === '1' || v === 'true');

export const AjaxMeterSchema = z
    .object({
        model: z.string().max(100).optional(),
        import_wh: num.min(0).optional(),
        import_vah: num.min(0).optional(),
        export_wh: num.min(0).optional(),
        voltage: triple.optional(),
        current: triple.optional(),
        power_w: num.optional(),
        power_va: num.optional(),
        is_va: flag.optional(),
        soc: num.min(0).max(100).optional(),
    })
    .loose();
export type AjaxMeter = z.output<typeof AjaxMeterSchema>;

export const AjaxEvseSchema = z
    .object({
        state: z.coerce.number().int().min(1).max(6),
        max_charging_current: num.min(0).optional(),
        current: triple.optional(),
        total_energy: num.min(0).optional(),
        model: z.string().max(100).optional(),
        rfid: z.string().max(64).optional(),
    })
    .loose();
export type AjaxEvse = z.output<typeof AjaxEvseSchema>;

export class PayloadError extends Error {
    readonly code = 'BAD_PAYLOAD';
}

function describe(error: z.ZodError): string {
    return error.issues
        .slice(0, 3)
        .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
        .join('; ');
}

function parse<T extends z.ZodType>(schema: T, payload: unknown, what: string): z.output<T> {
    const r = schema.safeParse(payload);
    if (!r.success) throw new PayloadError(`${what}: ${describe(r.error)}`);
    return r.data;
}

/** set_ajax_meter payload → the core's meter reading; power is derived when not given. */
export function meterReadingFrom(payload: unknown, now: number): MeterReading {
    const p = parse(AjaxMeterSchema, payload, 'set_ajax_meter payload');
    const voltages = p.voltage;
    let powerW = p.power_w ?? p.power_va;
    if (powerW === undefined && p.current) {
        const v = voltages ?? [230, 230, 230];
        powerW = p.current.reduce((t, c, i) => t + (c * v[i]!) / 1000, 0);
    }
    const importWh = p.import_wh ?? p.import_vah;
    return {
        powerW: Math.round(powerW ?? 0),
        ...(p.current ? { currents: p.current } : {}),
        ...(voltages ? { voltages } : {}),
        ...(importWh !== undefined ? { importWh: Math.round(importWh) } : {}),
        ...(p.export_wh !== undefined ? { exportWh: Math.round(p.export_wh) } : {}),
        takenAt: now,
    };
}

/** set_ajax_evse payload → the core's wallbox reading. */
export function evseReadingFrom(payload: unknown, now: number): EvseReading {
    const p = parse(AjaxEvseSchema, payload, 'set_ajax_evse payload');
    return {
        state: p.state as EvseState,
        ...(p.current ? { currents: p.current } : {}),
        ...(p.total_energy !== undefined ? { totalEnergyWh: Math.round(p.total_energy) } : {}),
        ...(p.rfid ? { rfid: p.rfid } : {}),
        takenAt: now,
    };
}

export type { EvseControl };
