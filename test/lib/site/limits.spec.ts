// The site's limits stage without any /cnf object: authorisation, overrides, used-up budgets,
// plans and formulas cap a simulated wallbox, both in site.limits.limits(now) and in real cycles.
import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import type { CycleLimits } from '../../../lib/core/engine';
import type { SimEvse } from '../../../lib/devices/sim';
import { OVERRIDE } from '../../../lib/site/controls';
import { Site, type SiteOptions } from '../../../lib/site/site';
import { MemoryUsers } from '../../../lib/users/directory';

const USER = '2167520770';
const CARD = '4711';
const OTHER_USER = '3141592653';
const OTHER_CARD = '0815';

interface Setup {
    /** Assign USER to the wallbox (its entry's `users`). */
    assigned?: boolean;
    budget?: unknown;
    evse?: Record<string, unknown>;
    params?: Record<string, unknown>;
    inputs?: SiteOptions['inputs'];
}

function simSite(setup: Setup = {}) {
    const clock = new ManualClock(new Date(2026, 10, 23, 12, 0, 0).getTime());
    const site = new Site({
        clock,
        params: {
            max_total_current: 32_000,
            reserve_current: 0,
            increase_hold_time: 0,
            max_increase_per_cycle: 100_000,
            ...setup.params,
        },
        devices: [
            {
                dev_type: 'evse_sim',
                dev_id: 'E1',
                max_charging_cur: 16_000,
                ...(setup.assigned ? { users: [USER] } : {}),
                ...setup.evse,
            },
            {
                dev_type: 'meter_sim',
                dev_id: 'M1',
                role: 3,
                sim_base_current: 0,
                sim_step_current: 0,
            },
        ],
        users: new MemoryUsers([
            {
                id: USER,
                rfids: [{ id: CARD }],
                ...(setup.budget ? { budget: setup.budget } : {}),
            },
            { id: OTHER_USER, rfids: [{ id: OTHER_CARD }] },
        ]),
        ...(setup.inputs ? { inputs: setup.inputs } : {}),
    });
    const evse = site.manager.driver('E1') as SimEvse;
    /** One cycle `ms` after the last; the current E1 is given. */
    const cycle = async (ms = 30_000) => {
        clock.advance(ms);
        return (await site.manager.runCycle()).result.setpoints.get('E1')!.current;
    };
    const enter = (token: string) =>
        site.authorisation.rfids.set('E1', {
            rfid: token,
            user: site.authorisation.userFor(token),
            at: clock.now(),
        });
    return { site, clock, evse, cycle, enter };
}

const capOf = (l: CycleLimits, id = 'E1') => l.limits?.get(id);

describe('site: the limits stage', function () {
    it('no caps for a wallbox nobody is assigned to, without rules, overrides or formulas', async () => {
        const t = simSite();
        await t.site.manager.runCycle();
        assert.equal(capOf(t.site.limits.limits(t.clock.now())), undefined);
        assert.equal(await t.cycle(), 16_000);
        await t.site.stop();
    });

    it('a wallbox with assigned users keeps a plugged car at 0 until one of them is identified', async () => {
        const t = simSite({ assigned: true });
        await t.site.manager.runCycle(); // sense: the car is there
        assert.equal(capOf(t.site.limits.limits(t.clock.now())), 0, 'waiting for a card');
        assert.equal(await t.cycle(), 0);
        assert.equal(t.site.manager.lastCycle!.snapshot.limits?.get('E1'), 0);
        assert.equal(t.site.authorisation.waitingForAuth('E1'), true);

        t.enter(OTHER_CARD); // a known card of a user not assigned here
        assert.equal(await t.cycle(), 0, 'a user who may not charge here does not release it');

        t.enter(CARD);
        assert.equal(capOf(t.site.limits.limits(t.clock.now())), undefined);
        assert.equal(await t.cycle(), 16_000, 'identified: charges');
        await t.cycle();
        assert.ok(t.site.manager.lastCycle!.snapshot.evses.get('E1')?.reading?.powerW, 'charging');

        // Unplugging ends the session: the next car must be identified again.
        t.evse.unplug();
        await t.cycle();
        assert.equal(t.site.authorisation.rfids.has('E1'), false);
        t.evse.plug({ batteryWh: 60_000, soc: 0.3, maxCurrent: 16_000, phases: 3 });
        await t.cycle();
        assert.equal(await t.cycle(), 0, 'the new car waits for a card');
        await t.site.stop();
    });

    it('override C caps to 0, mamps to its current; both end when the car is unplugged', async () => {
        const t = simSite();
        t.site.limits.overrides.set('E1', { flags: OVERRIDE.chargingDisabled, current: null });
        assert.equal(capOf(t.site.limits.limits(t.clock.now())), 0);
        assert.equal(await t.cycle(), 0);
        t.site.limits.overrides.set('E1', { flags: 0, current: 8000 });
        assert.equal(await t.cycle(), 8000);
        t.evse.unplug();
        await t.cycle();
        assert.equal(t.site.limits.overrides.has('E1'), false);
        t.evse.plug({ batteryWh: 60_000, soc: 0.3, maxCurrent: 16_000, phases: 3 });
        await t.cycle();
        assert.equal(await t.cycle(), 16_000);
        await t.site.stop();
    });

    it('a used-up budget caps to 0', async () => {
        // Two minutes of charging allowed; a cycle every 30 s. The first cycle starts the car, the
        // next three count 90 s of charging, the fourth the full two minutes.
        const t = simSite({ budget: { unit: 'minutes', amount: 2, reset: 'once' } });
        t.enter(CARD);
        assert.equal(await t.cycle(), 16_000);
        for (let i = 1; i <= 3; i++) assert.equal(await t.cycle(), 16_000, `cycle ${i}`);
        assert.equal(await t.cycle(), 0, 'two minutes charged: the budget is used up');
        const session = t.site.authorisation.sessionBudgetAt('E1')!;
        assert.equal(session.key, `user:${USER}`);
        assert.ok(t.site.limits.budgets.remaining(session, t.clock.now()) <= 0);
        assert.equal(capOf(t.site.limits.limits(t.clock.now())), 0);
        await t.site.stop();
    });

    it('formula caps: max_charging_cur and max_total_current follow a CM variable', async () => {
        const t = simSite({
            evse: { max_charging_cur: 'CM.car' },
            params: { max_total_current: 'CM.fuse' },
        });
        t.site.variables.set('car', 10_000);
        t.site.variables.set('fuse', 7000);
        const l = t.site.limits.limits(t.clock.now());
        assert.equal(capOf(l), 10_000);
        assert.equal(l.maxTotalCurrent, 7000);
        assert.equal(await t.cycle(), 7000, 'the total is the tighter cap');
        t.site.variables.set('fuse', 25_000);
        assert.equal(await t.cycle(), 10_000, 'the wallbox formula is the tighter cap now');
        assert.equal(t.site.maxTotalCurrentNow, 25_000);
        assert.deepEqual(t.site.formulaErrors, []);
        t.site.variables.setMany([{ name: 'fuse', expr: 25_000 }], { clear: true });
        assert.equal(await t.cycle(), 0, 'a formula without a value stops the car');
        assert.match(t.site.formulaErrors.join('\n'), /E1\.max_charging_cur/);
        await t.site.stop();
    });

    it('the lowest cap wins: rule, override, plan and an outside source merge into one map', async () => {
        let outside = 9000;
        const t = simSite({
            evse: { charging_rules: [{ mode: 0, current: 12_000 }] },
            inputs: {
                limits: () => ({ limits: new Map([['E1', outside]]), maxTotalCurrent: 30_000 }),
            },
        });
        const l = t.site.limits.limits(t.clock.now());
        assert.equal(capOf(l), 9000);
        assert.equal(l.maxTotalCurrent, 30_000);
        assert.equal(await t.cycle(), 9000);
        outside = 20_000;
        assert.equal(await t.cycle(), 12_000, 'the rule');
        t.site.limits.overrides.set('E1', { flags: 0, current: 11_000 });
        assert.equal(await t.cycle(), 11_000, 'mamps');
        // A plan entry over the whole day, and one that does not cover the present minute.
        const minute = new Date(t.clock.now()).getHours() * 60 + 2;
        t.site.limits.plans.set('E1', {
            cplan: [
                { dc: false, st: 0, dr: 1440, lm: 10_000 },
                { dc: false, st: (minute + 120) % 1440, dr: 30, lm: 6000 },
                { dc: true, st: 0, dr: 1440, lm: 0 },
            ],
            tmp: true,
        });
        assert.equal(await t.cycle(), 10_000, 'the plan');
        await t.site.stop();
    });
});
