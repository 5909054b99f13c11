import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import type { MeterReading } from '../../../lib/core/types';
import { SimBattery } from '../../../lib/devices/sim';
import { Site } from '../../../lib/site/site';

// A house at noon with a simulated home battery behind a hybrid inverter (it keeps the grid at
// zero): 690 W of household (1 A per phase), PV as given, a 3-phase car on a surplus rule. What
// the car may get follows from what the battery meter shows, as the vendor's storage roles and
// the battery settings say.
const VOLTAGE = 230;
const HOUSE_W = 3 * VOLTAGE; // 1 A per phase
/** mA per phase for a 3-phase car from a power. */
const perPhase = (w: number) => Math.floor((w / VOLTAGE / 3) * 1000);

interface Case {
    role: 5 | 6;
    pvW: number;
    soc: number;
    params?: Record<string, unknown>;
    udur?: number;
}

async function house(c: Case) {
    const clock = new ManualClock(Date.UTC(2026, 5, 21, 12, 30));
    const site = new Site({
        clock,
        params: {
            max_total_current: 32_000,
            reserve_current: 0,
            increase_hold_time: 0,
            max_increase_per_cycle: 100_000,
            ...c.params,
        },
        devices: [
            {
                dev_type: 'evse_sim',
                dev_id: 'E1',
                used_phases: 7,
                sim_car_phases: 3,
                charging_rules: [{ mode: 5, udur: c.udur ?? 0 }],
            },
            { dev_type: 'meter_sim', dev_id: 'M1', role: 3 },
            { dev_type: 'meter_sim', dev_id: 'M2', role: c.role },
        ],
    });
    const world = site.world;
    world.household = { baseCurrent: [1000, 1000, 1000], stepCurrent: 0, stepMs: 60_000, seed: 1 };
    world.pv = { peakW: c.pvW };
    world.battery = new SimBattery({
        capacityWh: 100_000, // large: its SoC stays put during a test
        maxChargeW: 3000,
        maxDischargeW: 3000,
        soc: c.soc,
    });
    const cycles = async (n: number) => {
        let current = 0;
        for (let i = 0; i < n; i++) {
            clock.advance(1000);
            current = (await site.manager.runCycle()).result.setpoints.get('E1')!.current;
        }
        const battery = site.manager.deviceState('M2').sample.reading as MeterReading;
        return { current, batteryW: battery.powerW, soc: battery.soc };
    };
    return { site, world, cycles };
}

const near = (actual: number, expected: number, tolerance: number, what: string) =>
    assert.ok(
        Math.abs(actual - expected) <= tolerance,
        `${what}: ${actual}, expected ${expected} ± ${tolerance}`,
    );

describe('site: the home battery in the PV surplus', () => {
    it('by default the car takes what the battery would charge (the vendor: charging is not consumption)', async () => {
        const { site, cycles } = await house({ role: 5, pvW: 8000, soc: 50 });
        const r = await cycles(40);
        // All of PV − house goes to the car; the battery is left with nothing.
        near(r.current, perPhase(8000 - HOUSE_W), 150, 'car');
        near(r.batteryW, 0, 100, 'battery');
        assert.equal(r.soc, 50, 'the storage meter reports its SoC');
        await site.stop();
    });

    it('battery_priority_soc: below it the battery charges first, the car gets the rest', async () => {
        const { site, cycles } = await house({
            role: 5,
            pvW: 8000,
            soc: 50,
            params: { battery_priority_soc: 80 },
        });
        const r = await cycles(40);
        near(r.batteryW, 3000, 50, 'battery at its full charge power');
        near(r.current, perPhase(8000 - HOUSE_W - 3000), 150, 'car');
        await site.stop();
    });

    it('battery_priority_soc: at or above it the car comes first again', async () => {
        const { site, cycles } = await house({
            role: 5,
            pvW: 8000,
            soc: 85,
            params: { battery_priority_soc: 80 },
        });
        const r = await cycles(40);
        near(r.current, perPhase(8000 - HOUSE_W), 150, 'car');
        near(r.batteryW, 0, 100, 'battery');
        await site.stop();
    });

    it('storage home (role 5): a cloud does not let the car drain the battery, undercut or not', async () => {
        const { site, world, cycles } = await house({ role: 5, pvW: 8000, soc: 50, udur: 300 });
        near((await cycles(40)).current, perPhase(8000 - HOUSE_W), 150, 'car before the cloud');
        world.pv = { peakW: 500 };
        const r = await cycles(10);
        assert.equal(r.current, 0, 'the car stops instead of charging from the battery');
        // The battery now covers only the house's 190 W.
        near(r.batteryW, 500 - HOUSE_W, 30, 'battery');
        await site.stop();
    });

    it('storage all (role 6): its discharge counts, so the undercut holds the car on it', async () => {
        const { site, world, cycles } = await house({ role: 6, pvW: 8000, soc: 50, udur: 300 });
        await cycles(40);
        world.pv = { peakW: 500 };
        const r = await cycles(10);
        assert.equal(r.current, 6000, 'held at its minimum for the undercut time');
        near(r.batteryW, -3000, 30, 'the battery discharges at its limit');
        await site.stop();
    });

    it('storage all below battery_buffer_soc: the car must not draw from it', async () => {
        const { site, world, cycles } = await house({
            role: 6,
            pvW: 8000,
            soc: 50,
            udur: 300,
            params: { battery_buffer_soc: 60 },
        });
        await cycles(40);
        world.pv = { peakW: 500 };
        const r = await cycles(10);
        assert.equal(r.current, 0);
        near(r.batteryW, 500 - HOUSE_W, 30, 'battery');
        await site.stop();
    });

    it('formulas read the storage meter: M2.soc and GM.storage_home', async () => {
        const { site, cycles } = await house({ role: 5, pvW: 8000, soc: 50 });
        await site.setDevice({
            dev_id: 'E1',
            charging_rules: [{ expr: 'M2.soc >= 50 && GM.storage_home > 1000 ? 7000 : 0' }],
        });
        // No car current at first: the battery takes 3 kW, its SoC is 50 → 7 A.
        assert.equal((await cycles(3)).current, 7000);
        await site.stop();
    });
});
