// Prices in a running site: price_level rules and the CM._price / CM._price_level formula names
// read what a flow pushed (or the vendor's _set_price variables), and a plan with a target
// charges its energy by the departure in the cheapest hours, through real cycles of a simulated
// wallbox, at the cost of an independently computed optimum.
import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import { parsePriceList, type PriceSlot } from '../../../lib/prices/price-list';
import type { PlanTarget } from '../../../lib/site/controls';
import { Site } from '../../../lib/site/site';

const H = 3_600_000;
const START = new Date(2026, 11, 3, 18, 0, 0).getTime();

function simSite(opts: { evse?: Record<string, unknown>; params?: Record<string, unknown> } = {}) {
    const clock = new ManualClock(START);
    const site = new Site({
        clock,
        params: {
            max_total_current: 32_000,
            reserve_current: 0,
            increase_hold_time: 0,
            max_increase_per_cycle: 100_000,
            ...opts.params,
        },
        devices: [
            {
                dev_type: 'evse_sim',
                dev_id: 'E1',
                max_charging_cur: 16_000,
                sim_battery_wh: 200_000,
                sim_soc: 0.1,
                ...opts.evse,
            },
            {
                dev_type: 'meter_sim',
                dev_id: 'M1',
                role: 3,
                sim_base_current: 0,
                sim_step_current: 0,
            },
        ],
    });
    const cycle = async (ms = 30_000) => {
        clock.advance(ms);
        return (await site.manager.runCycle()).result.setpoints.get('E1')!.current;
    };
    return { site, clock, cycle };
}

const hourly = (prices: readonly number[], from = START): PriceSlot[] =>
    parsePriceList(
        prices.map((p, i) => ({
            start: from + i * H,
            end: from + (i + 1) * H,
            price: p,
            unit: 'EUR/kWh',
        })),
    );

/** Least cost of energyWh with at most powerWh per hour, by dynamic programming (unit 10 Wh). */
function optimum(prices: readonly number[], powerWh: number, energyWh: number) {
    const unit = 10;
    const units = Math.ceil(energyWh / unit);
    const cap = Math.floor(powerWh / unit);
    let best = Array.from({ length: units + 1 }, (_, e) => (e === 0 ? 0 : Infinity));
    for (const price of prices) {
        const next = best.slice();
        for (let e = 1; e <= units; e++) {
            for (let x = 1; x <= Math.min(cap, e); x++) {
                const c = best[e - x]! + (price * x * unit) / 1000;
                if (c < next[e]!) next[e] = c;
            }
        }
        best = next;
    }
    return best[units]!;
}

describe('site: prices, price rules and plans', function () {
    this.timeout(30_000);

    it('a price_level rule matches only while the price level is at most its own', async () => {
        const t = simSite({
            evse: { charging_rules: [{ mode: 0, current: 16_000, price_level: 2 }] },
        });
        assert.equal(await t.cycle(), 0, 'no price: the rule does not match, rules give 0');
        t.site.prices.set(
            parsePriceList([
                { startsAt: new Date(START).toISOString(), total: 0.12, level: 'CHEAP' },
                { startsAt: new Date(START + H).toISOString(), total: 0.4, level: 'EXPENSIVE' },
            ]),
        );
        assert.equal(await t.cycle(), 16_000, 'cheap: charges');
        t.clock.advance(H);
        assert.equal(await t.cycle(), 0, 'expensive: waits');
        // The vendor's variable wins over the list.
        t.site.variables.set('_set_price_level', 1, { tmp: true });
        assert.equal(await t.cycle(), 16_000);
        assert.equal(t.site.priceNow().source, 'variables');
        await t.site.stop();
    });

    it('formulas read CM._price and CM._price_level; without a price they have no value', async () => {
        const t = simSite({ evse: { max_charging_cur: 'CM._price < 0.2 ? 16000 : 8000' } });
        assert.equal(await t.cycle(), 0, 'no price yet: the formula cannot be evaluated');
        assert.match(t.site.formulaErrors.join('\n'), /CM\._price/);
        t.site.prices.set(hourly([0.1, 0.3]));
        assert.equal(await t.cycle(), 16_000);
        t.clock.advance(H);
        assert.equal(await t.cycle(), 8000);
        t.site.variables.set('_set_price', 0.05, { tmp: true });
        assert.equal(await t.cycle(), 16_000, '_set_price');
        await t.site.setDevice({ dev_id: 'E1', max_charging_cur: 'CM._price_level * 2000 + 6000' });
        t.site.variables.clear({ tmp: true });
        // 0.1 and 0.3 around an average of 0.2: the second is 150 % → level 5
        assert.equal(await t.cycle(), 16_000);
        await t.site.stop();
    });

    it('a plan charges its energy by the departure in the cheapest hours, at the optimal cost', async () => {
        const prices = [0.35, 0.32, 0.3, 0.18, 0.12, 0.15, 0.28, 0.33];
        const t = simSite();
        t.site.prices.set(hourly(prices));
        const target: PlanTarget = { energyWh: 25_000, departure: START + 8 * H, chargedWh: 0 };
        t.site.limits.plans.set('E1', { cplan: [], tmp: true, target });
        const counter = () =>
            (t.site.manager.deviceState('E1').sample.reading as { totalEnergyWh: number })
                .totalEnergyWh;
        await t.site.manager.runCycle();
        const perHour = prices.map(() => 0);
        let last = counter();
        let maxCurrent = 0;
        while (t.clock.now() < START + 8 * H) {
            const hour = Math.floor((t.clock.now() - START) / H);
            maxCurrent = Math.max(maxCurrent, await t.cycle());
            const now = counter();
            perHour[hour]! += now - last;
            last = now;
        }
        const charged = perHour.reduce((a, b) => a + b, 0);
        const cost = perHour.reduce((c, wh, h) => c + (prices[h]! * wh) / 1000, 0);
        // The wallbox's 16 A on three phases: 11 040 W.
        const best = optimum(prices, 11_040, charged);
        assert.ok(charged >= 25_000 - 100, `charged ${charged} Wh`);
        assert.ok(charged <= 25_000 + 100, `not more than asked: ${charged} Wh`);
        assert.ok(cost <= best * 1.01, `cost ${cost.toFixed(3)} vs optimum ${best.toFixed(3)}`);
        for (const h of [0, 1, 2, 6, 7]) assert.equal(perHour[h], 0, `nothing at ${prices[h]}`);
        assert.equal(maxCurrent, 16_000);
        assert.equal(t.site.limits.plans.has('E1'), false, 'departed: the plan is over');
        await t.site.stop();
    });

    it('a plan that cannot be met charges at full power at once, in the dearest hour', async () => {
        const t = simSite();
        t.site.prices.set(hourly([0.5, 0.1, 0.1]));
        const target: PlanTarget = { energyWh: 40_000, departure: START + 3 * H, chargedWh: 0 };
        t.site.limits.plans.set('E1', { cplan: [], tmp: true, target });
        assert.equal(await t.cycle(), 16_000);
        assert.equal(target.decision?.state, 'late');
        await t.site.stop();
    });

    it('a plan without prices charges normally and says so', async () => {
        const t = simSite();
        const target: PlanTarget = { energyWh: 10_000, departure: START + 8 * H, chargedWh: 0 };
        t.site.limits.plans.set('E1', { cplan: [], tmp: true, target });
        assert.equal(await t.cycle(), 16_000);
        assert.equal(target.decision?.state, 'no-prices');
        await t.site.stop();
    });

    it('under a smaller fuse the plan counts with what the fuse allows and still makes it', async () => {
        // 10 A for the site: 6900 W; 20 kWh need 2.9 h of the 4 cheapest hours
        const prices = [0.4, 0.2, 0.1, 0.3, 0.15, 0.35];
        const t = simSite({ params: { max_total_current: 10_000 } });
        t.site.prices.set(hourly(prices));
        const target: PlanTarget = { energyWh: 20_000, departure: START + 6 * H, chargedWh: 0 };
        t.site.limits.plans.set('E1', { cplan: [], tmp: true, target });
        let maxCurrent = 0;
        while (t.clock.now() < START + 6 * H - 30_000) {
            maxCurrent = Math.max(maxCurrent, await t.cycle());
        }
        assert.ok(maxCurrent <= 10_000, `never above the fuse: ${maxCurrent}`);
        assert.ok(target.chargedWh >= 20_000 - 100, `charged ${target.chargedWh}`);
        assert.equal(target.decision?.state, 'done');
        await t.site.stop();
    });
});
