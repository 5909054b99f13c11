// How fast Node-RED allocates while one evcm-manager drives 300 Power Brains over Modbus TCP,
// against V8's threshold for shrinking its young generation (heap.cc: 1,000 bytes/ms). Above it
// the young generation grows to its full 32 MB, which decides rss_mb.300; below it the
// generation stays small.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from './harness';
import { siteUserDir, startWallboxes, stop } from './site-processes';

const WALLBOXES = 300;
const WARM_UP_MS = 20_000;
const SAMPLED_MS = 20_000;
/** V8 shrinks the young generation while allocation stays below 1,000 bytes/ms. */
const V8_SHRINK_THRESHOLD_KB_S = 1000 / 1.024;

export async function run(report: Report): Promise<void> {
    const { firstPort, sim } = await startWallboxes(WALLBOXES);
    const userDir = await siteUserDir(WALLBOXES, firstPort);
    const child = spawn(
        process.execPath,
        [join(__dirname, 'alloc-rate-child.js'), userDir, String(WARM_UP_MS), String(SAMPLED_MS)],
        { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    try {
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
                () => reject(new Error('allocation profile took too long')),
                WARM_UP_MS + SAMPLED_MS + 60_000,
            );
            child.once('exit', () => {
                clearTimeout(timer);
                resolve();
            });
        });
        const line = out.trim().split('\n').pop() ?? '';
        const { bytesPerSecond } = JSON.parse(line) as { bytesPerSecond: number };
        const kbPerSecond = bytesPerSecond / 1024;
        report(`alloc_kb_per_s.${WALLBOXES}`, {
            value: kbPerSecond,
            unit: 'KB/s',
            baseline: V8_SHRINK_THRESHOLD_KB_S,
            ratio: kbPerSecond / V8_SHRINK_THRESHOLD_KB_S,
        });
    } finally {
        await stop(child);
        await stop(sim);
        rmSync(userDir, { recursive: true, force: true });
    }
}
