// /cnf throughput: get_dev_info for sites with 3 and 50 wallboxes, served by the evcm-cnf node in
// a real Node-RED, against a plain http-in → template → http-response route that returns a static
// JSON of the same size from the same Node-RED in the same run. Load from autocannon on loopback.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CnfContext } from '../lib/cnf/context';
import { devInfo } from '../lib/cnf/views';
import { freePort } from '../lib/sim/powerbrain-sim';
import { Site } from '../lib/site/site';
import type { Report } from './harness';
import {
    autocannon,
    startNodeRed,
    stop,
    waitReady,
    writeBenchSettings,
    type AutocannonResult,
} from './site-processes';

const SIZES = [3, 50] as const;
const DURATION_S = 5;
const CONNECTIONS = 10;

function devices(n: number): Record<string, unknown>[] {
    return [
        ...Array.from({ length: n }, (_, i) => ({
            dev_type: 'evse_sim',
            dev_id: `E${i + 1}`,
            name: `Wallbox ${i + 1}`,
            max_charging_cur: 16000,
        })),
        { dev_type: 'meter_sim', dev_id: 'M1', name: 'Grid', role: 3 },
    ];
}

const params = (n: number) => ({
    title: `Bench ${n}`,
    max_total_current: String(Math.max(32_000, n * 6000)),
    cycle_ms: '1000',
});

/** A get_dev_info answer of the same site, made outside Node-RED: the baseline's static body. */
async function staticBody(n: number): Promise<string> {
    const p = params(n);
    const site = new Site({
        params: { ...p, max_total_current: Number(p.max_total_current), cycle_ms: 1000 },
        devices: devices(n),
    });
    try {
        await site.manager.runCycle();
        return JSON.stringify(devInfo(new CnfContext(site)));
    } finally {
        await site.stop();
    }
}

function flows(bodies: Record<number, string>): unknown[] {
    const out: unknown[] = [{ id: 'tab', type: 'tab', label: 'bench' }];
    for (const n of SIZES) {
        out.push(
            {
                id: `m${n}`,
                type: 'evcm-manager',
                ...params(n),
                devices: JSON.stringify(devices(n)),
            },
            { id: `c${n}`, type: 'evcm-cnf', z: 'tab', manager: `m${n}`, path: `/cnf${n}` },
            {
                id: `in${n}`,
                type: 'http in',
                z: 'tab',
                url: `/base${n}`,
                method: 'get',
                wires: [[`t${n}`]],
            },
            {
                id: `t${n}`,
                type: 'template',
                z: 'tab',
                field: 'payload',
                fieldType: 'msg',
                format: 'json',
                syntax: 'plain',
                template: bodies[n],
                output: 'str',
                wires: [[`out${n}`]],
            },
            {
                id: `out${n}`,
                type: 'http response',
                z: 'tab',
                statusCode: '',
                headers: { 'content-type': 'application/json; charset=utf-8' },
                wires: [],
            },
        );
    }
    return out;
}

async function load(url: string, seconds: number): Promise<AutocannonResult> {
    const r = await autocannon({ url, connections: CONNECTIONS, duration: seconds, pipelining: 1 });
    if (r.non2xx || r.errors) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
    return r;
}

export async function run(report: Report): Promise<void> {
    const bodies: Record<number, string> = {};
    for (const n of SIZES) bodies[n] = await staticBody(n);
    const userDir = mkdtempSync(join(tmpdir(), 'evcm-bench-'));
    const port = await freePort();
    writeBenchSettings(userDir, port);
    writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flows(bodies)));
    writeFileSync(
        join(userDir, 'flows_cred.json'),
        JSON.stringify(Object.fromEntries(SIZES.map((n) => [`m${n}`, { adminPassword: 'bench' }]))),
    );
    const child = startNodeRed(userDir);
    const base = `http://127.0.0.1:${port}`;
    try {
        for (const n of SIZES) {
            await waitReady(`${base}/cnf${n}?cmd=get_dev_info`, child);
            await waitReady(`${base}/base${n}`, child);
        }
        for (const n of SIZES) {
            const ours = `${base}/cnf${n}?cmd=get_dev_info`;
            const plain = `${base}/base${n}`;
            const size = (await (await fetch(ours)).text()).length;
            console.log(`  ${n} wallboxes: ${size} bytes (baseline ${bodies[n]!.length})`);
            await load(ours, 1); // warm-up
            await load(plain, 1);
            const a = await load(ours, DURATION_S);
            const b = await load(plain, DURATION_S);
            report(`cnf.get_dev_info.rps.${n}`, {
                value: a.requests.average,
                unit: 'req/s',
                baseline: b.requests.average,
                ratio: a.requests.average / b.requests.average,
            });
            // p99: ratio = baseline / ours, so that ≥ 1 means at least as fast as the baseline.
            report(`cnf.get_dev_info.p99_ms.${n}`, {
                value: a.latency.p99,
                unit: 'ms',
                baseline: b.latency.p99,
                ratio: b.latency.p99 / Math.max(a.latency.p99, 0.001),
            });
        }
    } finally {
        await stop(child);
        rmSync(userDir, { recursive: true, force: true });
    }
}
