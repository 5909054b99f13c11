// A control command is answered "ok" once a decision has taken it in: a client that reads
// get_dev_info right after (the Home Assistant integration does, after a switch) sees the
// command's effect, not the state of the last cycle. The cycle here is a minute long, so that
// only the command's own decision can show it.
import assert from 'node:assert/strict';
import { CnfContext } from '../../../lib/cnf/context';
import { Site } from '../../../lib/site/site';
import { ADMIN_PASSWORD, adminCall, TEST_SCRYPT } from '../../support/cnf';

type Json = Record<string, unknown>;

describe('control commands are decided at once', function () {
    this.timeout(20_000);
    let site: Site;
    let ctx: CnfContext;
    let cycles = 0;

    beforeEach(async () => {
        site = new Site({
            params: {
                cycle_ms: 60_000,
                min_pause_time: 0,
                max_total_current: 32_000,
                reserve_current: 0,
                max_increase_per_cycle: 100_000,
                increase_hold_time: 0,
            },
            devices: [
                {
                    dev_type: 'evse_sim',
                    dev_id: 'E1',
                    max_charging_cur: 16_000,
                    sim_car_current: 16_000,
                },
                {
                    dev_type: 'meter_sim',
                    dev_id: 'M1',
                    role: 3,
                    sim_base_current: 2000,
                    sim_step_current: 0,
                },
            ],
        });
        ctx = new CnfContext(site, { adminPassword: ADMIN_PASSWORD, scrypt: TEST_SCRYPT });
        await ctx.auth.password.ready();
        cycles = 0;
        const first = new Promise<void>((resolve) =>
            site.manager.events.on('cycle', (report) => {
                if (report.kind === 'cycle') cycles++;
                resolve();
            }),
        );
        site.start();
        await first;
    });
    afterEach(async () => {
        ctx.close();
        await site.stop();
    });

    const call = (query: string, body?: unknown) => adminCall(ctx, query, body);
    const e1 = async () => {
        const info = (await call('cmd=get_dev_info')) as { devices: Json[] };
        return info.devices.find((d) => d.dev_id === 'E1')!;
    };

    it('override C shows and is written before the answer; clearing it shows too', async () => {
        assert.equal((await e1()).charging_enabled, true);
        assert.equal(await call('cmd=override_device&dev_id=E1&flags=C'), 'ok');
        const off = await e1();
        assert.equal(off.charging_enabled, false);
        assert.equal(off.last_set_charging_cur, 0, 'the wallbox has been told');
        assert.equal(site.manager.deviceState('E1').lastCommand?.current, 0);
        assert.equal(await call('cmd=override_device&dev_id=E1&flags=c'), 'ok');
        assert.equal((await e1()).charging_enabled, true);
        assert.equal(cycles, 1, 'no scheduled cycle ran meanwhile');
    });

    it('a lower max_total_current is in force for the very next read', async () => {
        const before = (await e1()).last_set_charging_cur as number;
        assert.ok(before > 10_000, `${before}`);
        assert.equal(await call('cmd=set_params', { max_total_current: 10_000 }), 'ok');
        const after = (await e1()).last_set_charging_cur as number;
        assert.ok(after <= 10_000 - 2000, `${after} mA with 2 A of household on a 10 A limit`);
        assert.equal(cycles, 1);
    });

    it('cycle_time is measured, not the configured period', async () => {
        const info = (await call('cmd=get_dev_info')) as { params: { cycle_time: number } };
        // One cycle so far: its own duration (a simulated site decides in milliseconds).
        assert.ok(info.params.cycle_time < 1000, `${info.params.cycle_time} ms`);
        assert.equal(info.params.cycle_time, Math.round(site.manager.measuredCycleMs));
    });

    it('a pushed overload of the grid meter is decided at once, without a command', async () => {
        await site.setDevice({ dev_type: 'meter_ajax', dev_id: 'M2', role: 3 });
        site.push('M2', { powerW: 0, currents: [40_000, 40_000, 40_000] });
        await new Promise((r) => setImmediate(r));
        const last = site.manager.lastCycle!;
        assert.equal(last.kind, 'reading');
        assert.ok(last.result.setpoints.get('E1')!.current < 16_000);
    });
});
