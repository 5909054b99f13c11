// Node-RED's resident memory idle, while one evcm-manager drives 3, 30 and 300 Power Brain
// wallboxes over Modbus TCP, and while it drives 1,000 OCPP charge points connected to an
// evcm-ocpp central system on Node-RED's own port. The simulated devices run in their own process
// (evcm-sim), so only the manager's side (connections, drivers, state) is counted. Target: ≤ 30 MB
// over idle at 300 Modbus wallboxes.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { median, type Report } from './harness';
import {
    ocppUserDir,
    root,
    siteUserDir,
    sleep,
    startChargePoints,
    startWallboxes,
    stop,
} from './site-processes';

/**
 * Each Node-RED runs RUN_MS; resident memory is sampled once a second from WARM_UP_MS on. The
 * figure is the median of the last SETTLED_SAMPLES (the level it keeps); the peak is the
 * highest sample after the warm-up.
 */
const WARM_UP_MS = 40_000;
const RUN_MS = 120_000;
const SETTLED_SAMPLES = 20;

function rssMB(pid: number): number {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return kb / 1024;
}

async function nodeRedRss(
    wallboxes: number,
    firstPort: number,
): Promise<{ settled: number; peak: number }> {
    return measure(await siteUserDir(wallboxes, firstPort));
}

/** Node-RED with `count` OCPP charge points; they connect once it listens, and retry until then. */
async function nodeRedOcppRss(count: number): Promise<{ settled: number; peak: number }> {
    const { userDir, url } = await ocppUserDir(count);
    const chargePoints = startChargePoints(url, count);
    try {
        return await measure(userDir);
    } finally {
        await stop(chargePoints);
    }
}

async function measure(userDir: string): Promise<{ settled: number; peak: number }> {
    const red = spawn(
        process.execPath,
        [join(root, 'node_modules', 'node-red', 'red.js'), '-u', userDir],
        {
            stdio: 'ignore',
        },
    );
    try {
        // Sampled after a warm-up, not soon after start: an idle Node-RED gives back its start-up
        // young generation only when V8's memory reducer runs (8–20 s in), so an early window
        // compared an unreduced idle process with a loaded one, and it hid what fills up over the
        // first minute (modbus-serial's transaction table did: +90 MB at 300 wallboxes once full).
        // The level is taken at the end of two minutes: while a process allocates more than
        // V8's threshold for shrinking its young generation (1 MB/s), that generation grows in
        // steps to its full 32 MB, which took up to 110 s in our runs, and an earlier window
        // read ~20 MB too low.
        await sleep(WARM_UP_MS);
        const samples: number[] = [];
        while (samples.length < (RUN_MS - WARM_UP_MS) / 1000) {
            samples.push(rssMB(red.pid!));
            await sleep(1000);
        }
        return { settled: median(samples.slice(-SETTLED_SAMPLES)), peak: Math.max(...samples) };
    } finally {
        await stop(red);
        rmSync(userDir, { recursive: true, force: true });
    }
}

export async function run(report: Report): Promise<void> {
    const { firstPort, sim } = await startWallboxes(300);
    let idle: { settled: number; peak: number };
    try {
        idle = await nodeRedRss(0, firstPort);
        report('rss_mb.0', { value: idle.settled, unit: 'MB' });
        report('rss_peak_mb.0', { value: idle.peak, unit: 'MB' });
        for (const n of [3, 30, 300]) {
            const { settled, peak } = await nodeRedRss(n, firstPort);
            const over = { baseline: idle.settled, ratio: settled / idle.settled };
            report(`rss_mb.${n}`, { value: settled, unit: 'MB', ...over });
            report(`rss_peak_mb.${n}`, { value: peak, unit: 'MB' });
        }
    } finally {
        await stop(sim);
    }
    const ocpp = await nodeRedOcppRss(1000);
    report('rss_mb.ocpp.1000', {
        value: ocpp.settled,
        unit: 'MB',
        baseline: idle.settled,
        ratio: ocpp.settled / idle.settled,
    });
    report('rss_peak_mb.ocpp.1000', { value: ocpp.peak, unit: 'MB' });
}
