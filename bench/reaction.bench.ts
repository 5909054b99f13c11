// Reaction time: from an overload pushed into the grid meter to every new setpoint written over
// Modbus TCP to N simulated Power Brain wallboxes (each on its own loopback port), with the
// manager on its normal 1 s cycle. Target: within one cycle plus bus time.
import { PowerBrainSim } from '../lib/sim/powerbrain-sim';
import { Site } from '../lib/site/site';
import { median, type Report } from './harness';

const CYCLE_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
        if (check()) return true;
        await sleep(2);
    }
    return check();
}

async function measure(n: number, rounds: number): Promise<number[]> {
    const car = {
        batteryWh: 200_000,
        soc: 0.2,
        maxCurrent: 16_000,
        phases: 3 as const,
        followMs: 500,
    };
    const sims = await Promise.all(
        Array.from({ length: n }, async () => {
            const sim = new PowerBrainSim({
                host: '127.0.0.1',
                port: 0,
                meterPorts: false,
                plugged: true,
                car,
            });
            await sim.start();
            return sim;
        }),
    );
    const quiet = [5000, 5000, 5000] as const;
    // A fuse big enough for every car at 10 A, so that an overload forces every one of them down.
    const fuse = n * 10_000 + 10_000;
    const site = new Site({
        params: {
            max_total_current: fuse,
            reserve_current: 0,
            cycle_ms: CYCLE_MS,
            increase_hold_time: 0,
            max_increase_per_cycle: 100_000,
            // Measured here is the reaction, not the five-minute cut that follows an overdraw.
            overdraw_penalty_time: 0,
        },
        devices: [
            ...sims.map((sim, i) => ({
                dev_type: 'evse_powerbrain',
                dev_id: `E${i + 1}`,
                address: `127.0.0.1:${sim.ports.evse}`,
                id: 1,
                max_charging_cur: 10_000,
                used_phases: 7,
            })),
            { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
        ],
    });
    const push = (household: readonly number[]) => {
        const cars = sims.reduce((t, s) => t + s.state.currents[0], 0);
        const currents = household.map((h) => h + cars) as unknown as [number, number, number];
        site.push('M1', { powerW: 0, currents });
    };
    const feeder = setInterval(() => push(quiet), 200);
    const times: number[] = [];
    try {
        site.start();
        const settled = await until(
            () => sims.every((s) => s.state.currentLimit === 10_000),
            60_000,
        );
        if (!settled) throw new Error(`wallboxes did not reach 10 A (n=${n})`);
        for (let r = 0; r < rounds; r++) {
            // Overload: the household rises so that only 7 A per car remain; every car must drop.
            clearInterval(feeder);
            // Spread the moment of the overload over the cycle: right after a cycle is the worst case.
            await sleep(((r + 0.5) / rounds) * CYCLE_MS);
            const before = sims.map((s) => s.state.currentLimit);
            const t0 = performance.now();
            const heavy = [fuse - n * 7000, fuse - n * 7000, fuse - n * 7000];
            push(heavy);
            const keepHeavy = setInterval(() => push(heavy), 200);
            const reacted = await until(
                () => sims.every((s, i) => s.state.currentLimit < before[i]!),
                10 * CYCLE_MS,
            );
            const t1 = performance.now();
            clearInterval(keepHeavy);
            if (!reacted) throw new Error(`no reaction within ${10 * CYCLE_MS} ms (n=${n})`);
            times.push(t1 - t0);
            // Back to normal and let the cars come back up before the next round.
            const keepQuiet = setInterval(() => push(quiet), 200);
            const back = await until(
                () => sims.every((s) => s.state.currentLimit === 10_000),
                60_000,
            );
            clearInterval(keepQuiet);
            if (!back) throw new Error(`wallboxes did not return to 10 A (n=${n})`);
        }
    } finally {
        clearInterval(feeder);
        await site.stop();
        await Promise.all(sims.map((s) => s.close()));
    }
    return times;
}

export async function run(report: Report): Promise<void> {
    for (const [n, rounds] of [
        [3, 6],
        [30, 4],
        [300, 3],
    ] as const) {
        const times = await measure(n, rounds);
        // baseline: the cycle period; the target is at most one period plus bus time.
        report(`reaction_ms.${n}`, {
            value: median(times),
            unit: 'ms',
            baseline: CYCLE_MS,
            ratio: median(times) / CYCLE_MS,
        });
        report(`reaction_ms_max.${n}`, {
            value: Math.max(...times),
            unit: 'ms',
            baseline: CYCLE_MS,
        });
    }
}
