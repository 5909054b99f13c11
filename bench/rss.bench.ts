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
/** Time each Node-RED runs before sampling, and the samples (one a second) of the median. */
const WARM_UP_MS = 40_000;
const SAMPLES = 10;
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

async function nodeRedRss(wallboxes: number, firstPort: number): Promise<number> {
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
        // At 300 wallboxes the old generation still grows until V8's first full collection,
        // which came 20–110 s in across our runs: a window before it reads about 40 MB higher
        // than the level the process then keeps (≈140 MB on 2 cores, Node 20).
        await sleep(WARM_UP_MS);
        const samples: number[] = [];
        for (let i = 0; i < SAMPLES; i++) {
            samples.push(rssMB(red.pid!));
            await sleep(1000);
        }
        return median(samples);
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
        report('rss_mb.0', { value: idle, unit: 'MB' });
        for (const n of [3, 30, 300]) {
            const rss = await nodeRedRss(n, firstPort);
            report(`rss_mb.${n}`, { value: rss, unit: 'MB', baseline: idle, ratio: rss / idle });
        }
    } finally {
        await stop(sim);
    }
}
