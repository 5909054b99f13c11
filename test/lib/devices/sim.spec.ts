import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import { MeterRole, type Phases3 } from '../../../lib/core/types';
import {
    householdAt,
    seededRandom,
    SimEvse,
    SimMeter,
    SimWorld,
    type HouseholdProfile,
} from '../../../lib/devices/sim';
import { gridLoadOf, simConfigSchema } from '../../../lib/nodes-support/sim';
import { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import { Site } from '../../../lib/site/site';

const NIGHT = Date.UTC(2026, 0, 5, 2); // no PV
const profile = (over: Partial<HouseholdProfile> = {}): HouseholdProfile => ({
    baseCurrent: [5000, 5000, 5000],
    stepCurrent: 4000,
    stepMs: 10_000,
    seed: 12,
    ...over,
});

describe('devices/sim: the simulated household and grid meter', () => {
    it('one appliance per phase: a new load of 0..stepCurrent each step, as before', () => {
        const p = profile({ seed: 3, stepMs: 60_000 });
        for (let slot = 0; slot < 200; slot++) {
            const load = householdAt(p, slot * 60_000 + 59_999);
            for (let phase = 0; phase < 3; phase++) {
                const r = seededRandom(3 * 7919 + slot * 3 + phase);
                const expected = 5000 + (r < 0.35 ? Math.round((r / 0.35) * 4000) : 0);
                assert.equal(load[phase], expected, `slot ${slot} phase ${phase}`);
            }
        }
    });

    it('several appliances: the load builds up in steps no larger than stepCurrent', () => {
        const p = profile({ appliances: 3 });
        let highest = 0;
        let lowest = Infinity;
        let changes = 0;
        let previous = householdAt(p, 0);
        for (let slot = 1; slot < 2000; slot++) {
            const load = householdAt(p, slot * 10_000);
            for (let phase = 0; phase < 3; phase++) {
                const step = Math.abs(load[phase]! - previous[phase]!);
                assert.ok(step <= 4000, `slot ${slot} phase ${phase}: step of ${step} mA`);
                if (step > 0) changes++;
                highest = Math.max(highest, load[phase]!);
                lowest = Math.min(lowest, load[phase]!);
            }
            // Within a step the load holds still.
            assert.deepEqual(householdAt(p, slot * 10_000 + 9_999), load);
            previous = load;
        }
        assert.equal(lowest, 5000, 'sometimes every appliance is off');
        assert.ok(highest > 5000 + 2 * 4000, `up to ${highest} mA: appliances add up`);
        assert.ok(highest <= 5000 + 3 * 4000);
        assert.ok(changes > 2000, `${changes} changes in 2000 steps`);
    });

    it('origin: the profile starts over from where it is told to begin', () => {
        const p = profile({ appliances: 3 });
        const start = NIGHT + 4321;
        for (let s = 0; s < 20; s++) {
            assert.deepEqual(
                householdAt({ ...p, origin: start }, start + s * 10_000 + 5000),
                householdAt(p, s * 10_000 + 5000),
            );
        }
    });

    it('the grid meter measures attached loads (cars served elsewhere) until they detach', async () => {
        const clock = new ManualClock(NIGHT);
        const world = new SimWorld(clock, profile({ stepCurrent: 0 }));
        const grid = new SimMeter(world, { id: 'M1', role: MeterRole.gridDemand });
        const house = new SimMeter(world, { id: 'M2', role: MeterRole.consumption });
        let car: Phases3 = [0, 7000, 0];
        const detach = world.attachLoad(() => car);
        assert.equal(world.attachedLoads, 1);
        assert.deepEqual((await grid.read()).currents, [5000, 12000, 5000]);
        car = [1000, 2000, 3000];
        assert.deepEqual((await grid.read()).currents, [6000, 7000, 8000], 'read when measured');
        assert.deepEqual((await house.read()).currents, [5000, 5000, 5000], 'not household');
        // In-process simulated wallboxes and attached loads add up.
        const evse = new SimEvse(world, {
            id: 'E1',
            car: { batteryWh: 60_000, soc: 0.5, maxCurrent: 16_000, phases: 3, followMs: 0 },
        });
        await evse.apply({ current: 10_000, chargingEnabled: true, released: false });
        clock.advance(1000);
        assert.deepEqual((await grid.read()).currents, [16_000, 17_000, 18_000]);
        detach();
        detach(); // twice is harmless
        assert.equal(world.attachedLoads, 0);
        assert.deepEqual((await grid.read()).currents, [15_000, 15_000, 15_000]);
    });

    it('a Power Brain simulator attached with its wiring: a one-phase car on the building L2', async () => {
        let now = NIGHT;
        const sim = new PowerBrainSim({
            port: 0,
            meterPorts: false,
            now: () => now,
            plugged: true,
            car: { batteryWh: 60_000, soc: 0.5, maxCurrent: 16_000, phases: 1, followMs: 0 },
        });
        const clock = new ManualClock(NIGHT);
        const world = new SimWorld(clock, profile({ stepCurrent: 0 }));
        const grid = new SimMeter(world, { id: 'M1', role: MeterRole.gridDemand });
        const detach = world.attachLoad(gridLoadOf(sim, 120));
        now += 1000;
        assert.deepEqual(sim.carCurrents, [16_000, 0, 0], 'the wallbox default: 16 A, enabled');
        assert.deepEqual((await grid.read()).currents, [5000, 21_000, 5000]);
        sim.unplug();
        assert.deepEqual((await grid.read()).currents, [5000, 5000, 5000]);
        detach();
        await sim.close();
    });

    it('defaultEnable false: the car waits until someone enables charging', () => {
        let now = NIGHT;
        const sim = new PowerBrainSim({ now: () => now, plugged: true, defaultEnable: false });
        now += 5000;
        assert.equal(sim.state.chargingEnabled, false);
        assert.deepEqual(sim.carCurrents, [0, 0, 0]);
        assert.equal(sim.state.cpState, 1, 'state B: vehicle detected, not charging');
    });

    it('meter_sim fields: step period, appliances, a profile that starts with the site', () => {
        const clock = new ManualClock(NIGHT + 7000);
        const site = new Site({
            clock,
            devices: [
                {
                    dev_type: 'meter_sim',
                    dev_id: 'M1',
                    role: 3,
                    sim_base_current: 5000,
                    sim_step_current: 4000,
                    sim_step_s: 10,
                    sim_appliances: 3,
                    sim_from_start: true,
                    sim_seed: 12,
                },
            ],
        });
        assert.deepEqual(site.world.household, {
            baseCurrent: [5000, 5000, 5000],
            stepCurrent: 4000,
            stepMs: 10_000,
            seed: 12,
            appliances: 3,
            origin: NIGHT + 7000,
        });
        const plain = new Site({ clock, devices: [{ dev_type: 'meter_sim', dev_id: 'M1' }] });
        assert.equal(plain.world.household.stepMs, 60_000, 'default: a change a minute');
        assert.equal(plain.world.household.origin, undefined, 'default: steps on the clock');
        assert.throws(
            () =>
                new Site({
                    clock,
                    devices: [{ dev_type: 'meter_sim', dev_id: 'M1', sim_step_s: 0 }],
                }),
            /sim_step_s/,
        );
    });

    it('evcm-powerbrain-sim config: manager, wiring and default enable are checked', () => {
        const ok = simConfigSchema.parse({
            port: '14701',
            manager: 'm1',
            phase_rotation: '120',
            default_enable: false,
        });
        assert.equal(ok.manager, 'm1');
        assert.equal(ok.phaseRotation, 120);
        assert.equal(ok.defaultEnable, false);
        const plain = simConfigSchema.parse({});
        assert.equal(plain.manager, '');
        assert.equal(plain.phaseRotation, 0);
        assert.equal(plain.defaultEnable, true);
        const bad = simConfigSchema.safeParse({ phase_rotation: 90 });
        assert.ok(!bad.success && /phase_rotation/.test(bad.error.message));
    });
});
