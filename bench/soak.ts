// Reliability harness: a simulated site run for many simulated minutes in accelerated time, with
// random household load steps, meters and wallboxes that fail and recover, and redeploys. It
// records the physical fuse margin per phase after every cycle (what the grid connection really
// carries once the cars followed their new currents), transient overloads between a load step
// and the reaction to it, cycles that overran, errors by kind, and heap growth.
import { ManualClock } from '../lib/core/clock';
import type { Phases3 } from '../lib/core/types';
import { seededRandom, SimEvse, SimMeter } from '../lib/devices/sim';
import { Site } from '../lib/site/site';

export interface SoakOptions {
    simMinutes: number;
    evses: number;
    seed: number;
    /** Redeploy (stop the site, start a new one) this often (simulated minutes); 0 = never. */
    redeployEveryMin: number;
}

export interface SoakReport {
    simMinutes: number;
    cycles: number;
    evses: number;
    fuseA: number;
    /** Lowest margin to the fuse per phase after the cycle's reaction, over all cycles (mA). */
    worstMarginAfterCycle: number[];
    /** The same over the cycles in which the manager had fresh grid data (mA; must stay ≥ 0). */
    worstMarginWithData: number[];
    /** Cycles whose reaction left a phase above the fuse while a wallbox the manager controls
     *  still charged on that phase (must be 0). */
    fuseViolations: number;
    /** Cycles over the fuse with every controllable wallbox on the phase at 0: a wallbox out of
     *  reach kept charging while the grid meter was down too (the wallbox's own fail-safe is then
     *  the last line of defence). */
    overloadsBeyondControl: number;
    /** Cycles over the fuse while the grid meter was down and the wallboxes ran at their
     *  fail-safe current (the household can rise unseen; fail_safe_cur 0 pauses instead). */
    overloadsWhileBlind: number;
    /** Load steps that overloaded a phase before the next cycle reacted, and the worst (mA). */
    transientOverloads: number;
    worstTransientOverload: number;
    /** Cycles whose real compute time exceeded the period. */
    overruns: number;
    worstCycleRealMs: number;
    errorsByKind: Record<string, number>;
    failuresInjected: number;
    redeploys: number;
    chargedKWh: number;
    heapGrowthMB: number;
    rssGrowthMB: number;
}

const PERIOD_MS = 1000;
const FUSE = 32_000;

function devices(n: number) {
    const evses = Array.from({ length: n }, (_, i) => ({
        dev_type: 'evse_sim',
        dev_id: `E${i + 1}`,
        max_charging_cur: 16_000,
        phase_rotation: [0, 120, 240][i % 3],
        used_phases: 0,
        sim_car_phases: i % 3 === 2 ? 1 : 3,
        sim_soc: 0.1 + (i % 5) * 0.1,
    }));
    return [
        ...evses,
        {
            dev_type: 'meter_sim',
            dev_id: 'M1',
            role: 3,
            sim_base_current: 2000,
            sim_step_current: 12_000,
        },
    ];
}

function heapMB(): number {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().heapUsed / 2 ** 20;
}

export async function soak(opts: SoakOptions): Promise<SoakReport> {
    const random = (() => {
        let k = 0;
        return () => seededRandom(opts.seed * 100_003 + k++);
    })();
    // Half a second off the minute: the household profile changes on whole minutes, never
    // between a cycle and the measurement of its result.
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 11) + 500);
    const config = {
        params: {
            max_total_current: FUSE,
            reserve_current: 3000,
            min_pause_time: 120,
            cycle_ms: PERIOD_MS,
        },
        devices: devices(opts.evses),
    };
    const heap0 = heapMB();
    const rss0 = process.memoryUsage().rss / 2 ** 20;
    const errorsByKind: Record<string, number> = {};
    let site = new Site({ ...config, clock });
    let offErrors = () => {};
    const watch = (s: Site) => {
        offErrors = s.manager.events.on('deviceError', ({ error }) => {
            const kind = error.message.replace(/^(wallbox|meter) \S+: /, '').replace(/\d+/g, 'N');
            errorsByKind[kind] = (errorsByKind[kind] ?? 0) + 1;
        });
    };
    watch(site);

    const report: SoakReport = {
        simMinutes: opts.simMinutes,
        cycles: 0,
        evses: opts.evses,
        fuseA: FUSE / 1000,
        worstMarginAfterCycle: [Infinity, Infinity, Infinity],
        worstMarginWithData: [Infinity, Infinity, Infinity],
        fuseViolations: 0,
        overloadsBeyondControl: 0,
        overloadsWhileBlind: 0,
        transientOverloads: 0,
        worstTransientOverload: 0,
        overruns: 0,
        worstCycleRealMs: 0,
        errorsByKind,
        failuresInjected: 0,
        redeploys: 0,
        chargedKWh: 0,
        heapGrowthMB: 0,
        rssGrowthMB: 0,
    };
    const over = (grid: Phases3) => Math.max(...grid) - FUSE;
    const failing = new Map<string, number>(); // device id → recovers at
    let energyBefore = 0;
    const totalEnergy = (s: Site) =>
        [...s.world.evses.values()].reduce((t, e) => t + (e.carState?.energyWh ?? 0), 0);

    const cycles = (opts.simMinutes * 60_000) / PERIOD_MS;
    for (let c = 0; c < cycles; c++) {
        clock.advance(PERIOD_MS - 1);
        const world = site.world;
        // A household step (appliances) now and then, within what a house does.
        if (random() < 0.05) {
            const step = () => Math.round(random() * 9000);
            world.extraLoad = [step(), step(), step()];
        }
        // Failures: a wallbox or the grid meter stops answering for 5–90 s.
        if (random() < 0.01) {
            const pick = Math.floor(random() * (opts.evses + 1));
            const id = pick === opts.evses ? 'M1' : `E${pick + 1}`;
            failing.set(id, clock.now() + 5000 + random() * 85_000);
            report.failuresInjected++;
        }
        for (const [id, until] of failing) {
            const driver = site.manager.driver(id) as SimEvse | SimMeter | undefined;
            const down = clock.now() < until;
            if (driver) driver.silent = down;
            if (!down) failing.delete(id);
        }
        // The grid right after the step, before this cycle reacts.
        const before = over(world.gridNow());
        if (before > 0) {
            report.transientOverloads++;
            report.worstTransientOverload = Math.max(report.worstTransientOverload, before);
        }
        const t0 = performance.now();
        await site.manager.runCycle();
        const realMs = performance.now() - t0;
        report.worstCycleRealMs = Math.max(report.worstCycleRealMs, realMs);
        if (realMs > PERIOD_MS) report.overruns++;
        report.cycles++;
        // Cars follow a reduction at once (a millisecond later): this is what the fuse carries until
        // the next change.
        clock.advance(1);
        world.advance();
        const grid = world.gridNow();
        const blind = site.manager.lastCycle!.result.site.failSafe;
        for (let p = 0; p < 3; p++) {
            report.worstMarginAfterCycle[p] = Math.min(
                report.worstMarginAfterCycle[p]!,
                FUSE - grid[p]!,
            );
            if (!blind) {
                report.worstMarginWithData[p] = Math.min(
                    report.worstMarginWithData[p]!,
                    FUSE - grid[p]!,
                );
            }
        }
        if (over(grid) > 0) {
            const { setpoints, site: summary } = site.manager.lastCycle!.result;
            const controllable = [...setpoints.values()].some(
                (sp) =>
                    sp.write &&
                    sp.current > 0 &&
                    [0, 1, 2].some((p) => grid[p]! > FUSE && sp.phases & (1 << p)),
            );
            if (summary.failSafe) report.overloadsWhileBlind++;
            else if (controllable) report.fuseViolations++;
            else report.overloadsBeyondControl++;
        }

        if (
            opts.redeployEveryMin > 0 &&
            (c + 1) % (opts.redeployEveryMin * 60) === 0 &&
            c + 1 < cycles
        ) {
            energyBefore += totalEnergy(site);
            offErrors();
            await site.stop();
            site = new Site({ ...config, clock });
            watch(site);
            report.redeploys++;
        }
    }
    report.chargedKWh = Math.round((energyBefore + totalEnergy(site)) / 100) / 10;
    offErrors();
    await site.stop();
    report.heapGrowthMB = Math.round((heapMB() - heap0) * 10) / 10;
    report.rssGrowthMB = Math.round((process.memoryUsage().rss / 2 ** 20 - rss0) * 10) / 10;
    report.worstCycleRealMs = Math.round(report.worstCycleRealMs * 100) / 100;
    return report;
}
