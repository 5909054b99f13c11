// PV surplus with a home battery (api-spec §6.5, §6.3 step 2). Storage meters measure the battery
// (positive = charging, negative = discharging). The vendor's rule: the battery's charging is not
// consumption (the car may take that power), the discharge of a "storage home" meter (role 5) is
// never surplus, that of a "storage all" meter (role 6) is. Two settings, named as evcc names
// them (its users ask for exactly this, evcc #13403), refine it:
//  - battery_priority_soc: below this state of charge the battery charges first — the car gets
//    only what the battery cannot take. Without a reported SoC the battery then always comes
//    first. 0 = off (the vendor's behaviour).
//  - battery_buffer_soc: a "storage all" battery that reports its SoC counts as surplus only at
//    or above this SoC; below it, the car must not draw from it. 0 = always (the vendor's).
import { MeterRole } from '../core/types';

export interface StorageSample {
    role: typeof MeterRole.storageHome | typeof MeterRole.storageAll;
    /** W, positive = charging. */
    powerW: number;
    /** State of charge (%), where the meter reports one. */
    soc?: number;
}

export interface BatteryPolicy {
    /** % below which the battery charges before the car; 0 = off. */
    prioritySoc: number;
    /** % from which a role-6 battery's discharge counts as surplus; 0 = always. */
    bufferSoc: number;
}

export const NO_BATTERY_POLICY: BatteryPolicy = { prioritySoc: 0, bufferSoc: 0 };

/** Feed-in (W) below which a charging battery is taken to be taking all it can. */
const EXPORT_TOLERANCE_W = 50;

export interface SurplusInput {
    /** Grid meter (W, import positive); undefined without one. */
    gridW?: number;
    /** What the wallboxes draw (W). */
    evseW: number;
    /** Production meters (W), used without a grid meter. */
    productionW: number;
    /** Consumption meters (W), used without a grid meter. */
    consumptionW: number;
    storage: readonly StorageSample[];
    policy: BatteryPolicy;
    /** What the batteries have shown they can take (W), from the last cycle; 0 at first. */
    chargePeakW: number;
}

export interface SurplusResult {
    /** What a car may charge from (W). */
    surplusW: number;
    /** Power of the role-5 and role-6 meters (W, charging positive), GM.storage_home/_all. */
    storageHomeW: number;
    storageAllW: number;
    /** Discharge going on that the car must not use (W): role 5, or role 6 below the buffer. */
    drainW: number;
    /** Charge power kept for the battery before the car (W). */
    reservedW: number;
    /** chargePeakW, updated with this reading. */
    chargePeakW: number;
}

/** The surplus of one moment; pure — the caller keeps chargePeakW from one cycle to the next. */
export function siteSurplus(p: SurplusInput): SurplusResult {
    let charge = 0;
    let allowed = 0;
    let drain = 0;
    let home = 0;
    let all = 0;
    let wantsPriority = false;
    for (const s of p.storage) {
        if (s.role === MeterRole.storageHome) home += s.powerW;
        else all += s.powerW;
        if (s.powerW >= 0) charge += s.powerW;
        else if (
            s.role === MeterRole.storageAll &&
            (s.soc === undefined || s.soc >= p.policy.bufferSoc)
        )
            allowed -= s.powerW;
        else drain -= s.powerW;
        if (p.policy.prioritySoc > 0 && (s.soc === undefined || s.soc < p.policy.prioritySoc))
            wantsPriority = true;
    }
    // PV minus the household, the battery left out: the grid meter sees the battery, the
    // production and consumption meters do not.
    const free =
        p.gridW !== undefined
            ? p.evseW - p.gridW + charge - allowed - drain
            : p.productionW - p.consumptionW;
    const feedIn = p.gridW !== undefined ? -p.gridW : free - charge + allowed + drain - p.evseW;
    // What the batteries can take: the most they have shown; while power goes to the grid
    // anyway they take all they can now (full, or at their limit), so that is the new measure.
    const chargePeakW = feedIn > EXPORT_TOLERANCE_W ? charge : Math.max(p.chargePeakW, charge);
    // Battery first: the car gets only what the batteries cannot take.
    const reservedW = wantsPriority ? chargePeakW : 0;
    return {
        surplusW: Math.max(0, Math.round(free + allowed - reservedW)),
        storageHomeW: home,
        storageAllW: all,
        drainW: drain,
        reservedW,
        chargePeakW,
    };
}
