// The plan's choice of hours against an independent optimum: a dynamic programme over the hours
// of random price lists finds the cheapest way to charge the energy by the departure; following
// planEnergy minute by minute (re-deciding each minute, as the limits stage does each cycle) must
// cost exactly that and have the energy by then.
import assert from 'node:assert/strict';
import { planEnergy, stretches } from '../../../lib/prices/planner';
import type { PriceSlot } from '../../../lib/prices/price-list';

const H = 3_600_000;
const MIN = 60_000;
const T0 = Date.parse('2026-12-03T18:00:00Z');

/** mulberry32: a small seeded generator, so that a failing case can be repeated. */
function random(seed: number) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const hourly = (prices: readonly number[], from = T0): PriceSlot[] =>
    prices.map((price, i) => ({ start: from + i * H, end: from + (i + 1) * H, price, level: 3 }));

/**
 * The cheapest cost (currency) of `energyWh` in the hours before the departure, each hour taking
 * at most `powerWh`, by dynamic programming over the hours in units of `unitWh`: best[e] = the
 * least cost of e units in the hours seen so far.
 */
function optimum(prices: readonly number[], powerWh: number, energyWh: number, unitWh = 100) {
    const units = Math.round(energyWh / unitWh);
    const cap = Math.round(powerWh / unitWh);
    let best = Array.from({ length: units + 1 }, (_, e) => (e === 0 ? 0 : Infinity));
    for (const price of prices) {
        const next = best.slice();
        for (let e = 1; e <= units; e++) {
            for (let x = 1; x <= Math.min(cap, e); x++) {
                const c = best[e - x]! + (price * x * unitWh) / 1000;
                if (c < next[e]!) next[e] = c;
            }
        }
        best = next;
    }
    return best[units]!;
}

/** Follows the plan minute by minute with a car that draws exactly powerW while allowed. */
function follow(slots: PriceSlot[], departure: number, energyWh: number, powerW: number) {
    let charged = 0;
    let cost = 0;
    const states = new Set<string>();
    for (let t = T0; t < departure; t += MIN) {
        const d = planEnergy({ now: t, departure, energyWh: energyWh - charged, powerW, slots });
        states.add(d.state);
        if (!d.charge) continue;
        const wh = Math.min((powerW * MIN) / H, energyWh - charged);
        const price = slots.find((s) => s.start <= t && t < s.end)!.price;
        charged += wh;
        cost += (price * wh) / 1000;
    }
    return { charged, cost, states };
}

describe('charging plans: the cheapest hours', () => {
    it('cost exactly the optimum of 300 random price lists, and have the energy by the departure', () => {
        const rnd = random(17);
        for (let n = 0; n < 300; n++) {
            const hours = 2 + Math.floor(rnd() * 11);
            // prices with ties and negative ones, as day-ahead markets have them
            const prices = Array.from({ length: hours }, () => Math.round(rnd() * 40 - 5) / 100);
            // A minute's energy divides the target: the last minute of charging is whole, as it
            // is whole cycles in the site (there, one cycle's energy may go to a dearer hour).
            const powerW = [3600, 7200, 10800][Math.floor(rnd() * 3)]!;
            const unitWh = powerW / 60;
            const energyWh = unitWh * Math.floor(1 + rnd() * (60 * hours - 1));
            const slots = hourly(prices);
            const departure = T0 + hours * H;
            const got = follow(slots, departure, energyWh, powerW);
            const best = optimum(prices, powerW, energyWh, unitWh);
            const at = `case ${n}: prices ${prices.join(' ')}, ${powerW} W, ${energyWh} Wh`;
            assert.ok(Math.abs(got.charged - energyWh) < 1e-6, `${at}: charged ${got.charged}`);
            assert.ok(
                Math.abs(got.cost - best) < 1e-9,
                `${at}: cost ${got.cost} ≠ optimum ${best}`,
            );
        }
    });

    it('charges in the cheap night hours and waits through the expensive evening', () => {
        // 18:00 … 06:00; 22 kWh at 11 kW = two hours: the two cheapest (02:00 and 03:00)
        const prices = [0.4, 0.38, 0.35, 0.3, 0.28, 0.25, 0.22, 0.2, 0.12, 0.1, 0.15, 0.3];
        const slots = hourly(prices);
        const departure = T0 + 12 * H;
        const d = planEnergy({ now: T0, departure, energyWh: 22_000, powerW: 11_000, slots });
        assert.equal(d.state, 'waiting');
        assert.equal(d.charge, false);
        assert.deepEqual(
            d.windows.map((w) => [(w.start - T0) / H, (w.end - T0) / H]),
            [
                [8, 9],
                [9, 10],
            ],
        );
        assert.ok(Math.abs(d.cost - (0.12 * 11 + 0.1 * 11)) < 1e-9);
        assert.equal(
            planEnergy({ now: T0 + 9 * H, departure, energyWh: 11_000, powerW: 11_000, slots })
                .state,
            'charging',
        );
    });

    it('a plan that cannot be met charges at once, whatever the price', () => {
        const slots = hourly([0.5, 0.1, 0.1]);
        const d = planEnergy({
            now: T0,
            departure: T0 + 3 * H,
            energyWh: 40_000,
            powerW: 11_000,
            slots,
        });
        assert.equal(d.state, 'late');
        assert.equal(d.charge, true);
        const got = follow(slots, T0 + 3 * H, 40_000, 11_000);
        assert.deepEqual([...got.states], ['late']);
        assert.ok(Math.abs(got.charged - 33_000) < 1e-6, 'everything it could');
    });

    it('without a price between now and the departure it charges normally', () => {
        for (const slots of [[], hourly([0.1, 0.2], T0 - 5 * H), hourly([0.1], T0 + 10 * H)]) {
            const d = planEnergy({
                now: T0,
                departure: T0 + 4 * H,
                energyWh: 10_000,
                powerW: 11_000,
                slots,
            });
            assert.equal(d.state, 'no-prices');
            assert.equal(d.charge, true);
        }
    });

    it('time without a known price is used last: tomorrow not published yet', () => {
        // prices known until T0 + 3 h, departure at T0 + 6 h
        const slots = hourly([0.3, 0.2, 0.25]);
        const departure = T0 + 6 * H;
        const parts = stretches(slots, T0 + 30 * MIN, departure);
        assert.deepEqual(
            parts.map((p) => [(p.start - T0) / MIN, (p.end - T0) / MIN, p.price]),
            [
                [30, 60, 0.3],
                [60, 120, 0.2],
                [120, 180, 0.25],
                [180, 360, null],
            ],
        );
        // 2.5 h of energy: the three known stretches first (all known, though 0.3 is dearest)
        const d = planEnergy({
            now: T0 + 30 * MIN,
            departure,
            energyWh: 25_000,
            powerW: 10_000,
            slots,
        });
        assert.equal(d.charge, true);
        // 4 h: the unknown time is needed too
        const more = planEnergy({
            now: T0 + 30 * MIN,
            departure,
            energyWh: 40_000,
            powerW: 10_000,
            slots,
        });
        assert.equal(more.state, 'charging');
        assert.ok(more.windows.some((w) => w.price === null));
        // 1 h: only the cheapest known hour
        const less = planEnergy({
            now: T0 + 30 * MIN,
            departure,
            energyWh: 10_000,
            powerW: 10_000,
            slots,
        });
        assert.equal(less.charge, false);
        assert.deepEqual(
            less.windows.map((w) => w.price),
            [0.2],
        );
    });

    it('done once the energy is there', () => {
        const d = planEnergy({
            now: T0,
            departure: T0 + H,
            energyWh: 0,
            powerW: 11_000,
            slots: hourly([0.1]),
        });
        assert.deepEqual(d, { state: 'done', charge: false, windows: [], cost: 0 });
    });
});
