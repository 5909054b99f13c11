// Cycle period with silent wallboxes: N simulated Power Brains over Modbus TCP, the manager on
// its 1 s cycle. First every wallbox answers; then one in ten falls silent (keeps its connection,
// answers nothing) and the same site goes on. Measured from the decision right before they fall
// silent, so the first timeouts and the retries of the back-off are inside the window.
// cycle_period_ratio.silent.N = mean period between decisions with 10 % silent / all answering.
// Target: ≤ 1.1 (a scheduled decision does not wait for a silent wallbox).
import { closeSims, Fleet, sleep, startSims, until } from './fleet';
import type { Report } from './harness';

const WARM_UP_MS = 3000;
const WINDOW_MS = 16_000;

interface Periods {
    mean: number;
    max: number;
    decisions: number;
}

/**
 * Periods between the manager's `cycle` events for about `ms`, counted from a decision: `atStart`
 * runs right after it, so that a decision held up by what it changed is inside the window.
 */
async function periods(fleet: Fleet, ms: number, atStart = () => {}): Promise<Periods> {
    const at: number[] = [];
    const off = fleet.site.manager.events.on('cycle', () => {
        if (at.length === 0) atStart();
        at.push(performance.now());
    });
    await until(() => at.length > 0, 10_000);
    await sleep(ms);
    off();
    if (at.length < 3) throw new Error(`only ${at.length} decisions in ${ms} ms`);
    let max = 0;
    for (let i = 1; i < at.length; i++) max = Math.max(max, at[i]! - at[i - 1]!);
    return { mean: (at.at(-1)! - at[0]!) / (at.length - 1), max, decisions: at.length - 1 };
}

export async function run(report: Report): Promise<void> {
    for (const n of [30, 300]) {
        const sims = await startSims(n);
        const fleet = new Fleet(sims);
        let answering: Periods;
        let silent: Periods;
        try {
            await fleet.start();
            await sleep(WARM_UP_MS);
            answering = await periods(fleet, WINDOW_MS);
            silent = await periods(fleet, WINDOW_MS, () => {
                for (let i = 9; i < n; i += 10) sims[i]!.setSilent(true);
            });
        } finally {
            await fleet.stop();
            await closeSims(sims);
        }
        console.log(
            `  n=${n}: ${answering.decisions} decisions answering, ${silent.decisions} with ${n / 10} silent`,
        );
        report(`cycle_period_ratio.silent.${n}`, {
            value: silent.mean / answering.mean,
            unit: 'x',
        });
        report(`cycle_period_ms.silent.${n}`, {
            value: silent.mean,
            unit: 'ms',
            baseline: answering.mean,
            ratio: silent.mean / answering.mean,
        });
        report(`cycle_period_max_ms.silent.${n}`, {
            value: silent.max,
            unit: 'ms',
            baseline: answering.max,
            ratio: silent.max / answering.max,
        });
    }
}
