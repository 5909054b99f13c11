// Users' charging rules (with override U/u and E/e) and budgets per user or card: a used-up budget
// stops charging until its period resets; a card's budget replaces the user's.
import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import { CnfContext } from '../../../lib/cnf/context';
import { handleCnf } from '../../../lib/cnf/handle';
import { MemoryUsers } from '../../../lib/cnf/users';
import { Site } from '../../../lib/site/site';
import { TEST_SCRYPT } from '../../support/cnf';

const USER = '2167520770';
const CARD = '4711';
const CARD_WITH_BUDGET = '0815';
/** 16 A on three phases at 230 V: 184 Wh a minute. */
const FULL_W = 11_040;

interface Setup {
    evseRules?: unknown[];
    userRules?: unknown[];
    userBudget?: unknown;
    cardBudget?: unknown;
}

function site(setup: Setup) {
    // Noon on a Monday, local time: day resets happen at the next local midnight.
    const start = new Date(2026, 10, 23, 12, 0, 0).getTime();
    const clock = new ManualClock(start);
    const s = new Site({
        params: { reserve_current: 0, increase_hold_time: 0, max_increase_per_cycle: 100_000 },
        clock,
        devices: [
            {
                dev_type: 'evse_ajax',
                dev_id: 'E1',
                used_phases: 7,
                ...(setup.evseRules ? { charging_rules: setup.evseRules } : {}),
            },
            { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
        ],
    });
    const users = new MemoryUsers([
        {
            id: USER,
            name: 'wusel',
            dev_ids: ['E1'],
            rfids: [
                { id: CARD },
                {
                    id: CARD_WITH_BUDGET,
                    ...(setup.cardBudget ? { budget: setup.cardBudget } : {}),
                },
            ],
            charging_rules: setup.userRules ?? [],
            ...(setup.userBudget ? { budget: setup.userBudget } : {}),
        },
    ]);
    const ctx = new CnfContext(s, { users, scrypt: TEST_SCRYPT, now: () => clock.now() });
    let energyWh = 0;
    const call = (query: string) =>
        handleCnf({ method: 'GET', remoteAddress: '127.0.0.1', query }, ctx);
    /** One cycle with the car charging at `powerW` since the last one; returns E1's current. */
    const cycle = async (powerW = FULL_W) => {
        pushReadings(powerW);
        return (await s.manager.runCycle()).result.setpoints.get('E1')!.current;
    };
    const pushReadings = (powerW: number) => {
        s.push('E1', {
            state: powerW > 0 ? 3 : 2,
            currents: powerW > 0 ? [16_000, 16_000, 16_000] : [0, 0, 0],
            powerW,
            totalEnergyWh: energyWh,
        });
        s.push('M1', { powerW: 0, currents: [0, 0, 0] });
    };
    /** `minutes` of charging at `powerW`, one cycle per minute, the counter counting. */
    const charge = async (minutes: number, powerW = FULL_W) => {
        let current = -1;
        for (let i = 0; i < minutes; i++) {
            clock.advance(60_000);
            energyWh += powerW / 60;
            current = await cycle(powerW);
        }
        return current;
    };
    return { s, ctx, clock, call, cycle, charge };
}

describe('/cnf user charging rules', function () {
    it("the user's rule applies once the user is identified; the smaller of EVSE and user wins", async () => {
        const t = site({
            evseRules: [{ mode: 0, current: 10_000 }],
            userRules: [{ current: 8000 }],
        });
        assert.equal(await t.cycle(), 0, 'waiting for authorisation');
        assert.equal((await t.call(`cmd=enter_rfid&rfid=${CARD}&dev_id=E1`)).status, 200);
        assert.equal(await t.cycle(), 8000, 'user rule 8 A below EVSE rule 10 A');
        await t.s.stop();

        const u = site({ evseRules: [{ mode: 0, current: 7000 }], userRules: [{ current: 8000 }] });
        await u.call(`cmd=enter_rfid&rfid=${CARD}&dev_id=E1`);
        assert.equal(await u.cycle(), 7000, 'EVSE rule 7 A below user rule 8 A');
        await u.s.stop();
    });

    it('override U switches the user rules off until u; E/e does the same for the EVSE rules', async () => {
        const t = site({
            evseRules: [{ mode: 0, current: 12_000 }],
            userRules: [{ current: 8000 }],
        });
        await t.call(`cmd=enter_rfid&rfid=${CARD}&dev_id=E1`);
        assert.equal(await t.cycle(), 8000);
        const u = await t.call(`cmd=override_device&dev_id=E1&flags=U&rfid=${CARD}`);
        assert.equal(u.status, 200, u.body);
        assert.equal(await t.cycle(), 12_000, 'user rules off: the EVSE rule alone');
        await t.call(`cmd=override_device&dev_id=E1&flags=u&rfid=${CARD}`);
        assert.equal(await t.cycle(), 8000, 'user rules on again');
        await t.call('cmd=override_device&dev_id=E1&flags=E');
        assert.equal(await t.cycle(), 8000, 'EVSE rules off: the user rule alone');
        await t.call('cmd=override_device&dev_id=E1&flags=UE&rfid=' + CARD);
        assert.equal(await t.cycle(), 16_000, 'no rules at all: the wallbox maximum');
        await t.s.stop();
    });

    it('a user rule that matches nothing gives 0, like any rule list', async () => {
        const t = site({ userRules: [{ current: 8000, days: 0 }] });
        await t.call(`cmd=enter_rfid&rfid=${CARD}&dev_id=E1`);
        assert.equal(await t.cycle(), 0);
        await t.s.stop();
    });
});

describe('/cnf budgets', function () {
    it('a daily kWh budget stops charging when used up and resets at local midnight', async () => {
        const t = site({ userBudget: { unit: 'kwh', amount: 1, reset: 'daily' } });
        await t.call(`cmd=enter_rfid&rfid=${CARD}&dev_id=E1`);
        assert.equal(await t.cycle(), 16_000);
        // 5 minutes = 0.92 kWh: still within the budget.
        assert.equal(await t.charge(5), 16_000);
        // The sixth minute passes 1 kWh: charging stops.
        assert.equal(await t.charge(1), 0);
        assert.ok(t.ctx.budgets.remaining(t.ctx.sessionBudgetAt('E1')!, t.clock.now()) <= 0);
        assert.equal(await t.charge(60, 0), 0, 'stays stopped through the day');
        // Past local midnight the budget is full again.
        const now = new Date(t.clock.now());
        const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1).getTime();
        t.clock.advance(midnight - t.clock.now() + 60_000);
        assert.equal(await t.cycle(0), 16_000, 'a new day, a new budget');
        await t.s.stop();
    });

    it('a one-off minutes budget counts only time spent charging and never resets', async () => {
        const t = site({ userBudget: { unit: 'minutes', amount: 10, reset: 'once' } });
        await t.call(`cmd=enter_rfid&rfid=${CARD}&dev_id=E1`);
        await t.cycle();
        assert.equal(await t.charge(30, 0), 16_000, 'plugged in but not charging: no time used');
        assert.equal(await t.charge(9), 16_000);
        assert.equal(await t.charge(1), 0, 'ten minutes of charging used it up');
        t.clock.advance(400 * 24 * 3600_000);
        assert.equal(await t.cycle(0), 0, 'a one-off budget stays used up');
        await t.s.stop();
    });

    it("a card's own budget replaces the user's while the card is in use", async () => {
        const t = site({
            userBudget: { unit: 'kwh', amount: 100, reset: 'monthly' },
            cardBudget: { unit: 'kwh', amount: 0.5, reset: 'weekly' },
        });
        await t.call(`cmd=enter_rfid&rfid=${CARD_WITH_BUDGET}&dev_id=E1`);
        await t.cycle();
        assert.equal(await t.charge(2), 16_000, '0.37 kWh of the card');
        assert.equal(await t.charge(1), 0, '0.55 kWh: the card budget is used up');
        assert.deepEqual(Object.keys(t.ctx.budgets.snapshot()), [`rfid:${CARD_WITH_BUDGET}`]);
        await t.s.stop();
    });

    it('the user without a card budget: the card counts against the user', async () => {
        const t = site({ userBudget: { unit: 'kwh', amount: 0.3, reset: 'weekly' } });
        await t.call(`cmd=enter_rfid&rfid=${CARD}&dev_id=E1`);
        await t.cycle();
        assert.equal(await t.charge(1), 16_000, '0.18 kWh');
        assert.equal(await t.charge(1), 0, '0.37 kWh > 0.3 kWh');
        assert.deepEqual(Object.keys(t.ctx.budgets.snapshot()), [`user:${USER}`]);
        await t.s.stop();
    });

    it('a bad budget is rejected with the field named, and the user stays as it was', async () => {
        const t = site({});
        const before = JSON.stringify(t.ctx.users.list());
        for (const [budget, message] of [
            [{ unit: 'litres', amount: 1 }, /user\.budget\.unit/],
            [{ unit: 'kwh', amount: -1 }, /user\.budget\.amount/],
            [{ unit: 'kwh', amount: 1, reset: 'hourly' }, /user\.budget\.reset/],
            [{ unit: 'kwh', amount: 1, extra: 1 }, /user\.budget/],
        ] as const) {
            const r = await handleCnf(
                {
                    method: 'POST',
                    remoteAddress: '127.0.0.1',
                    query: 'cmd=set_user',
                    body: JSON.stringify({ id: USER, name: 'x', budget }),
                },
                t.ctx,
            );
            assert.equal(r.status, 400, r.body);
            assert.match(r.body, message);
        }
        assert.equal(JSON.stringify(t.ctx.users.list()), before);
        await t.s.stop();
    });
});
