// Changes answered "ok" per second when every answer waits for its change to be on disk (file and
// directory fsynced, group commit), with 1, 10 and 50 concurrent clients: set_cm_vars over HTTP
// against a real Node-RED whose store is on a real disk. Baseline in the same run: the same
// requests with tmp=1, which take the same path through /cnf but are not saved.
// Also the store alone (lib/store, no HTTP): commits per second and changes per write.
import * as fsp from 'node:fs/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../lib/sim/powerbrain-sim';
import type { AtomicFileSystem } from '../lib/store/atomic-file';
import { ManagerStore } from '../lib/store/store';
import { median, type Report } from './harness';
import {
    autocannon,
    root,
    startNodeRed,
    stop,
    waitReady,
    writeBenchSettings,
    type AutocannonResult,
} from './site-processes';

const CLIENTS = [1, 10, 50] as const;
/** Durable and baseline alternate in rounds of this many seconds. */
const ROUNDS = 3;
const ROUND_S = 2;
/** Duration of each store-alone loop. */
const STORE_S = 4;
/** The variables the requests cycle through (the store holds this many). */
const NAMES = 50;

/**
 * A directory on the disk the repository is on: the system's temporary directory may be a tmpfs,
 * where fsync costs nothing and the figure would say nothing.
 */
function diskDir(prefix: string): string {
    return mkdtempSync(join(root, 'dist', prefix));
}

/** set_cm_vars with a new value on every request, over `connections` clients. */
async function load(
    base: string,
    connections: number,
    seconds: number,
    tmp: boolean,
): Promise<AutocannonResult> {
    let n = 0;
    let notOk = 0;
    const r = await autocannon({
        url: base,
        connections,
        duration: seconds,
        pipelining: 1,
        requests: [
            {
                setupRequest(req: Record<string, unknown>) {
                    n++;
                    req.path = `/cnf?cmd=set_cm_vars&name=V${n % NAMES}&val=${n}${tmp ? '&tmp=1' : ''}`;
                    return req;
                },
                onResponse(status: number, body: string) {
                    if (body !== '"ok"') notOk++;
                },
            },
        ],
    });
    if (r.non2xx || r.errors || notOk) {
        throw new Error(`${r.non2xx} non-2xx, ${r.errors} errors, ${notOk} answers not "ok"`);
    }
    return r;
}

async function overHttp(report: Report): Promise<void> {
    const userDir = diskDir('bench-commit-');
    const port = await freePort();
    writeBenchSettings(userDir, port);
    writeFileSync(
        join(userDir, 'flows.json'),
        JSON.stringify([
            { id: 'tab', type: 'tab', label: 'bench' },
            {
                id: 'm1',
                type: 'evcm-manager',
                max_total_current: '32000',
                cycle_ms: '1000',
                devices: JSON.stringify([
                    { dev_type: 'evse_sim', dev_id: 'E1', max_charging_cur: 16000 },
                    { dev_type: 'meter_sim', dev_id: 'M1', role: 3 },
                ]),
            },
            { id: 'c1', type: 'evcm-cnf', z: 'tab', manager: 'm1', path: '/cnf' },
        ]),
    );
    const child = startNodeRed(userDir);
    const base = `http://127.0.0.1:${port}`;
    try {
        await waitReady(`${base}/cnf?cmd=get_params`, child);
        await load(base, 10, 1, false); // warm-up
        await load(base, 10, 1, true);
        for (const clients of CLIENTS) {
            // alternating rounds, so that a change in the machine's load hits both alike
            const durable: AutocannonResult[] = [];
            const baseline: AutocannonResult[] = [];
            for (let round = 0; round < ROUNDS; round++) {
                durable.push(await load(base, clients, ROUND_S, false));
                baseline.push(await load(base, clients, ROUND_S, true));
            }
            const rps = (rs: AutocannonResult[]) =>
                rs.reduce((sum, r) => sum + r.requests.average, 0) / rs.length;
            const p99 = (rs: AutocannonResult[]) => median(rs.map((r) => r.latency.p99));
            report(`cnf.set_cm_vars.durable_rps.${clients}`, {
                value: rps(durable),
                unit: 'req/s',
                baseline: rps(baseline),
                ratio: rps(durable) / rps(baseline),
            });
            // p99: ratio = baseline / ours, so that ≥ 1 means at least as fast as the baseline.
            report(`cnf.set_cm_vars.durable_p99_ms.${clients}`, {
                value: p99(durable),
                unit: 'ms',
                baseline: p99(baseline),
                ratio: p99(baseline) / Math.max(p99(durable), 0.001),
            });
        }
    } finally {
        await stop(child);
        rmSync(userDir, { recursive: true, force: true });
    }
}

/**
 * The store alone: `committers` loops of change + commit for `seconds`; the writes counted at
 * their rename. Returns commits per second and changes per write.
 */
async function storeLoop(
    dir: string,
    committers: number,
    seconds: number,
): Promise<{ perSecond: number; perWrite: number }> {
    let writes = 0;
    const fileSystem: AtomicFileSystem = {
        open: fsp.open,
        unlink: fsp.unlink,
        rename: async (from, to) => {
            await fsp.rename(from, to);
            writes++;
        },
    };
    const store = await ManagerStore.open(join(dir, `store-${committers}.json`), { fileSystem });
    let commits = 0;
    const until = Date.now() + seconds * 1000;
    await Promise.all(
        Array.from({ length: committers }, async (_, id) => {
            for (let n = 0; Date.now() < until; n++) {
                store.update((doc) => {
                    const at = doc.variables.findIndex((v) => v.name === `V${id}`);
                    if (at >= 0) doc.variables[at]!.expr = n;
                    else doc.variables.push({ name: `V${id}`, expr: n });
                });
                await store.commit();
                commits++;
            }
        }),
    );
    await store.close();
    return { perSecond: commits / seconds, perWrite: commits / Math.max(writes, 1) };
}

async function storeAlone(report: Report): Promise<void> {
    const dir = diskDir('bench-store-');
    try {
        const one = await storeLoop(dir, 1, STORE_S);
        const many = await storeLoop(dir, 50, STORE_S);
        report('store.commits_per_s.50', {
            value: many.perSecond,
            unit: 'commits/s',
            baseline: one.perSecond,
            ratio: many.perSecond / one.perSecond,
        });
        report('store.changes_per_write.50', {
            value: many.perWrite,
            unit: 'changes',
            baseline: one.perWrite,
            ratio: many.perWrite / one.perWrite,
        });
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

export async function run(report: Report): Promise<void> {
    await overHttp(report);
    await storeAlone(report);
}
