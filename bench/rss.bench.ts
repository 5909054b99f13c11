// Node-RED's resident memory idle and while one evcm-manager drives 3, 30 and 300 Power Brain
// wallboxes over Modbus TCP. The simulated wallboxes run in their own process (evcm-sim), so
// only the manager's side (buses, drivers, state) is counted. Target: ≤ 30 MB over idle at 300.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, type Report } from './harness';

const root = join(__dirname, '..', '..');
/**
 * Each Node-RED runs RUN_MS; resident memory is sampled once a second from WARM_UP_MS on. The
 * figure is the median of the last SETTLED_SAMPLES (the level it keeps); the peak is the
 * highest sample after the warm-up.
 */
const WARM_UP_MS = 40_000;
const RUN_MS = 120_000;
const SETTLED_SAMPLES = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = createServer();
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address() as { port: number };
            srv.close(() => resolve(port));
        });
        srv.on('error', reject);
    });
}

/** A first port with `count` free ports after it (probed), in the upper range. */
async function freeRange(count: number): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
        // Below the ephemeral range (32768+), where outgoing connections take their ports.
        const start = 20_000 + Math.floor(Math.random() * (32_768 - 20_000 - count));
        let ok = true;
        for (let p = start; p < start + count && ok; p += 1) {
            ok = await new Promise<boolean>((resolve) => {
                const srv = createServer();
                srv.once('error', () => resolve(false));
                srv.listen(p, '127.0.0.1', () => srv.close(() => resolve(true)));
            });
        }
        if (ok) return start;
    }
    throw new Error('no free port range');
}

function rssMB(pid: number): number {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return kb / 1024;
}

async function stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
}

async function nodeRedRss(
    wallboxes: number,
    firstPort: number,
): Promise<{ settled: number; peak: number }> {
    const userDir = mkdtempSync(join(tmpdir(), 'evcm-rss-'));
    const port = await freePort();
    writeFileSync(
        join(userDir, 'settings.js'),
        `module.exports = { uiHost: '127.0.0.1', uiPort: ${port}, flowFile: 'flows.json', credentialSecret: false,
          nodesDir: [${JSON.stringify(root)}], editorTheme: { projects: { enabled: false }, tours: false },
          diagnostics: { enabled: false }, logging: { console: { level: 'warn' } } };`,
    );
    const devices = [
        ...Array.from({ length: wallboxes }, (_, i) => ({
            dev_type: 'evse_powerbrain',
            dev_id: `E${i + 1}`,
            address: `127.0.0.1:${firstPort + 3 * i}`,
            id: 1,
        })),
        { dev_type: 'meter_sim', dev_id: 'M1', role: 3 },
    ];
    const flow = wallboxes
        ? [
              {
                  id: 'm1',
                  type: 'evcm-manager',
                  max_total_current: String(wallboxes * 16_000 + 32_000),
                  devices: JSON.stringify(devices),
              },
          ]
        : [];
    writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flow));
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
    const max = 300;
    const firstPort = await freeRange(3 * max);
    const sim = spawn(
        process.execPath,
        [
            join(root, 'bin', 'evcm-sim.js'),
            '--port',
            String(firstPort),
            '--cars',
            String(max),
            '--plugged',
            '--status',
            '0',
        ],
        { stdio: 'ignore' },
    );
    try {
        await sleep(3000);
        const idle = await nodeRedRss(0, firstPort);
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
}
