// What one evcm-dashboard update costs on a site of 300 simulated wallboxes: the time to build the
// view from the last cycle (chart points, power split, every tile, one page) and the bytes it
// sends per update, against the bytes of all 300 tiles. The node runs this on its own timer
// (2 s by default), outside the control cycle; the cycle's figures are those of cycle.bench.
// dashboard_update_ms.300: median per update; dashboard_bytes.300: chart + power + one page of
// 12 tiles (baseline: the same with all tiles, ratio = page / all).
import { ManualClock } from '../lib/core/clock';
import { chartPoints, dashboardView, tilePage } from '../lib/site/dashboard';
import { Site } from '../lib/site/site';
import { median, type Report } from './harness';

const N = 300;
const PAGE = 12;
const RUNS = 200;

export async function run(report: Report): Promise<void> {
    const clock = new ManualClock(Date.UTC(2026, 5, 21, 12, 0, 0));
    const site = new Site({
        clock,
        params: { max_total_current: N * 6000, cycle_ms: 1000 },
        devices: [
            ...Array.from({ length: N }, (_, i) => ({
                dev_type: 'evse_sim',
                dev_id: `E${i + 1}`,
                name: `Wallbox ${i + 1}`,
                max_charging_cur: 16000,
            })),
            { dev_type: 'meter_sim', dev_id: 'M1', name: 'Grid', role: 3, sim_pv_peak_w: 6000 },
        ],
    });
    try {
        for (let i = 0; i < 10; i++) {
            clock.advance(1000);
            await site.manager.runCycle();
        }
        const times: number[] = [];
        let bytes = 0;
        let all = 0;
        for (let i = 0; i < RUNS; i++) {
            const t0 = performance.now();
            const report = site.manager.lastCycle!;
            const view = dashboardView(site, report);
            const chart = JSON.stringify(chartPoints(view.phases, report.at));
            const power = JSON.stringify(view.power);
            const page = JSON.stringify(tilePage(view.tiles, 1 + (i % 25), PAGE));
            times.push(performance.now() - t0);
            bytes = chart.length + power.length + page.length;
            all = chart.length + power.length + JSON.stringify(tilePage(view.tiles, 1, N)).length;
        }
        const ms = median(times);
        console.log(
            `  ${N} wallboxes: ${ms.toFixed(3)} ms per update, ${bytes} bytes (all: ${all})`,
        );
        report(`dashboard_update_ms.${N}`, { value: ms, unit: 'ms' });
        report(`dashboard_bytes.${N}`, {
            value: bytes,
            unit: 'B',
            baseline: all,
            ratio: bytes / all,
        });
    } finally {
        await site.stop();
    }
}
