// The evcm-cnf node's own listener: the API on a port of its own (the device's port 80 for
// clients that assume it), plain HTTP and HTTPS with a certificate from a tls-config node, closed
// on every deploy, and a taken port as an error of the node, never a crash.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import { freePort } from '../../lib/sim/powerbrain-sim';
import cnfNode = require('../../nodes/evcm-cnf');
import managerNode = require('../../nodes/evcm-manager');
import { startNodeRed } from '../support/node-red-process';
import { errors, nextCall, statuses, type HelperNode } from '../support/node-red';
import { selfSignedCert } from '../support/tls';

helper.init(require.resolve('node-red'));
// Node-RED's own TLS configuration node, as a flow would use it.
const tlsNode = require('@node-red/nodes/core/network/05-tls.js') as unknown;

interface Reply {
    status: number;
    type: string;
    body: string;
}

function get(
    url: string,
    options: { ca?: Buffer; method?: string; auth?: string; body?: string } = {},
): Promise<Reply> {
    const u = new URL(url);
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
        const req = send(
            u,
            {
                method: options.method ?? 'GET',
                agent: false,
                ...(options.ca ? { ca: options.ca } : {}),
                ...(options.auth ? { auth: options.auth } : {}),
            },
            (res: IncomingMessage) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (c: string) => (body += c));
                res.on('end', () =>
                    resolve({
                        status: res.statusCode ?? 0,
                        type: String(res.headers['content-type'] ?? ''),
                        body,
                    }),
                );
            },
        );
        req.on('error', reject);
        req.end(options.body);
    });
}

const manager = {
    id: 'm1',
    type: 'evcm-manager',
    title: 'Stand-in',
    max_total_current: '32000',
    cycle_ms: '200',
    devices: JSON.stringify([{ dev_type: 'evse_sim', dev_id: 'E1' }]),
};

describe('evcm-cnf own listener', function () {
    this.timeout(60_000);
    let dir: string;
    before(() => {
        dir = mkdtempSync(join(tmpdir(), 'evcm-tls-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));
    afterEach(() => helper.unload());

    const load = (nodes: unknown[], credentials: Record<string, unknown> = {}) =>
        helper.load(
            [managerNode, cnfNode, tlsNode] as unknown as Parameters<typeof helper.load>[0],
            [manager, ...nodes] as unknown as Parameters<typeof helper.load>[1],
            { m1: { adminPassword: 'pw' }, ...credentials } as never,
        );

    it('serves the API on its own port over plain HTTP, as on Node-RED’s', async () => {
        const port = await freePort();
        await load([{ id: 'c1', type: 'evcm-cnf', manager: 'm1', host: '127.0.0.1', port }]);
        const base = `http://127.0.0.1:${port}`;
        let info = await get(`${base}/cnf?cmd=get_dev_info`);
        for (let i = 0; i < 50 && info.status !== 200; i++) {
            await new Promise((r) => setTimeout(r, 100));
            info = await get(`${base}/cnf?cmd=get_dev_info`);
        }
        assert.equal(info.status, 200, info.body);
        assert.match(info.type, /application\/json/);
        const parsed = JSON.parse(info.body) as { params: { title: string }; devices: unknown[] };
        assert.equal(parsed.params.title, 'Stand-in');
        // The ioBroker adapter's calls: admin credentials, override and modbus.
        const override = await get(`${base}/cnf?cmd=override_device&dev_id=E1&flags=E`, {
            auth: 'admin:pw',
        });
        assert.deepEqual([override.status, override.body], [200, '"ok"']);
        assert.equal((await get(`${base}/cnf?cmd=override_device&dev_id=E1&flags=e`)).status, 401);
        assert.equal((await get(`${base}//cnf?cmd=get_params`)).status, 200, 'repeated slashes');
        assert.equal((await get(`${base}/ui/en/sim.htm`, { auth: 'admin:pw' })).status, 200);
        const other = await get(`${base}/elsewhere`);
        assert.deepEqual([other.status, other.body], [404, '"not found"']);
        const put = await get(`${base}/cnf?cmd=get_params`, { method: 'PUT' });
        assert.deepEqual([put.status, put.body], [405, '"method not allowed"']);
        const status = statuses(helper.getNode('c1') as unknown as HelperNode).at(-1)!;
        assert.equal(status.fill, 'green');
        assert.match(String(status.text), new RegExp(`http :${port}`));
    });

    it('speaks HTTPS with the certificate of a tls-config node (files or credentials)', async () => {
        const { cert, key } = selfSignedCert(dir);
        const ca = readFileSync(cert);
        const files = await freePort();
        const uploaded = await freePort();
        await load(
            [
                { id: 't1', type: 'tls-config', cert, key, ca: '', verifyservercert: true },
                { id: 't2', type: 'tls-config', cert: '', key: '', ca: '', verifyservercert: true },
                { id: 'c1', type: 'evcm-cnf', manager: 'm1', port: files, usetls: true, tls: 't1' },
                {
                    id: 'c2',
                    type: 'evcm-cnf',
                    manager: 'm1',
                    path: '/api/cnf',
                    port: uploaded,
                    usetls: true,
                    tls: 't2',
                },
            ],
            { t2: { certdata: readFileSync(cert, 'utf8'), keydata: readFileSync(key, 'utf8') } },
        );
        for (const url of [
            `https://127.0.0.1:${files}/cnf?cmd=get_params`,
            `https://127.0.0.1:${uploaded}/api/cnf?cmd=get_params`,
        ]) {
            let r: Reply | undefined;
            for (let i = 0; i < 50 && r?.status !== 200; i++) {
                r = await get(url, { ca }).catch(() => undefined);
                if (r?.status !== 200) await new Promise((res) => setTimeout(res, 100));
            }
            assert.equal(r?.status, 200, url);
            assert.equal((JSON.parse(r!.body) as { title: string }).title, 'Stand-in');
        }
        // Plain HTTP on the TLS port gets no answer from the API.
        await assert.rejects(get(`http://127.0.0.1:${files}/cnf?cmd=get_params`));
        // Without a certificate there is no listener, and the node says why.
        await helper.unload();
        await load([
            { id: 't3', type: 'tls-config', cert: '', key: '', ca: '', verifyservercert: true },
            { id: 'c3', type: 'evcm-cnf', manager: 'm1', port: files, usetls: true, tls: 't3' },
        ]);
        const c3 = helper.getNode('c3') as unknown as HelperNode;
        assert.match(errors(c3).join('\n'), /evcm-cnf\.errors\.no-tls/);
        assert.equal(statuses(c3).at(-1)!.shape, 'ring');
    });

    it('a taken port is an error of the node with a red ring; the rest runs on', async () => {
        const taken: Server = createServer();
        await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
        const port = (taken.address() as { port: number }).port;
        try {
            let app: Parameters<typeof import('supertest')>[0] | undefined;
            const capture = (RED: { httpNode: typeof app }) => {
                app = RED.httpNode;
            };
            await helper.load(
                [capture, managerNode, cnfNode] as unknown as Parameters<typeof helper.load>[0],
                [
                    manager,
                    { id: 'c1', type: 'evcm-cnf', manager: 'm1', host: '127.0.0.1', port },
                ] as unknown as Parameters<typeof helper.load>[1],
            );
            const c1 = helper.getNode('c1') as unknown as HelperNode;
            await nextCall(c1, 'error', () => true).catch(() => undefined);
            // (the text of the error is checked in a real Node-RED below, with its catalogue)
            assert.match(errors(c1).join('\n'), /evcm-cnf\.errors\.listen/);
            const status = statuses(c1).at(-1)!;
            assert.deepEqual([status.fill, status.shape], ['red', 'ring']);
            assert.equal(status.text, `127.0.0.1:${port}: EADDRINUSE`);
            // The API on Node-RED's own port still answers.
            const supertest = (await import('supertest')).default;
            await supertest(app!).get('/cnf?cmd=get_params').expect(200);
        } finally {
            await new Promise((r) => taken.close(r));
        }
    });

    it('a real Node-RED frees the port on every deploy and listens again', async () => {
        const [first, second] = [await freePort(), await freePort()];
        const flow = (port: number, title: string) => [
            { id: 'tab1', type: 'tab', label: 'Site' },
            { ...manager, id: 'mgr1', title },
            { id: 'cnf1', type: 'evcm-cnf', z: 'tab1', manager: 'mgr1', port, wires: [] },
        ];
        const red = await startNodeRed(flow(first, 'deploy 0'));
        try {
            const deploy = async (port: number, title: string) => {
                const r = await fetch(new URL('flows', red.url), {
                    method: 'POST',
                    headers: {
                        'Content-Type': 'application/json',
                        'Node-RED-Deployment-Type': 'full',
                    },
                    body: JSON.stringify(flow(port, title)),
                });
                assert.equal(r.status, 204, await r.text());
            };
            const title = async (port: number): Promise<string | undefined> => {
                for (let i = 0; i < 50; i++) {
                    const r = await get(`http://127.0.0.1:${port}/cnf?cmd=get_params`).catch(
                        () => undefined,
                    );
                    if (r?.status === 200) return (JSON.parse(r.body) as { title: string }).title;
                    await new Promise((res) => setTimeout(res, 100));
                }
                return undefined;
            };
            assert.equal(await title(first), 'deploy 0');
            // The editor's labels and help, in English and German.
            for (const [lng, label] of [
                ['en-US', 'Own port'],
                ['de', 'Eigener Port'],
            ]) {
                const catalog = (await (
                    await fetch(
                        new URL(
                            `locales/@evcm/node-red-charging-manager/evcm-cnf?lng=${lng}`,
                            red.url,
                        ),
                    )
                ).json()) as { 'evcm-cnf': { label: { port: string } } };
                assert.equal(catalog['evcm-cnf'].label.port, label, lng);
            }
            const help = await (
                await fetch(new URL('nodes', red.url), {
                    headers: { Accept: 'text/html', 'Accept-Language': 'de' },
                })
            ).text();
            assert.match(help, /data-help-name="evcm-cnf">[\s\S]*?Eigener Port[\s\S]*?setcap/);
            for (let i = 1; i <= 5; i++) {
                await deploy(first, `deploy ${i}`);
                assert.equal(await title(first), `deploy ${i}`, `deploy ${i} listens again`);
            }
            await deploy(second, 'moved');
            assert.equal(await title(second), 'moved');
            await assert.rejects(
                get(`http://127.0.0.1:${first}/cnf?cmd=get_params`),
                /ECONNREFUSED/,
                'the old port is closed',
            );
            assert.doesNotMatch(red.log(), /EADDRINUSE/);
            // A port that is taken: the node says so in Node-RED's log, Node-RED runs on.
            const taken: Server = createServer();
            await new Promise<void>((r) => taken.listen(first, '127.0.0.1', r));
            try {
                await deploy(first, 'taken');
                for (let i = 0; i < 50 && !/EADDRINUSE/.test(red.log()); i++) {
                    await new Promise((res) => setTimeout(res, 100));
                }
                assert.match(
                    red.log(),
                    new RegExp(
                        `cannot listen on \\*:${first}: EADDRINUSE \\(EADDRINUSE: the port is taken`,
                    ),
                );
                const api = await get(new URL('cnf?cmd=get_params', red.url).href);
                assert.equal((JSON.parse(api.body) as { title: string }).title, 'taken');
            } finally {
                await new Promise((r) => taken.close(r));
            }
        } finally {
            await red.stop();
        }
    });
});
