// The wallbox's own fail-safe and the released current, from the site's configuration to the
// Power Brain's registers: a Site drives simulated Power Brains over Modbus TCP on loopback, and an
// independent client (modbus-serial's own, not our bus) reads what the devices hold.
import assert from 'node:assert/strict';
import { BusPool } from '../../../lib/modbus/pool';
import { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import { Site } from '../../../lib/site/site';
import { registers } from '../../support/modbus';

const CAR = { batteryWh: 60_000, soc: 0.3, maxCurrent: 32_000, phases: 3 as const, followMs: 0 };

/** 8083/8084 (seconds, high word first) and 8085 (0.1 A) as the device should hold them. */
const failSafeWords = (seconds: number, mA: number) => [seconds >>> 16, seconds & 0xffff, mA / 100];

describe('site: Power Brain fail-safe and released current over Modbus', function () {
    this.timeout(20_000);
    let sims: PowerBrainSim[] = [];
    let pool: BusPool;
    let site: Site | undefined;

    beforeEach(async () => {
        sims = [0, 1, 2].map(() => new PowerBrainSim({ port: 0, plugged: true, car: CAR }));
        for (const sim of sims) await sim.start();
        pool = new BusPool({ timeoutMs: 1000 });
    });
    afterEach(async () => {
        await site?.stop();
        site = undefined;
        await pool.close();
        for (const sim of sims) await sim.close();
    });

    const wallbox = (i: number, extra: Record<string, unknown> = {}) => ({
        dev_type: 'evse_powerbrain',
        dev_id: `E${i + 1}`,
        address: `127.0.0.1:${sims[i]!.ports.evse}`,
        id: 1,
        used_phases: 7,
        ...extra,
    });
    const held = (i: number) => registers(sims[i]!.ports.evse, 8083, 3);

    it('programs each wallbox with its configured fail-safe, again when it changes, never in observe mode', async () => {
        site = new Site({
            params: { max_total_current: 63_000, reserve_current: 0, cycle_ms: 1000 },
            devices: [
                wallbox(0, { fail_safe_cur: 8000, fail_safe_duration: 60 }),
                wallbox(1, { fail_safe_cur: 0, fail_safe_duration: 30 }),
                wallbox(2, { min_charging_cur: 7000 }), // defaults: its minimum, 180 s
            ],
            pool,
        });
        await site.manager.runCycle();
        assert.deepEqual(await held(0), failSafeWords(60, 8000));
        assert.deepEqual(await held(1), failSafeWords(30, 0));
        assert.deepEqual(await held(2), failSafeWords(180, 7000));
        const flash = sims.map((s) => s.state.flashWrites);
        for (let i = 0; i < 5; i++) await site.manager.runCycle();
        assert.deepEqual(
            sims.map((s) => s.state.flashWrites),
            flash,
            'cycles write no register that goes to flash',
        );

        // A change of the device (as set_device makes it) is programmed with the next cycle.
        await site.setDevice({ dev_id: 'E1', fail_safe_cur: 10_000 });
        await site.setDevice({ dev_id: 'E3', min_charging_cur: 9000 });
        await site.manager.runCycle();
        assert.deepEqual(await held(0), failSafeWords(60, 10_000));
        assert.deepEqual(await held(2), failSafeWords(180, 9000), 'the minimum is the default');
        assert.equal(sims[1]!.state.flashWrites, flash[1], 'E2 was not touched');

        // Observe mode commands nothing: the device keeps what it holds.
        site.setParams({ lb_enabled: false });
        await site.setDevice({ dev_id: 'E2', fail_safe_cur: 6000 });
        await site.manager.runCycle();
        assert.deepEqual(await held(1), failSafeWords(30, 0));
        site.setParams({ lb_enabled: true });
        await site.manager.runCycle();
        assert.deepEqual(await held(1), failSafeWords(30, 6000));

        // A fail-safe time the engine could not keep alive is refused, and nothing changes.
        await site.setDevice({ dev_id: 'E1', fail_safe_duration: 5 });
        assert.throws(
            () => site!.setParams({ cycle_ms: 2000 }),
            /E1: fail_safe_duration 5 s is shorter than three control cycles \(cycle_ms 2000\)/,
        );
        assert.equal(site.params.cycle_ms, 1000);
        await assert.rejects(
            site.setDevice({ dev_id: 'E2', fail_safe_duration: 2 }),
            /fail_safe_duration/,
        );
    });

    it('disable_policy −1 writes exactly the current the allocator counts the wallbox at', async () => {
        const max = [13_000, 11_000, 20_000];
        site = new Site({
            params: { max_total_current: 63_000, reserve_current: 0, disable_policy: -1 },
            devices: [
                wallbox(0, { max_charging_cur: max[0], device_enabled: false }),
                wallbox(1, { max_charging_cur: max[1] }),
                wallbox(2, { max_charging_cur: max[2] }),
            ],
            pool,
        });
        const report = await site.manager.runCycle();
        await site.manager.runCycle();
        const sp = report.result.setpoints.get('E1')!;
        assert.equal(sp.state, 'released');
        // Counted on all three phases at its configured maximum beside the others' setpoints.
        const others = ['E2', 'E3'].reduce(
            (sum, id) => sum + report.result.setpoints.get(id)!.current,
            0,
        );
        assert.deepEqual(
            report.result.site.evseLoad,
            [0, 1, 2].map(() => max[0]! + others),
        );
        assert.deepEqual(await registers(sims[0]!.ports.evse, 8093, 2), [max[0]! / 100, 1]);

        // Stopping releases every wallbox at its own maximum.
        await site.stop();
        site = undefined;
        for (let i = 0; i < 3; i++) {
            assert.deepEqual(
                await registers(sims[i]!.ports.evse, 8093, 2),
                [max[i]! / 100, 1],
                `E${i + 1}`,
            );
        }
    });
});
