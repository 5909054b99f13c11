// Reaction time: from an overload pushed into the grid meter to every new setpoint written over
// Modbus TCP to N simulated Power Brain wallboxes (each on its own loopback port), the manager on
// its normal 1 s cycle. Measured twice on the same wallboxes:
//  - reaction_ms.N: the decision waits for the next cycle (reactOnArrival false). Target: within
//    one cycle plus bus time.
//  - reaction_ms.pushed.N: the pushed reading decides at once (reactOnArrival true), with the
//    first as baseline. Target: median ≤ 50 ms at 300 wallboxes.
import type { PowerBrainSim } from '../lib/sim/powerbrain-sim';
import { closeSims, CYCLE_MS, EVSE_MAX, Fleet, QUIET, sleep, startSims, untilEach } from './fleet';
import { median, type Report } from './harness';

/** What each car is left with during the overload (mA). */
const SQUEEZED = 7000;

async function measure(
    sims: readonly PowerBrainSim[],
    reactOnArrival: boolean,
    rounds: number,
): Promise<number[]> {
    const n = sims.length;
    const fleet = new Fleet(sims, { reactOnArrival });
    const times: number[] = [];
    try {
        await fleet.start();
        for (let r = 0; r < rounds; r++) {
            // Spread the moment of the overload over the cycle: right after a cycle is the worst
            // case for a decision that waits for the next one.
            await sleep(((r + 0.5) / rounds) * CYCLE_MS);
            const before = sims.map((s) => s.state.currentLimit);
            // Overload: the household rises so that only 7 A per car remain; every car must drop.
            const heavy = QUIET.map(() => fleet.fuse - n * SQUEEZED);
            const t0 = performance.now();
            fleet.feed(heavy);
            const reacted = await untilEach(
                n,
                (i) => sims[i]!.state.currentLimit < before[i]!,
                10 * CYCLE_MS,
            );
            const t1 = performance.now();
            if (!reacted) throw new Error(`no reaction within ${10 * CYCLE_MS} ms (n=${n})`);
            times.push(t1 - t0);
            // Back to normal and let the cars come back up before the next round.
            fleet.feed(QUIET);
            if (!(await fleet.allAt(EVSE_MAX, 60_000))) {
                throw new Error(`wallboxes did not return to 10 A (n=${n})`);
            }
        }
    } finally {
        await fleet.stop();
    }
    return times;
}

export async function run(report: Report): Promise<void> {
    for (const [n, rounds] of [
        [3, 6],
        [30, 5],
        [300, 5],
    ] as const) {
        const sims = await startSims(n);
        let ticked: number[];
        let pushed: number[];
        try {
            ticked = await measure(sims, false, rounds);
            pushed = await measure(sims, true, rounds);
        } finally {
            await closeSims(sims);
        }
        const tickedMedian = median(ticked);
        const tickedMax = Math.max(...ticked);
        // baseline: the cycle period; the target is at most one period plus bus time.
        report(`reaction_ms.${n}`, {
            value: tickedMedian,
            unit: 'ms',
            baseline: CYCLE_MS,
            ratio: tickedMedian / CYCLE_MS,
        });
        report(`reaction_ms_max.${n}`, { value: tickedMax, unit: 'ms', baseline: CYCLE_MS });
        const pushedMedian = median(pushed);
        const pushedMax = Math.max(...pushed);
        report(`reaction_ms.pushed.${n}`, {
            value: pushedMedian,
            unit: 'ms',
            baseline: tickedMedian,
            ratio: pushedMedian / tickedMedian,
        });
        report(`reaction_ms_max.pushed.${n}`, {
            value: pushedMax,
            unit: 'ms',
            baseline: tickedMax,
            ratio: pushedMax / tickedMax,
        });
    }
}
