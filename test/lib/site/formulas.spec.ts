// Formula-valued limits (max_total_current, max_charging_cur), CM variables read by formulas and
// rules, and what happens when a formula cannot be evaluated.
import assert from 'node:assert/strict';
import { CnfContext } from '../../../lib/cnf/context';
import { handleCnf } from '../../../lib/cnf/handle';
import { ManualClock } from '../../../lib/core/clock';
import { Site } from '../../../lib/site/site';
import { TEST_SCRYPT } from '../../support/cnf';

const PARAMS = {
    reserve_current: 0,
    increase_hold_time: 0,
    max_increase_per_cycle: 100_000,
};

function oneCar(params: Record<string, unknown>, evse: Record<string, unknown> = {}) {
    const clock = new ManualClock(Date.UTC(2026, 10, 23, 12));
    const site = new Site({
        params: { ...PARAMS, ...params },
        clock,
        devices: [
            { dev_type: 'evse_ajax', dev_id: 'E1', used_phases: 7, ...evse },
            { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
        ],
    });
    const cycle = async (gridW = 0) => {
        site.push('E1', { state: 2, currents: [0, 0, 0], powerW: 0 });
        site.push('M1', { powerW: gridW, currents: [0, 0, 0] });
        return (await site.manager.runCycle()).result.setpoints.get('E1')!.current;
    };
    return { site, clock, cycle };
}

describe('site: formula-valued limits', () => {
    it('max_total_current follows a CM variable, cycle by cycle', async () => {
        const { site, cycle } = oneCar({ max_total_current: 'min(32000, CM.limit)' });
        site.variables.set('limit', 10_000);
        assert.equal(await cycle(), 10_000, 'the car gets what the formula leaves');
        assert.equal(site.maxTotalCurrentNow, 10_000);
        site.variables.set('limit', 40_000);
        assert.equal(await cycle(), 16_000, 'the formula caps at 32 A; the wallbox at 16 A');
        assert.equal(site.maxTotalCurrentNow, 32_000);
        assert.deepEqual(site.formulaErrors, []);
        await site.stop();
    });

    it('a formula that cannot be evaluated stops charging and says why', async () => {
        const { site, cycle } = oneCar({ max_total_current: 'CM.limit * 2' });
        assert.equal(await cycle(), 0, 'CM.limit is not set: nothing may charge');
        assert.equal(site.maxTotalCurrentNow, 0);
        assert.match(site.formulaErrors.join('\n'), /max_total_current: .*CM\.limit/);
        site.variables.set('limit', 4000);
        assert.equal(await cycle(), 8000);
        assert.deepEqual(site.formulaErrors, []);
        await site.stop();
    });

    it('max_charging_cur of a wallbox may be a formula over meter values', async () => {
        // Less for the car while the house imports more than 3 kW.
        const { site, cycle } = oneCar(
            { max_total_current: 32_000 },
            { max_charging_cur: 'M1.power_w > 3000 ? 6000 : 16000' },
        );
        assert.equal(await cycle(1000), 16_000);
        assert.equal(await cycle(5000), 6000);
        const e1 = site.device('E1')!;
        assert.equal(site.maxChargingCurrentNow(e1 as never), 6000);
        await site.stop();
    });

    it('a CM variable may read another, and a rule formula reads CM variables', async () => {
        const { site, cycle } = oneCar(
            { max_total_current: 32_000 },
            { charging_rules: [{ expr: 'CM.evcur' }] },
        );
        site.variables.setMany([
            { name: 'base', expr: 5000 },
            { name: 'evcur', expr: 'CM.base + 3000' },
        ]);
        assert.equal(await cycle(), 8000);
        site.variables.set('base', 9000);
        assert.equal(await cycle(), 12_000);
        await site.stop();
    });

    it('rejects formulas outside the grammar or reading unknown names, naming the field', () => {
        const site = new Site({ params: PARAMS });
        const before = site.params;
        for (const [value, message] of [
            ['1 +', /max_total_current: bad formula/],
            ['process.exit(1)', /max_total_current: bad formula/],
            ['foo * 2', /unknown name 'foo'/],
            ['constructor', /unknown name 'constructor'/],
            [-5, /a number from 0 to 10000000, or a formula/],
            ['1e400', /bad formula/],
        ] as const) {
            assert.throws(() => site.setParams({ max_total_current: value }), message);
        }
        assert.equal(site.params, before, 'nothing changed');
        assert.throws(
            () =>
                new Site({
                    devices: [{ dev_type: 'evse_sim', dev_id: 'E1', max_charging_cur: 'E1.(' }],
                }),
            /devices\[0\]\.max_charging_cur: bad formula/,
        );
    });

    it('plain numbers sent as text stay numbers', () => {
        const site = new Site({ params: { max_total_current: '25000' } });
        assert.equal(site.params.max_total_current, 25_000);
        assert.equal(site.maxTotalCurrentNow, 25_000);
        // mA with a fraction (clients that work in floats) are rounded to whole mA
        assert.equal(site.setParams({ max_total_current: '25000.0' }).max_total_current, 25_000);
        assert.equal(site.setParams({ max_total_current: 24999.6 }).max_total_current, 25_000);
    });
});

describe('/cnf: formula-valued max_total_current', () => {
    it('set_params takes a formula; get_params gives it back, get_dev_info the value in force', async () => {
        const { site, cycle } = oneCar({ max_total_current: 32_000 });
        const ctx = new CnfContext(site, { scrypt: TEST_SCRYPT });
        const call = async (query: string) => {
            const r = await handleCnf({ method: 'GET', remoteAddress: '127.0.0.1', query }, ctx);
            assert.equal(r.status, 200, r.body);
            return JSON.parse(r.body) as Record<string, unknown>;
        };
        const formula = 'min(20000, CM.lim)';
        await call(`cmd=set_params&max_total_current=${encodeURIComponent(formula)}`);
        await call('cmd=set_cm_vars&name=lim&val=12000');
        assert.equal(await cycle(), 12_000);
        const params = await call('cmd=get_params');
        assert.equal(params.max_total_current, formula);
        const info = await call('cmd=get_dev_info');
        assert.equal((info.params as Record<string, unknown>).max_total_current, 12_000);
        const bad = await handleCnf(
            {
                method: 'GET',
                remoteAddress: '127.0.0.1',
                query: 'cmd=set_params&max_total_current=2*%28',
            },
            ctx,
        );
        assert.equal(bad.status, 400);
        assert.match(bad.body, /max_total_current: bad formula/);
        assert.equal(site.params.max_total_current, formula, 'unchanged');
        await site.stop();
    });
});
