// A charging plan's decision: a car is to get `energyWh` more by `departure`; the wallbox can
// deliver about `powerW`. Charging in the cheapest time first is optimal here (the cost is linear
// in the energy of each stretch of time, and every stretch takes at most powerW × its length), so
// the plan takes the stretches between now and the departure in order of price — time without a
// known price last — until they hold the energy, and charges now exactly when the present
// stretch is among them. Decided again every cycle from what is still missing, so that a car
// that draws less than assumed is given more time, and one that draws more stops earlier.
//
// Pure: no clock, no I/O.
import type { PriceSlot } from './price-list';

export type EnergyPlanState =
    /** The energy is there: nothing more until the departure. */
    | 'done'
    /** In one of the cheapest stretches: charging. */
    | 'charging'
    /** Waiting for a cheaper stretch. */
    | 'waiting'
    /** The energy cannot be had by the departure: charging at full power as soon as possible. */
    | 'late'
    /** No price between now and the departure: charging normally. */
    | 'no-prices';

export interface EnergyPlanInput {
    now: number;
    /** ms, Unix epoch. */
    departure: number;
    /** Energy still to charge (Wh). */
    energyWh: number;
    /** What the wallbox can deliver to the car (W). */
    powerW: number;
    slots: readonly PriceSlot[];
}

export interface Stretch {
    start: number;
    end: number;
    /** Per kWh; null where the list says nothing. */
    price: number | null;
}

export interface EnergyPlanDecision {
    state: EnergyPlanState;
    /** Whether the wallbox may charge now. */
    charge: boolean;
    /** The stretches chosen for charging, in time order (adjacent ones merged). */
    windows: Stretch[];
    /** What the chosen energy costs at the known prices (currency), for display. */
    cost: number;
}

const HOUR_MS = 3_600_000;

/** The time from now to the departure cut at the list's slot edges, gaps without a price. */
export function stretches(slots: readonly PriceSlot[], now: number, departure: number): Stretch[] {
    const out: Stretch[] = [];
    let t = now;
    for (const s of slots) {
        if (s.end <= t) continue;
        if (s.start >= departure) break;
        if (s.start > t) out.push({ start: t, end: s.start, price: null });
        const end = Math.min(s.end, departure);
        out.push({ start: Math.max(s.start, t), end, price: s.price });
        t = end;
        if (t >= departure) break;
    }
    if (t < departure) out.push({ start: t, end: departure, price: null });
    return out;
}

export function planEnergy(input: EnergyPlanInput): EnergyPlanDecision {
    const { now, departure, energyWh, powerW, slots } = input;
    if (energyWh <= 0) return { state: 'done', charge: false, windows: [], cost: 0 };
    const parts = stretches(slots, now, Math.max(now, departure));
    const priced = parts.some((p) => p.price !== null);
    const full = (state: EnergyPlanState): EnergyPlanDecision => ({
        state,
        charge: true,
        windows: departure > now ? [{ start: now, end: departure, price: null }] : [],
        cost: 0,
    });
    if (!priced) return full('no-prices');
    const capacityWh = (p: Stretch) => (powerW * (p.end - p.start)) / HOUR_MS;
    const total = parts.reduce((t, p) => t + capacityWh(p), 0);
    if (!(powerW > 0) || total < energyWh) return full('late');

    const order = [...parts].sort(
        (a, b) => (a.price ?? Infinity) - (b.price ?? Infinity) || a.start - b.start,
    );
    const chosen: Stretch[] = [];
    let missing = energyWh;
    let cost = 0;
    for (const p of order) {
        if (missing <= 0) break;
        const wh = Math.min(missing, capacityWh(p));
        chosen.push(p);
        missing -= wh;
        if (p.price !== null) cost += (p.price * wh) / 1000;
    }
    chosen.sort((a, b) => a.start - b.start);
    const windows: Stretch[] = [];
    for (const c of chosen) {
        const last = windows[windows.length - 1];
        if (last && last.end === c.start && last.price === c.price) last.end = c.end;
        else windows.push({ ...c });
    }
    const charge = chosen.some((c) => c.start <= now && now < c.end);
    return { state: charge ? 'charging' : 'waiting', charge, windows, cost };
}
