// A phase switch carried out end to end: stop, wait until the car has stopped drawing, switch,
// let it settle, resume — against the Power Brain simulator over loopback Modbus TCP (relay 8087)
// and against the OCPP simulator (numberPhases in the control profile).
import assert from 'node:assert/strict';
import type { EvseSetpoint } from '../../../lib/core/types';
import { OcppCentralSystem } from '../../../lib/ocpp/central-system';
import { OcppChargePointSim } from '../../../lib/sim/ocpp-sim';
import { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import { Site } from '../../../lib/site/site';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
    }
}

const PARAMS = {
    max_total_current: 32_000,
    reserve_current: 0,
    cycle_ms: 200,
    increase_hold_time: 0,
    max_increase_per_cycle: 20_000,
    phase_stop_wait: 5,
    phase_settle_time: 1,
};

/** The setpoints a site sends one wallbox, in order. */
function record(site: Site, id: string): EvseSetpoint[] {
    const seen: EvseSetpoint[] = [];
    site.manager.events.on('setpoint', (e) => {
        if (e.id === id) seen.push(e.setpoint);
    });
    return seen;
}

/** Stages of the switch in the order they went out, each once. */
const stages = (seen: readonly EvseSetpoint[]) =>
    seen.map((s) => s.switching).filter((s, i, a) => s !== undefined && s !== a[i - 1]);

describe('phase switching, end to end', function () {
    this.timeout(30_000);

    describe('Power Brain (relay 8087 over Modbus TCP)', () => {
        let sim: PowerBrainSim;
        let site: Site | undefined;
        beforeEach(async () => {
            sim = new PowerBrainSim({
                port: 0,
                meterPorts: false,
                defaultEnable: false,
                car: { batteryWh: 60_000, soc: 0.3, maxCurrent: 16_000, phases: 3, followMs: 600 },
                plugged: true,
            });
            await sim.start();
        });
        afterEach(async () => {
            await site?.stop();
            site = undefined;
            await sim.close();
        });

        it('a session choice of one phase: stop, wait for the car, switch 8087, settle, resume on L1', async () => {
            site = new Site({
                params: PARAMS,
                devices: [
                    {
                        dev_type: 'evse_powerbrain',
                        dev_id: 'E1',
                        address: `127.0.0.1:${sim.ports.evse}`,
                        id: 1,
                        switch_phases: -1,
                        max_charging_cur: 16_000,
                    },
                ],
            });
            const seen = record(site, 'E1');
            site.start();
            await until('charging on three phases', 10_000, () =>
                sim.state.currents.every((c) => c > 10_000),
            );
            site.limits.overrides.set('E1', { flags: 0, current: null, phases: 1 });
            await until('charging on L1 alone', 15_000, () => {
                const c = sim.state.currents;
                return c[0] > 10_000 && c[1] === 0 && c[2] === 0;
            });
            assert.equal(sim.state.phases, 1, '8087 = 1: the one-phase contactor');
            assert.equal(sim.relaySwitches, 1);
            assert.equal(sim.relaySwitchesUnderLoad, 0, 'never switched while the car drew');
            assert.deepEqual(stages(seen), ['stopping', 'switch', 'settling']);
            for (const s of seen.filter((x) => x.switching)) assert.equal(s.current, 0);
            const last = site.manager.lastCycle!.result.setpoints.get('E1')!;
            assert.equal(last.phases, 0b001);
            assert.equal(last.phaseCount, 1);
        });

        it('a Power Brain that forbids switching while plugged refuses; the car goes on as before', async () => {
            await sim.close();
            sim = new PowerBrainSim({
                port: 0,
                meterPorts: false,
                defaultEnable: false,
                phaseSwitching: false,
                car: { batteryWh: 60_000, soc: 0.3, maxCurrent: 16_000, phases: 3, followMs: 0 },
                plugged: true,
            });
            await sim.start();
            site = new Site({
                params: PARAMS,
                devices: [
                    {
                        dev_type: 'evse_powerbrain',
                        dev_id: 'E1',
                        address: `127.0.0.1:${sim.ports.evse}`,
                        id: 1,
                        switch_phases: 1,
                        max_charging_cur: 16_000,
                    },
                ],
            });
            site.start();
            await until('the switch refused', 10_000, () => {
                const e = site!.manager.deviceState('E1').phaseSwitch;
                return e?.error !== undefined;
            });
            await until('charging on three phases again', 10_000, () =>
                sim.state.currents.every((c) => c > 10_000),
            );
            assert.equal(sim.relaySwitches, 0);
            assert.match(site.manager.deviceState('E1').phaseSwitch!.error!, /not permitted/);
        });
    });

    describe('OCPP (numberPhases in the control profile)', () => {
        let cs: OcppCentralSystem;
        let cp: OcppChargePointSim | undefined;
        let site: Site | undefined;
        afterEach(async () => {
            await cp?.close();
            cp = undefined;
            await site?.stop();
            site = undefined;
            await cs.close();
        });

        for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as const) {
            it(`${protocol}: a session choice of one phase reaches the car through numberPhases`, async () => {
                cs = new OcppCentralSystem({ callTimeoutMs: 2000 });
                const { port } = await cs.listen({ host: '127.0.0.1', port: 0 });
                site = new Site({
                    params: PARAMS,
                    devices: [
                        {
                            dev_type: 'evse_ocpp',
                            dev_id: 'E1',
                            address: 'WB-1',
                            id: 1,
                            switch_phases: -1,
                            max_charging_cur: 16_000,
                            fail_safe_duration: 30,
                        },
                    ],
                    ocpp: cs,
                });
                const seen = record(site, 'E1');
                site.start();
                cp = new OcppChargePointSim({
                    url: `ws://127.0.0.1:${port}/`,
                    identity: 'WB-1',
                    protocol,
                    plugged: true,
                    tickMs: 100,
                    car: {
                        batteryWh: 60_000,
                        soc: 0.3,
                        maxCurrent: 16_000,
                        phases: 3,
                        followMs: 300,
                    },
                });
                await cp.start();
                await until('boot', 5000, () => cp!.state.booted);
                assert.ok(await cp.presentCard('1234'));
                await until('charging on three phases', 10_000, () =>
                    cp!.state.currents.every((c) => c > 10_000),
                );
                site.limits.overrides.set('E1', { flags: 0, current: null, phases: 1 });
                await until('charging on L1 alone', 15_000, () => {
                    const c = cp!.state.currents;
                    return c[0] > 10_000 && c[1] === 0 && c[2] === 0;
                });
                assert.equal(cp.state.limitPhases, 1);
                const control = cp.state.profiles.find((p) => p.stackLevel > 1)!;
                assert.equal(control.periods[0]!.numberPhases, 1);
                assert.deepEqual(stages(seen), ['stopping', 'switch', 'settling']);
            });
        }
    });
});
