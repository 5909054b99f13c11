// A sunny day with clouds, in accelerated time (issue 17): PV peaking at 6 kW with a
// deterministic cloud pattern, a household, a 10 kWh home battery behind a hybrid inverter (it
// keeps the grid at zero; the manager sees it through a "storage home" meter and lets it charge
// first up to 50 %), and one car that arrives at 08:00 wanting 30 kWh. The wallbox follows the
// vendor's recommended surplus rule (PV surplus ≥ 6 A, deliver surplus, undercut 300 s); from
// 17:00 a time rule charges what is still missing from the grid, so that the car leaves with its
// 30 kWh in both runs and the solar share compares like with like.
//
// Run twice in the same process through the real Site, limits stage, allocator and engine: once
// with phase switching enabled in the wallbox's configuration and once without. Everything is
// measured from what the simulated wires carry (PV, house, battery, car, grid per phase), never
// from the manager's own numbers:
//  - solar share of the car's energy: PV left over after the house, going into the car;
//  - grid import for the car; energy the car took out of the home battery, in all and while it
//    charged on surplus (in the evening grid charge the inverter covers part of the car from the
//    battery: the manager sees the battery but cannot command it);
//  - switches: changes between one and three phases carrying the car's current;
//  - fuse violations: cycles in which a grid phase carried more than max_total_current, or the
//    car more than the wallbox's maximum.
import { ManualClock } from '../lib/core/clock';
import { pvAt, SimBattery, type SimEvse } from '../lib/devices/sim';
import { localTime } from '../lib/rules/rules';
import { parseDevice } from '../lib/site/schema';
import { Site } from '../lib/site/site';
import type { Report } from './harness';

const DAY = Date.UTC(2026, 5, 21);
const HOUR = 3_600_000;
const CYCLE_MS = 3000; // the vendor's cycle
const FUSE_MA = 25_000;
const EVSE_MAX_MA = 16_000;
const WANTED_WH = 30_000;
const VOLTAGE = 230;
/**
 * Automatic 1p/3p switching as the device table says it (the vendor's per-wallbox
 * `switch_phases`, −1 = automatic). A device table that does not know the setting refuses it:
 * the "switching" run then runs without it and `solar_day.switching_configured` is 0.
 */
const SWITCHING = { switch_phases: -1 };

interface DayResult {
    carWh: number;
    solarWh: number;
    batteryWh: number;
    /** The part of batteryWh before 17:00, while the car charged on surplus. */
    batteryDayWh: number;
    gridWh: number;
    switches: number;
    fuseViolations: number;
    configured: boolean;
}

const watts = (p: readonly number[]) => ((p[0]! + p[1]! + p[2]!) * VOLTAGE) / 1000;

function wallbox(switching: boolean): { entry: Record<string, unknown>; configured: boolean } {
    const evening = localTime(DAY + 17 * HOUR).minute;
    const entry: Record<string, unknown> = {
        dev_type: 'evse_sim',
        dev_id: 'E1',
        min_charging_cur: 6000,
        max_charging_cur: EVSE_MAX_MA,
        used_phases: 7,
        sim_plugged: false,
        charging_rules: [
            { mode: 5, solar: 6000, udur: 300 },
            { mode: 0, current: EVSE_MAX_MA, time: evening, dur: 180 },
        ],
    };
    if (!switching) return { entry, configured: false };
    const withFlag = { ...entry, ...SWITCHING };
    return parseDevice(withFlag).success
        ? { entry: withFlag, configured: true }
        : { entry, configured: false };
}

async function day(switching: boolean): Promise<DayResult> {
    const clock = new ManualClock(DAY + 5 * HOUR);
    const { entry, configured } = wallbox(switching);
    const site = new Site({
        clock,
        params: {
            max_total_current: FUSE_MA,
            reserve_current: 1000,
            cycle_ms: CYCLE_MS,
            battery_priority_soc: 50,
        },
        devices: [
            entry,
            {
                dev_type: 'meter_sim',
                dev_id: 'M1',
                role: 3,
            },
            { dev_type: 'meter_sim', dev_id: 'M2', role: 5 },
        ],
    });
    const world = site.world;
    // The household: ~250 W base, appliances of up to 1.4 kW per phase that change every five
    // minutes (set here: every simulated meter would otherwise bring its own profile).
    world.household = { baseCurrent: [350, 350, 350], stepCurrent: 6000, stepMs: 300_000, seed: 7 };
    world.pv = { peakW: 6000, clouds: { seed: 17, slotMs: 10 * 60_000, cover: 0.35 } };
    world.battery = new SimBattery({
        capacityWh: 10_000,
        maxChargeW: 3000,
        maxDischargeW: 3000,
        soc: 30,
    });
    const evse = world.evses.get('E1') as SimEvse;
    const r: DayResult = {
        carWh: 0,
        solarWh: 0,
        batteryWh: 0,
        batteryDayWh: 0,
        gridWh: 0,
        switches: 0,
        fuseViolations: 0,
        configured,
    };
    let lastPhases = 0;
    const arrive = DAY + 8 * HOUR;
    const end = DAY + 21 * HOUR;
    try {
        while (clock.now() < end) {
            if (!evse.plugged && clock.now() >= arrive && r.carWh < WANTED_WH) {
                evse.plug({ batteryWh: 80_000, soc: 0.2, maxCurrent: 16_000, phases: 3 });
            }
            await site.manager.runCycle();
            // What the wires carry until the next cycle.
            world.advance();
            const car = world.carsCurrent();
            const carW = watts(car);
            const pvW = watts(pvAt(world.pv, clock.now()));
            const houseW = watts(world.householdNow());
            const batteryW = world.batteryPowerW();
            const grid = world.gridNow();
            if (grid.some((c) => c > FUSE_MA) || car.some((c) => c > EVSE_MAX_MA)) {
                r.fuseViolations++;
            }
            const phases = car.filter((c) => c > 0).length;
            if (phases > 0) {
                if (lastPhases > 0 && phases !== lastPhases) r.switches++;
                lastPhases = phases;
            }
            // PV serves the house first, then the car; the battery's discharge the house first.
            const pvToCar = Math.min(carW, Math.max(0, pvW - houseW));
            const houseLeft = Math.max(0, houseW - pvW);
            const batteryToCar = Math.min(
                carW - pvToCar,
                Math.max(0, Math.max(0, -batteryW) - houseLeft),
            );
            const h = CYCLE_MS / HOUR;
            r.carWh += carW * h;
            r.solarWh += pvToCar * h;
            r.batteryWh += batteryToCar * h;
            if (clock.now() < DAY + 17 * HOUR) r.batteryDayWh += batteryToCar * h;
            r.gridWh += (carW - pvToCar - batteryToCar) * h;
            clock.advance(CYCLE_MS);
            if (evse.plugged && r.carWh >= WANTED_WH) evse.unplug(); // it leaves with its 30 kWh
        }
    } finally {
        await site.stop();
    }
    return r;
}

export async function run(report: Report): Promise<void> {
    const fixed = await day(false);
    const switching = await day(true);
    const share = (d: DayResult) => (d.carWh > 0 ? (100 * d.solarWh) / d.carWh : 0);
    report('solar_day.switching_configured', {
        value: switching.configured ? 1 : 0,
        unit: 'flag',
    });
    report('solar_day.solar_share_pct.switching', {
        value: share(switching),
        unit: '%',
        baseline: share(fixed),
        ratio: share(fixed) > 0 ? share(switching) / share(fixed) : 0,
    });
    report('solar_day.solar_share_pct.fixed', { value: share(fixed), unit: '%' });
    for (const [name, d] of [
        ['switching', switching],
        ['fixed', fixed],
    ] as const) {
        report(`solar_day.car_kwh.${name}`, { value: d.carWh / 1000, unit: 'kWh' });
        report(`solar_day.grid_import_for_car_kwh.${name}`, {
            value: d.gridWh / 1000,
            unit: 'kWh',
        });
        report(`solar_day.battery_to_car_kwh.${name}`, { value: d.batteryWh / 1000, unit: 'kWh' });
        report(`solar_day.battery_to_car_kwh_on_surplus.${name}`, {
            value: d.batteryDayWh / 1000,
            unit: 'kWh',
        });
        report(`solar_day.switches.${name}`, { value: d.switches, unit: 'switches' });
        report(`solar_day.fuse_violations.${name}`, { value: d.fuseViolations, unit: 'cycles' });
    }
}
