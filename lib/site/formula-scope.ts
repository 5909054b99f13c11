// The names a formula can read while the site runs (the vendor's formula names, api-spec §7.3 —
// the subset this manager can answer honestly), and settings that may be a number or a formula
// (`max_total_current`, `max_charging_cur`).
//
//   E<n>.<field>  a wallbox: state, power_w, current (largest phase), current_l1..current_l3 (mA),
//                 import_wh, com_err, min_current, max_current
//   M<n>.<field>  a meter:   power_w, current, current_l1..current_l3 (mA), import_wh, export_wh,
//                 soc (%, storage meters that report it), com_err
//   GM.<field>    the site:  grid_demand (W, import positive), surplus (W), storage_home and
//                 storage_all (W of the role-5 / role-6 meters, charging positive)
//   CM.<name>     a CM variable (set_cm_vars); CM._max_total_current (mA), CM._num_charging,
//                 CM._surplus (W), CM._price (per kWh) and CM._price_level (1 very cheap …
//                 5 very expensive) while a price is known
import { z } from 'zod';
import type { EvseReading, MeterReading } from '../core/types';
import type { CurrentPrice } from '../prices/price-list';
import { FormulaError } from '../rules/errors';
import { isPlainNumber, parseFormula, type Formula, type Resolver } from '../rules/formula';

const DEVICE_NAME_RE = /^([EM][1-9][0-9]{0,4})\.([a-z_0-9]+)$/;
const SCOPE_NAME_RE = /^(?:[EM][1-9][0-9]{0,4}\.[a-z_0-9]+|GM\.[a-z_]+|CM\.[A-Za-z0-9_]+)$/;

/** Parses formula text and checks that every name it reads has the form of a scope name. */
export function parseSiteFormula(text: string): Formula {
    const formula = parseFormula(text);
    for (const name of formula.names) {
        if (!SCOPE_NAME_RE.test(name)) {
            throw new FormulaError(
                'FORMULA_NAME',
                `unknown name '${name}': formulas read E<n>.<field>, M<n>.<field>, GM.<field> or CM.<name>`,
            );
        }
    }
    return formula;
}

/**
 * A setting in mA that is a number in [min, max] or formula text (checked here, evaluated every
 * cycle). The editor and query strings deliver numbers as text, so plain numeric text is a number.
 */
export function numberOrFormula(min: number, max: number) {
    return z.union([z.number(), z.string().max(2000)]).transform((value, ctx) => {
        if (typeof value === 'number' || isPlainNumber(value)) {
            // mA: a fraction is rounded to whole mA, as the vendor's parser takes it
            const n = Math.round(Number(value));
            if (!Number.isFinite(n) || n < min || n > max) {
                ctx.addIssue({
                    code: 'custom',
                    message: `must be a number from ${min} to ${max}, or a formula`,
                });
                return z.NEVER;
            }
            return n;
        }
        const text = value.trim();
        try {
            parseSiteFormula(text);
        } catch (err) {
            ctx.addIssue({ code: 'custom', message: `bad formula: ${(err as Error).message}` });
            return z.NEVER;
        }
        return text;
    });
}

export interface DeviceView {
    kind: 'evse' | 'meter';
    reading: EvseReading | MeterReading | undefined;
    comError: boolean;
    minCurrent?: number;
    maxCurrent?: number;
}

export interface ScopeSource {
    device(id: string): DeviceView | undefined;
    gridDemandW: number;
    surplusW: number;
    storageHomeW?: number;
    storageAllW?: number;
    maxTotalCurrent: number;
    numCharging: number;
    /** The price now (prices pushed by a flow, or `_set_price` / `_set_price_level`). */
    price?: () => CurrentPrice;
}

/** The resolver for every name except user CM variables (those come from CmVariables). */
export function siteResolver(source: ScopeSource): Resolver {
    return (name) => {
        switch (name) {
            case 'GM.grid_demand':
                return source.gridDemandW;
            case 'GM.surplus':
            case 'CM._surplus':
                return source.surplusW;
            case 'GM.storage_home':
                return source.storageHomeW ?? 0;
            case 'GM.storage_all':
                return source.storageAllW ?? 0;
            case 'CM._max_total_current':
                return source.maxTotalCurrent;
            case 'CM._num_charging':
                return source.numCharging;
            case 'CM._price':
                return source.price?.().price;
            case 'CM._price_level':
                return source.price?.().level;
        }
        const m = DEVICE_NAME_RE.exec(name);
        if (!m) return undefined;
        const d = source.device(m[1]!);
        return d ? deviceField(d, m[2]!) : undefined;
    };
}

function deviceField(d: DeviceView, field: string): number | undefined {
    if (field === 'com_err') return d.comError ? 1 : 0;
    if (field === 'min_current') return d.minCurrent;
    if (field === 'max_current') return d.maxCurrent;
    const r = d.reading;
    if (!r) return undefined;
    const currents = r.currents;
    switch (field) {
        case 'power_w':
            return r.powerW;
        case 'current':
            return currents ? Math.max(...currents) : undefined;
        case 'current_l1':
        case 'current_l2':
        case 'current_l3':
            return currents?.[Number(field.slice(-1)) - 1];
    }
    if (d.kind === 'evse') {
        const e = r as EvseReading;
        if (field === 'state') return e.state;
        if (field === 'import_wh') return e.totalEnergyWh;
        return undefined;
    }
    const meter = r as MeterReading;
    if (field === 'import_wh') return meter.importWh;
    if (field === 'export_wh') return meter.exportWh;
    if (field === 'soc') return meter.soc;
    return undefined;
}

/**
 * Evaluates a limit in mA. A formula that cannot be evaluated gives 0: for a current limit, the
 * safe reading of "unknown" is "do not charge"; the error is reported to the caller.
 */
export function evaluateLimit(
    formula: Formula,
    resolve: Resolver,
    max: number,
    label: string,
    errors: string[],
): number {
    try {
        const v = formula.evaluate(resolve);
        return Math.min(max, Math.max(0, Math.floor(v)));
    } catch (err) {
        errors.push(`${label}: ${(err as Error).message}`);
        return 0;
    }
}
