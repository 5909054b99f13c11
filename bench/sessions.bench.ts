// What session records cost the control cycle: a site of 300 simulated wallboxes, every car
// plugged in and charging, run cycle by cycle on a manual clock. The tracker's share is the time
// of its per-cycle update against the whole cycle it is part of (both measured in the same run).
// Writing records and checkpoints happens outside the cycle (SessionBook) and is not in here.
// Target: ≤ 5 % of the cycle.
import { ManualClock } from '../lib/core/clock';
import { Site } from '../lib/site/site';
import { median, round, type Report } from './harness';

const WALLBOXES = 300;
const CYCLES = 200;

export async function run(report: Report): Promise<void> {
    const clock = new ManualClock(Date.UTC(2026, 11, 3, 8));
    const devices: Record<string, unknown>[] = [
        { dev_type: 'meter_sim', dev_id: 'M1', role: 3, sim_base_current: 0, sim_step_current: 0 },
    ];
    for (let i = 1; i <= WALLBOXES; i++)
        devices.push({ dev_type: 'evse_sim', dev_id: `E${i}`, max_charging_cur: 16_000 });
    const site = new Site({
        clock,
        params: { max_total_current: 2_000_000, reserve_current: 0, increase_hold_time: 0 },
        devices,
    });
    // Time the tracker's update where the cycle calls it.
    const trackMs: number[] = [];
    const track = site.trackSessions.bind(site);
    site.trackSessions = (now: number) => {
        const t0 = performance.now();
        track(now);
        trackMs.push(performance.now() - t0);
    };
    const cycleMs: number[] = [];
    try {
        for (let i = 0; i < CYCLES + 20; i++) {
            clock.advance(1000);
            const t0 = performance.now();
            await site.manager.runCycle();
            if (i >= 20) cycleMs.push(performance.now() - t0);
        }
    } finally {
        await site.stop();
    }
    const running = site.sessions.runningAll().length;
    if (running !== WALLBOXES) throw new Error(`${running} sessions running, not ${WALLBOXES}`);
    const tracked = median(trackMs.slice(20));
    const cycle = median(cycleMs);
    console.log(
        `  ${WALLBOXES} sessions: track ${tracked.toFixed(3)} ms of a ${cycle.toFixed(2)} ms cycle`,
    );
    report(`sessions.track_ms.${WALLBOXES}`, {
        value: round(tracked),
        unit: 'ms',
        baseline: round(cycle),
        ratio: round(tracked / cycle, 3),
    });
}
