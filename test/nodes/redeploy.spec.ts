// 100 redeploys of a flow that uses every node must leave nothing behind: no handles, timers,
// sockets or listeners, and no heap growth beyond noise.
import assert from 'node:assert/strict';
import { Agent, get as httpGet } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import helper from 'node-red-node-test-helper';
import { freePort } from '../../lib/sim/powerbrain-sim';
import type { ManagerNode } from '../../nodes/shared/types';
import { allNodes, errors, manager, sleep, type Flow, type HelperNode } from '../support/node-red';

helper.init(require.resolve('node-red'));

function gcFunction(): (() => void) | undefined {
    try {
        setFlagsFromString('--expose-gc');
        return runInNewContext('gc') as () => void;
    } catch {
        return undefined;
    }
}

function resources(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
    return out;
}

describe('redeploy', function () {
    this.timeout(120_000);
    afterEach(() => helper.unload());

    it('100 redeploys leave no extra handles, timers, listeners or heap', async () => {
        const port = await freePort();
        // evcm-cnf with its own listener: each deploy must free the port for the next one.
        const cnfPort = await freePort();
        const keepAlive = new Agent({ keepAlive: true });
        const flow = [
            manager('m1', [
                { dev_type: 'evse_powerbrain', dev_id: 'E1', address: `127.0.0.1:${port}`, id: 1 },
                { dev_type: 'evse_sim', dev_id: 'E2' },
                { dev_type: 'evse_ajax', dev_id: 'E3' },
                { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
            ]),
            { id: 'sim', type: 'evcm-powerbrain-sim', port },
            { id: 'st', type: 'evcm-status', manager: 'm1', wires: [['h']] },
            { id: 'mi', type: 'evcm-meter-in', manager: 'm1', dev_id: 'M1' },
            { id: 'ei', type: 'evcm-evse-in', manager: 'm1', dev_id: 'E3', wires: [['h']] },
            {
                id: 'rd',
                type: 'evcm-modbus-read',
                manager: 'm1',
                device: 'E1',
                register: '8002',
                wires: [['h']],
            },
            {
                id: 'wr',
                type: 'evcm-modbus-write',
                manager: 'm1',
                device: 'E1',
                register: '8088',
                wires: [['h']],
            },
            { id: 'cnf', type: 'evcm-cnf', manager: 'm1', host: '127.0.0.1', port: cnfPort },
            { id: 'h', type: 'helper' },
        ] as unknown as Flow;
        /** The own listener's answer (a kept-alive connection the close must end). */
        const title = async (): Promise<number> => {
            for (let i = 0; ; i++) {
                try {
                    const r = await fetchStatus(
                        `http://127.0.0.1:${cnfPort}/cnf?cmd=get_params`,
                        keepAlive,
                    );
                    if (r === 200 || i >= 50) return r;
                } catch (err) {
                    if (i >= 50) throw err;
                }
                await sleep(20);
            }
        };
        const gc = gcFunction();
        const deploy = async (i: number) => {
            await helper.load(allNodes(), flow);
            const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
            const node = (id: string) => helper.getNode(id) as unknown as HelperNode;
            node('mi').receive({ payload: { current: [1000, 1000, 1000] } });
            node('ei').receive({ payload: { state: 2 } });
            if (i % 10 === 0) {
                node('rd').receive({});
                node('wr').receive({ payload: 0 });
            }
            await sleep(20);
            assert.equal(await title(), 200, `deploy ${i}: the own port answers`);
            assert.deepEqual(errors(node('cnf')), [], `deploy ${i}: the port was free again`);
            const count = site.manager.events.count();
            await helper.unload();
            assert.equal(site.manager.events.count(), 0, `deploy ${i}: listeners left`);
            return count;
        };
        // Warm up: module caches, the shared pool, JIT.
        for (let i = 0; i < 5; i++) await deploy(i);
        await sleep(300);
        gc?.();
        const before = resources();
        const heapBefore = process.memoryUsage().heapUsed;
        const counts = new Set<number>();
        const t0 = Date.now();
        for (let i = 0; i < 100; i++) counts.add(await deploy(i));
        const ms = Date.now() - t0;
        await sleep(500);
        gc?.();
        gc?.();
        const after = resources();
        const heapAfter = process.memoryUsage().heapUsed;
        const growthMb = (heapAfter - heapBefore) / 1e6;
        console.log(
            `      100 redeploys in ${ms} ms; resources before ${JSON.stringify(before)} after ${JSON.stringify(after)}; ` +
                `listeners per deploy ${[...counts].join(',')}; heap ${(heapBefore / 1e6).toFixed(1)} → ${(heapAfter / 1e6).toFixed(1)} MB (${gc ? 'after gc' : 'no gc'})`,
        );
        assert.equal(counts.size, 1, 'the same number of subscriptions on every deploy');
        for (const [kind, n] of Object.entries(after)) {
            assert.ok(n <= (before[kind] ?? 0), `${kind}: ${before[kind] ?? 0} → ${n}`);
        }
        assert.ok(growthMb < (gc ? 8 : 40), `heap grew ${growthMb.toFixed(1)} MB`);
        keepAlive.destroy();
    });
});

function fetchStatus(url: string, agent: Agent): Promise<number> {
    return new Promise((resolve, reject) => {
        const req = httpGet(url, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
    });
}
