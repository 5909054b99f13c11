// Charging rules in the vendor's format (set_params `charging_rules`): evaluated in order, the
// first matching rule gives the current; if rules exist but none matches, the result is 0; EVSE
// and user rule results combine to the smaller. An undercut duration keeps a charging car at its
// minimum for a while when the result drops below it (clouds over the PV).
import { z } from 'zod';
import { FormulaError } from './errors';
import { evaluate, type Resolver } from './formula';

export const RuleMode = {
    absolute: 0,
    relative: 1,
    solar: 2,
    relativeSolar: 3,
    solarMinus: 4,
    surplus: 5,
} as const;

export const ChargingRuleSchema = z.object({
    /** Weekdays, bit0 = Monday … bit6 = Sunday; absent = every day. */
    days: z.coerce.number().int().min(0).max(127).optional(),
    mode: z.coerce.number().int().min(0).max(5).default(0),
    /** mA (modes 0 and 4) or percent (modes 1 and 3). */
    current: z.coerce.number().min(-1_000_000).max(1_000_000).default(0),
    enabled: z.boolean().default(true),
    /** Undercut duration (s). */
    udur: z.coerce.number().min(0).max(86_400).default(0),
    /** Start, minutes after midnight, and duration (minutes) of a time window. */
    time: z.coerce.number().int().min(0).max(1439).optional(),
    dur: z.coerce.number().int().min(0).max(10_080).optional(),
    /** Formula whose value is the rule's current (mA). */
    expr: z.string().max(2000).optional(),
    /** `name` (active when > 0) or `name=level`, e.g. `PB.input1=1`. */
    input: z.string().max(200).optional(),
    /** Matches while the price level is at most this. */
    price_level: z.coerce.number().optional(),
    /** Threshold (mA per phase) the solar current, or the surplus in mode 5, must reach. */
    solar: z.coerce.number().min(0).optional(),
});
export type ChargingRule = z.output<typeof ChargingRuleSchema>;

export interface RuleEnvironment {
    /** Local weekday, 0 = Monday … 6 = Sunday. */
    weekday: number;
    /** Minutes after local midnight. */
    minute: number;
    /** The wallbox's maximum current (mA), for relative rules. */
    maxCurrent: number;
    /** The wallbox's minimum current (mA), for undercut. */
    minCurrent: number;
    /** Phases the car charges on (1..3): power becomes current per phase. */
    phases: number;
    voltage: number;
    /** PV production (W). */
    solarPowerW: number;
    /** PV surplus (W): what would be fed in if no car charged (lib/rules/surplus.ts). */
    surplusPowerW: number;
    /**
     * Home-battery discharge going on that the car must not use (W). While there is some, the
     * undercut does not hold a car at its minimum: that minimum would come from the battery.
     */
    batteryDrainW?: number;
    resolve?: Resolver;
    priceLevel?: number;
}

export interface RuleState {
    /** Since when the result has been below the minimum while undercut holds it, or null. */
    undercutSince: number | null;
    /** Last result (mA), to know whether the car was charging. */
    last: number;
}

export const NEW_RULE_STATE: RuleState = { undercutSince: null, last: 0 };

export interface RuleResult {
    /** mA the rules allow; null when there are no enabled rules. */
    current: number | null;
    /** Index of the rule that matched, or −1. */
    matched: number;
    /** Formula errors met on the way (the rule then does not match). */
    errors: string[];
    state: RuleState;
}

/** Local weekday and minute of a time stamp (Monday = 0). */
export function localTime(now: number, offsetMinutes = -new Date(now).getTimezoneOffset()) {
    const local = new Date(now + offsetMinutes * 60_000);
    return {
        weekday: (local.getUTCDay() + 6) % 7,
        minute: local.getUTCHours() * 60 + local.getUTCMinutes(),
    };
}

/** PV surplus (W): from a grid meter (import positive) with the EVSEs' own draw, or from meters. */
export function pvSurplusW(p: {
    gridW?: number;
    evseW?: number;
    productionW?: number;
    consumptionW?: number;
}) {
    if (p.gridW !== undefined) return Math.max(0, (p.evseW ?? 0) - p.gridW);
    return Math.max(0, (p.productionW ?? 0) - (p.consumptionW ?? 0));
}

const perPhaseCurrent = (powerW: number, env: RuleEnvironment) =>
    Math.floor((powerW / env.voltage / Math.max(1, env.phases)) * 1000);

function inWindow(rule: ChargingRule, env: RuleEnvironment): boolean {
    if (rule.days !== undefined && !(rule.days & (1 << env.weekday))) return false;
    if (rule.time === undefined || !rule.dur) return true;
    const end = rule.time + rule.dur;
    // A window may run past midnight.
    return (env.minute >= rule.time && env.minute < end) || env.minute < end - 1440;
}

function inputActive(spec: string, resolve: Resolver | undefined): boolean {
    const [name, level] = spec.split(/[=,]/).map((s) => s.trim());
    const value = name ? resolve?.(name) : undefined;
    if (value === undefined) return false;
    return level === undefined || level === ''
        ? Number(value) > 0
        : Number(value) === Number(level);
}

/** The value of one rule, or undefined when its conditions do not hold. */
function ruleValue(rule: ChargingRule, env: RuleEnvironment, errors: string[]): number | undefined {
    if (!rule.enabled || !inWindow(rule, env)) return undefined;
    if (rule.input !== undefined && !inputActive(rule.input, env.resolve)) return undefined;
    if (rule.price_level !== undefined) {
        if (env.priceLevel === undefined || env.priceLevel > rule.price_level) return undefined;
    }
    const solar = perPhaseCurrent(env.solarPowerW, env);
    const surplus = perPhaseCurrent(env.surplusPowerW, env);
    if (rule.solar !== undefined && rule.solar > 0) {
        if ((rule.mode === RuleMode.surplus ? surplus : solar) < rule.solar) return undefined;
    }
    if (rule.expr !== undefined && rule.expr.trim() !== '') {
        try {
            return evaluate(rule.expr, env.resolve);
        } catch (err) {
            errors.push(err instanceof FormulaError ? err.message : String(err));
            return undefined;
        }
    }
    switch (rule.mode) {
        case RuleMode.relative:
            return (rule.current / 100) * env.maxCurrent;
        case RuleMode.solar:
            return solar;
        case RuleMode.relativeSolar:
            return (rule.current / 100) * solar;
        case RuleMode.solarMinus:
            return solar - rule.current;
        case RuleMode.surplus:
            return surplus;
        default:
            return rule.current;
    }
}

/** Evaluates a rule list at time `now` (ms). */
export function evaluateRules(
    rules: readonly ChargingRule[],
    env: RuleEnvironment,
    now: number,
    state: RuleState = NEW_RULE_STATE,
): RuleResult {
    const errors: string[] = [];
    if (!rules.some((r) => r.enabled)) {
        return { current: null, matched: -1, errors, state: { undercutSince: null, last: 0 } };
    }
    let matched = -1;
    let value = 0;
    for (let i = 0; i < rules.length; i++) {
        const v = ruleValue(rules[i]!, env, errors);
        if (v === undefined) continue;
        matched = i;
        value = Math.max(0, Math.floor(Number.isFinite(v) ? v : 0));
        break;
    }
    // Undercut: a car that was charging keeps its minimum for `udur` s after the result drops.
    const udurMs =
        matched >= 0
            ? rules[matched]!.udur * 1000
            : Math.max(0, ...rules.map((r) => r.udur * 1000));
    let undercutSince: number | null = null;
    if (value < env.minCurrent && state.last >= env.minCurrent && udurMs > 0) {
        undercutSince = state.undercutSince ?? now;
        if (now - undercutSince < udurMs && !((env.batteryDrainW ?? 0) > 0)) value = env.minCurrent;
    } else if (value < env.minCurrent && state.undercutSince !== null) {
        undercutSince = state.undercutSince; // expired: stays expired until the result recovers
    }
    return { current: value, matched, errors, state: { undercutSince, last: value } };
}

/** EVSE and user rules together: the smaller result; null when neither has rules. */
export function combineRuleResults(evse: number | null, user: number | null): number | null {
    if (evse === null) return user;
    if (user === null) return evse;
    return Math.min(evse, user);
}
