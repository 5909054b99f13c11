// Processes of the Node-RED benchmarks: simulated Power Brains in their own process (evcm-sim),
// and a Node-RED user directory whose flow is one evcm-manager driving N of them over Modbus TCP.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, freePortBlock } from '../lib/sim/powerbrain-sim';

export const root = join(__dirname, '..', '..');

/** What the HTTP benchmarks read of an autocannon run. */
export interface AutocannonResult {
    requests: { average: number };
    latency: { p99: number };
    non2xx: number;
    errors: number;
}
export const autocannon = require('autocannon') as (
    opts: Record<string, unknown>,
) => Promise<AutocannonResult>;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stops a child by its PID: SIGTERM, then SIGKILL after 10 s. */
export async function stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
}

/**
 * Settings of a quiet Node-RED for an HTTP benchmark in `userDir`: on 127.0.0.1:`port`, this
 * package from the working tree, no editor, warnings only.
 */
export function writeBenchSettings(userDir: string, port: number): void {
    writeFileSync(
        join(userDir, 'settings.js'),
        `module.exports = ${JSON.stringify({
            uiHost: '127.0.0.1',
            uiPort: port,
            httpAdminRoot: false,
            flowFile: 'flows.json',
            credentialSecret: false,
            nodesDir: [root],
            logging: { console: { level: 'warn', metrics: false, audit: false } },
            diagnostics: { enabled: false },
            runtimeState: { enabled: false },
            editorTheme: { projects: { enabled: false } },
        })};\n`,
    );
}

/** Node-RED on `userDir` in a child process (stop it with `stop`). */
export function startNodeRed(userDir: string): ChildProcess {
    return spawn(
        process.execPath,
        [join(root, 'node_modules', 'node-red', 'red.js'), '-u', userDir],
        {
            cwd: root,
            stdio: ['ignore', 'ignore', 'inherit'],
        },
    );
}

/** Waits until `url` answers 2xx (30 s at most), or the child exits. */
export async function waitReady(url: string, child: ChildProcess): Promise<void> {
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
        if (child.exitCode !== null) throw new Error(`Node-RED exited (${child.exitCode})`);
        try {
            const res = await fetch(url);
            if (res.ok) return;
        } catch {
            // not listening yet
        }
        await sleep(200);
    }
    throw new Error(`Node-RED did not serve ${url}`);
}

/** `cars` simulated Power Brains with plugged-in cars (three ports each from `firstPort`). */
export async function startWallboxes(
    cars: number,
): Promise<{ firstPort: number; sim: ChildProcess }> {
    const firstPort = await freePortBlock(3 * cars);
    const sim = spawn(
        process.execPath,
        [
            join(root, 'bin', 'evcm-sim.js'),
            '--port',
            String(firstPort),
            '--cars',
            String(cars),
            '--plugged',
            '--status',
            '0',
        ],
        { stdio: 'ignore' },
    );
    await sleep(3000);
    return { firstPort, sim };
}

/**
 * A Node-RED user directory on a free port whose flow is one evcm-manager with `wallboxes` Power
 * Brains from `firstPort` and a simulated grid meter (no flow at all for 0). Every car gets its
 * 16 A: nothing limits them.
 */
export async function siteUserDir(wallboxes: number, firstPort: number): Promise<string> {
    const { userDir } = await quietUserDir();
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
    return userDir;
}

/** A user directory of a quiet Node-RED on a free port, this package from the working tree. */
async function quietUserDir(): Promise<{ userDir: string; port: number }> {
    const userDir = mkdtempSync(join(tmpdir(), 'evcm-bench-'));
    const port = await freePort();
    writeFileSync(
        join(userDir, 'settings.js'),
        `module.exports = { uiHost: '127.0.0.1', uiPort: ${port}, flowFile: 'flows.json', credentialSecret: false,
          nodesDir: [${JSON.stringify(root)}], editorTheme: { projects: { enabled: false }, tours: false },
          diagnostics: { enabled: false }, logging: { console: { level: 'warn' } } };`,
    );
    return { userDir, port };
}

/** mA each OCPP wallbox is capped at: 1,000 of them stay under the 10,000 A a site may have. */
const OCPP_EVSE_MAX = 9000;

/**
 * A Node-RED user directory whose flow is an evcm-ocpp central system on Node-RED's own port
 * (`/ocpp/`) and one evcm-manager with `chargePoints` OCPP wallboxes (identities CP-1…) and a
 * simulated grid meter; `url` is where the charge points connect.
 */
export async function ocppUserDir(chargePoints: number): Promise<{ userDir: string; url: string }> {
    const { userDir, port } = await quietUserDir();
    const devices = [
        ...Array.from({ length: chargePoints }, (_, i) => ({
            dev_type: 'evse_ocpp',
            dev_id: `E${i + 1}`,
            address: `CP-${i + 1}`,
            id: 1,
            max_charging_cur: OCPP_EVSE_MAX,
        })),
        { dev_type: 'meter_sim', dev_id: 'M1', role: 3 },
    ];
    const flow = [
        { id: 'cs', type: 'evcm-ocpp', path: '/ocpp/' },
        {
            id: 'm1',
            type: 'evcm-manager',
            ocpp: 'cs',
            max_total_current: String(chargePoints * OCPP_EVSE_MAX + 32_000),
            devices: JSON.stringify(devices),
        },
    ];
    writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flow));
    return { userDir, url: `ws://127.0.0.1:${port}/ocpp` };
}

/** `count` simulated OCPP charge points (CP-1…) with cars plugged in, in their own process. */
export function startChargePoints(url: string, count: number): ChildProcess {
    return spawn(
        process.execPath,
        [
            join(root, 'bin', 'evcm-sim.js'),
            'ocpp',
            '--url',
            url,
            '--id',
            'CP-1',
            '--count',
            String(count),
            '--plugged',
            '--card',
            'bench',
            '--status',
            '0',
        ],
        { stdio: 'ignore' },
    );
}
