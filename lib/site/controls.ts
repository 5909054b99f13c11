// Per-wallbox controls set from outside the device table: overrides (override_device) and
// charging plans (set_cplan). The limits stage turns them into caps each cycle.

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

/** A wallbox's charging plan; a `tmp` one is not persisted. */
export interface Plan {
    cplan: PlanEntry[];
    tmp: boolean;
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
