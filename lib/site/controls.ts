// Per-wallbox controls set from outside the device table: overrides (override_device) and
// charging plans (set_cplan). The limits stage turns them into caps each cycle.
import type { EnergyPlanDecision } from '../prices/planner';

/** override_device flag bits as get_dev_info reports them in `overrides`. */
export const OVERRIDE = {
    chargingDisabled: 1,
    evseRulesDisabled: 2,
    userRulesDisabled: 4,
} as const;

/** An override lasts until the car is unplugged. */
export interface Override {
    flags: number;
    /** Current limit (mA) set with mamps, or null. */
    current: number | null;
    /** Phases chosen for the session (wallboxes that switch), or absent. */
    phases?: 1 | 3;
}

/** One entry of a charging plan (set_cplan): from st for dr minutes of the day, limit lm mA. */
export interface PlanEntry {
    dc: boolean;
    st: number;
    dr: number;
    lm: number;
}

/**
 * A plan's target (set_cplan `req_energy` and `departure`, our addition to the vendor's object):
 * this much energy by then, charged in the cheapest hours of the price list.
 */
export interface PlanTarget {
    /** Energy to charge from when the plan was set (Wh). */
    energyWh: number;
    /** ms, Unix epoch. */
    departure: number;
    /** Charged since the plan was set (Wh). */
    chargedWh: number;
    /** The wallbox's energy counter at the last cycle (Wh), where it has one. */
    lastCounterWh?: number;
    /** The last cycle's time, for power × time where there is no counter. */
    lastAt?: number;
    /** The last cycle's decision. */
    decision?: EnergyPlanDecision;
}

/** A wallbox's charging plan; a `tmp` one is not persisted. */
export interface Plan {
    cplan: PlanEntry[];
    tmp: boolean;
    target?: PlanTarget;
}

/** The override's cap (mA): 0 for C (charging disabled), the mamps current, or none. */
export function overrideCap(o: Override): number | null {
    if (o.flags & OVERRIDE.chargingDisabled) return 0;
    return o.current;
}

/** The lowest limit of the plan's entries that cover `minute` of the (local) day, or none. */
export function planCap(plan: Plan, minute: number): number | null {
    let cap: number | null = null;
    for (const e of plan.cplan) {
        if (e.dc) continue; // discharge limits concern storage, not wallboxes
        if ((minute - e.st + 1440) % 1440 < e.dr) cap = Math.min(e.lm, cap ?? Infinity);
    }
    return cap;
}
