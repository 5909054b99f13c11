// What the dashboard shows, from a simulated site's real cycles: chart points per building phase
// against the limit, the power split from the grid and PV meters, a tile per wallbox (why it is
// paused, who charges, the session's energy), pages of tiles, and the controls' commands.
import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import { OVERRIDE } from '../../../lib/site/controls';
import {
    chartPoints,
    controlCommand,
    controlState,
    DashboardInputSchema,
    dashboardView,
    tilePage,
    wallboxOptions,
    type WallboxTile,
} from '../../../lib/site/dashboard';
import { Site } from '../../../lib/site/site';
import { MemoryUsers } from '../../../lib/users/directory';

const USER = '2167520770';
const CARD = '4711';

function simSite(extra: Record<string, unknown>[] = [], pvPeakW = 6900) {
    const clock = new ManualClock(Date.UTC(2026, 5, 21, 12, 0, 0)); // noon: the PV produces
    const house = { sim_base_current: 4000, sim_step_current: 0, sim_pv_peak_w: pvPeakW };
    const site = new Site({
        clock,
        params: {
            max_total_current: 32_000,
            reserve_current: 2000,
            increase_hold_time: 0,
            max_increase_per_cycle: 100_000,
            min_pause_time: 0,
        },
        devices: [
            { dev_type: 'evse_sim', dev_id: 'E1', name: 'Garage', max_charging_cur: 16_000 },
            {
                dev_type: 'evse_sim',
                dev_id: 'E2',
                name: 'Visitors',
                max_charging_cur: 16_000,
                users: [USER],
                sim_car_phases: 1,
            },
            ...extra,
            { dev_type: 'meter_sim', dev_id: 'M1', name: 'Grid', role: 3, ...house },
            { dev_type: 'meter_sim', dev_id: 'M2', name: 'PV', role: 2, ...house },
        ],
        users: new MemoryUsers([{ id: USER, name: 'Anna', rfids: [{ id: CARD }] }]),
    });
    const cycle = async (ms = 1000) => {
        clock.advance(ms);
        return site.manager.runCycle();
    };
    return { site, clock, cycle };
}

const tileOf = (tiles: WallboxTile[], id: string) => tiles.find((t) => t.dev_id === id)!;

describe('site: the dashboard view', function () {
    it('charts the grid meter per building phase against the limit in force', async () => {
        const t = simSite();
        await t.cycle();
        const report = await t.cycle();
        const view = dashboardView(t.site, report);
        const grid = report.snapshot.meters.get('M1')!.reading!.currents!;
        assert.deepEqual(
            view.phases.map((p) => p.measured),
            grid.map((mA) => Math.round(mA / 100) / 10),
        );
        assert.ok(view.phases.every((p) => p.limit === 32 && p.budget === 30));
        const points = chartPoints(view.phases, report.at);
        assert.deepEqual(
            points.map((p) => p.series),
            ['L1', 'L2', 'L3', 'limit'],
        );
        assert.ok(points.every((p) => p.x === report.at));
        assert.equal(points[3]!.y, 32);

        // A cut of max_total_cur_prc is the limit in force.
        t.site.setParams({ max_total_cur_prc: 50 });
        const half = dashboardView(t.site, await t.cycle());
        assert.ok(half.phases.every((p) => p.limit === 16));
        await t.site.stop();
    });

    it('without a grid meter: consumption less production plus the cars, per phase', async () => {
        const clock = new ManualClock(Date.UTC(2026, 5, 21, 12, 0, 0));
        const house = { sim_base_current: 4000, sim_step_current: 0, sim_pv_peak_w: 2760 };
        const site = new Site({
            clock,
            params: {
                max_total_current: 32_000,
                reserve_current: 0,
                max_increase_per_cycle: 100_000,
            },
            devices: [
                {
                    dev_type: 'evse_sim',
                    dev_id: 'E1',
                    max_charging_cur: 10_000,
                    phase_rotation: 120,
                    sim_car_phases: 1,
                },
                { dev_type: 'meter_sim', dev_id: 'M1', role: 1, ...house },
                { dev_type: 'meter_sim', dev_id: 'M2', role: 2, ...house },
            ],
        });
        for (let i = 0; i < 3; i++) {
            clock.advance(1000);
            await site.manager.runCycle();
        }
        const report = site.manager.lastCycle!;
        const cons = report.snapshot.meters.get('M1')!.reading!.currents!;
        const pv = report.snapshot.meters.get('M2')!.reading!.currents!;
        const car = report.snapshot.evses.get('E1')!.reading!.currents!;
        assert.ok(car[0] > 0 && car[1] === 0, 'a one-phase car on its wallbox L1');
        // Rotated 120°: the wallbox's L1 is the building's L2.
        const expected = [cons[0] - pv[0], cons[1] - pv[1] + car[0], cons[2] - pv[2]];
        const view = dashboardView(site, report);
        assert.deepEqual(
            view.phases.map((p) => p.measured),
            expected.map((mA) => Math.round(mA / 100) / 10),
        );
        assert.equal(view.power.grid_w, null);
        assert.equal(view.power.household_w, report.snapshot.meters.get('M1')!.reading!.powerW);
        await site.stop();
    });

    it('splits the power into PV, household and cars from the meters', async () => {
        const t = simSite();
        await t.cycle();
        const report = await t.cycle();
        const { power } = dashboardView(t.site, report);
        const w = (id: string) => report.snapshot.meters.get(id)!.reading!.powerW;
        assert.equal(power.grid_w, w('M1'));
        assert.equal(power.pv_w, w('M2'));
        assert.ok(power.pv_w! > 0, 'noon: the PV produces');
        const cars = report.snapshot.evses.get('E1')!.reading!.powerW!;
        assert.ok(cars > 0);
        assert.equal(power.cars_w, cars);
        // 4 A household on three phases at 230 V, within rounding.
        assert.ok(Math.abs(power.household_w! - 3 * 4 * 230) < 10, `${power.household_w}`);
        await t.site.stop();
    });

    it('shows per wallbox what is allowed, what is drawn, and why a car waits', async () => {
        const t = simSite();
        await t.cycle();
        const report = await t.cycle();
        const { tiles } = dashboardView(t.site, report);
        const e1 = tileOf(tiles, 'E1');
        const sp = report.result.setpoints.get('E1')!;
        assert.equal(e1.state, 'charging');
        assert.equal(e1.allowed, sp.current / 1000);
        const drawn = report.snapshot.evses.get('E1')!.reading!.currents!;
        assert.deepEqual(
            e1.drawn,
            drawn.map((mA) => Math.round(mA / 100) / 10),
        );
        assert.equal(e1.phases, 3);
        assert.equal(e1.paused, false);
        assert.equal(e1.user, null);
        // The car is plugged in: its session counts from the counter's first reading.
        const session = t.site.sessions.running('E1')!;
        assert.equal(e1.session_wh, Math.round(session.energy_wh));

        const e2 = tileOf(tiles, 'E2');
        assert.equal(e2.state, 'paused');
        assert.equal(e2.pause_reason, 'card');
        assert.equal(e2.pause_text, 'waiting for a card');
        assert.equal(e2.allowed, 0);

        // The card: Anna is shown and the car charges.
        t.site.authorisation.rfids.set('E2', {
            rfid: CARD,
            user: t.site.authorisation.userFor(CARD),
            at: t.clock.now(),
        });
        await t.cycle();
        const after = dashboardView(t.site, await t.cycle()).tiles;
        assert.equal(tileOf(after, 'E2').user, 'Anna');
        assert.equal(tileOf(after, 'E2').state, 'charging');
        assert.equal(tileOf(after, 'E2').phases, 1);

        // Switched off by an override: paused, and it says so.
        t.site.limits.overrides.set('E1', { flags: OVERRIDE.chargingDisabled, current: null });
        const off = tileOf(dashboardView(t.site, await t.cycle()).tiles, 'E1');
        assert.equal(off.state, 'paused');
        assert.equal(off.pause_reason, 'switched_off');
        assert.equal(off.charging_on, false);
        assert.deepEqual(controlState(t.site, 'E1'), { charging: false, limit: 0 });
        t.site.limits.overrides.set('E1', { flags: 0, current: 8000 });
        const limited = tileOf(dashboardView(t.site, await t.cycle()).tiles, 'E1');
        assert.equal(limited.limit, 8);
        assert.equal(limited.allowed, 8);
        assert.deepEqual(controlState(t.site, 'E1'), { charging: true, limit: 8 });
        await t.site.stop();
    });

    it('a car that does not fit is paused for lack of current; no car and a disabled wallbox', async () => {
        const t = simSite(
            [
                { dev_type: 'evse_sim', dev_id: 'E3', name: 'Three', max_charging_cur: 16_000 },
                {
                    dev_type: 'evse_sim',
                    dev_id: 'E4',
                    name: 'Empty',
                    max_charging_cur: 16_000,
                    sim_plugged: false,
                },
                {
                    dev_type: 'evse_sim',
                    dev_id: 'E5',
                    name: 'Off',
                    max_charging_cur: 16_000,
                    device_enabled: false,
                },
            ],
            0,
        );
        t.site.setParams({ max_total_current: 12_000, reserve_current: 0 });
        await t.cycle();
        await t.cycle();
        const { tiles } = dashboardView(t.site, await t.cycle());
        const states = tiles.map((x) => `${x.dev_id}:${x.state}:${x.pause_reason ?? ''}`);
        // 12 A less the 4 A household: one car at its 6 A minimum, the other waits.
        assert.equal(tiles.filter((x) => x.pause_reason === 'no_room').length, 1, states.join());
        assert.equal(tileOf(tiles, 'E4').state, 'no_car');
        assert.equal(tileOf(tiles, 'E4').paused, false);
        assert.equal(tileOf(tiles, 'E5').state, 'disabled');
        await t.site.stop();
    });

    it("shows the running session's user and the energy its counter counted", async () => {
        const t = simSite();
        const counter = () =>
            (t.site.manager.deviceState('E2').sample.reading as { totalEnergyWh: number })
                .totalEnergyWh;
        t.site.authorisation.present('E2', CARD, t.clock.now());
        await t.cycle();
        const atStart = counter();
        let report = await t.cycle();
        for (let i = 0; i < 30; i++) report = await t.cycle(60_000);
        const e2 = tileOf(dashboardView(t.site, report).tiles, 'E2');
        assert.equal(e2.user, 'Anna');
        assert.ok(counter() - atStart > 100, 'the car charged');
        assert.equal(e2.session_wh, Math.round(counter() - atStart));
        await t.site.stop();
    });

    it('pages the tiles and counts states over all of them', () => {
        const tiles = Array.from(
            { length: 300 },
            (_, i) =>
                ({
                    dev_id: `E${i + 1}`,
                    state: i % 3 === 0 ? 'charging' : 'paused',
                }) as WallboxTile,
        );
        const p = tilePage(tiles, 2, 12);
        assert.deepEqual([p.page, p.pages, p.size, p.total, p.tiles.length], [2, 25, 12, 300, 12]);
        assert.equal(p.tiles[0]!.dev_id, 'E13');
        assert.deepEqual(p.counts, { charging: 100, paused: 200 });
        assert.equal(tilePage(tiles, 99, 12).page, 25, 'past the end: the last page');
        assert.equal(tilePage(tiles, 25, 12).tiles.length, 12);
        assert.equal(tilePage(tiles.slice(0, 13), 2, 12).tiles.length, 1);
        assert.deepEqual(
            [tilePage([], 1, 12).page, tilePage([], 1, 12).pages, tilePage([], 1, 12).tiles],
            [1, 1, []],
        );
    });

    it("turns the widgets' messages into override_device and enter_rfid commands", async () => {
        const t = simSite();
        assert.deepEqual(
            wallboxOptions(t.site).map((o) => o.value),
            ['E1', 'E2'],
        );
        assert.equal(wallboxOptions(t.site)[0]!.label, 'E1 Garage');
        const parse = (m: unknown) => DashboardInputSchema.parse(m);
        const cmd = (m: unknown, dev = 'E1') =>
            controlCommand(t.site, parse(m) as Parameters<typeof controlCommand>[1], dev);
        assert.deepEqual(cmd({ topic: 'charging', payload: false }), {
            to: 'override',
            payload: { dev_id: 'E1', flags: 'C' },
        });
        assert.deepEqual(cmd({ topic: 'charging', payload: true }).payload, {
            dev_id: 'E1',
            flags: 'c',
        });
        assert.deepEqual(cmd({ topic: 'limit', payload: 10 }).payload, {
            dev_id: 'E1',
            mamps: 10_000,
        });
        assert.deepEqual(cmd({ topic: 'limit', payload: 0 }).payload, { dev_id: 'E1', mamps: 0 });
        assert.deepEqual(
            cmd({ topic: 'limit', payload: 3 }).payload,
            { dev_id: 'E1', mamps: 6000 },
            'below the minimum: the minimum',
        );
        assert.deepEqual(cmd({ topic: 'card', payload: 4711 }, 'E2'), {
            to: 'rfid',
            payload: { dev_id: 'E2', rfid: '4711' },
        });
        assert.throws(() => cmd({ topic: 'charging', payload: true }, 'M1'), /not a wallbox/);
        assert.equal(
            DashboardInputSchema.safeParse({ topic: 'limit', payload: -1 }).success,
            false,
        );
        assert.equal(DashboardInputSchema.safeParse({ topic: 'card', payload: '' }).success, false);
        assert.equal(DashboardInputSchema.safeParse({ topic: 'page', payload: 0 }).success, false);
        await t.site.stop();
    });
});
