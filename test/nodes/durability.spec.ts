// An "ok" from /cnf is a promise that the change survives a crash. A real Node-RED in a child
// process serves /cnf to several clients that send set_cm_vars and set_user changes as fast as
// they are answered; it is killed with SIGKILL at a random moment and started again on the same
// userDir. Every change answered "ok" before the kill must be there after the restart, the store
// must parse, and no file may have been set aside as corrupt. `npm run test:long` kills 50 times.
import assert from 'node:assert/strict';
import {
    existsSync,
    mkdirSync,
    mkdtempSync,
    readdirSync,
    readFileSync,
    rmSync,
    writeFileSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

const KILLS = process.env.EVCM_TEST_LONG ? 50 : 5;
const CLIENTS = 6;
const MANAGER = 'f1e2d3c4b5a69788';
const USER_BASE = 7000;

const flows = [
    { id: 'tab1', type: 'tab', label: 'Site' },
    {
        id: MANAGER,
        type: 'evcm-manager',
        name: 'Site',
        max_total_current: '32000',
        cycle_ms: '500',
        devices: JSON.stringify([
            { dev_type: 'evse_sim', dev_id: 'E1', name: 'Garage' },
            { dev_type: 'meter_sim', dev_id: 'M1', name: 'Grid', role: 3 },
        ]),
    },
    { id: 'cnf1', type: 'evcm-cnf', z: 'tab1', manager: MANAGER, path: '/cnf', wires: [] },
];

interface Reply {
    status: number;
    body: unknown;
}

function send(agent: Agent, base: string, path: string, body?: unknown): Promise<Reply> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
        const req = request(
            new URL(path, base),
            {
                method: data ? 'POST' : 'GET',
                agent,
                headers: data ? { 'Content-Type': 'application/json' } : {},
            },
            (res) => {
                let text = '';
                res.setEncoding('utf8');
                res.on('data', (c: string) => (text += c));
                res.on('end', () => {
                    let parsed: unknown = text;
                    try {
                        parsed = JSON.parse(text);
                    } catch {
                        // not JSON: keep the text
                    }
                    resolve({ status: res.statusCode ?? 0, body: parsed });
                });
                res.on('error', reject);
            },
        );
        req.on('error', reject);
        req.end(data);
    });
}

/** What one client has sent and what it was told, per item it writes (its variable, its user). */
interface ClientLedger {
    /** The sequence number of the last request sent (every request carries the next one). */
    sent: number;
    /** Per item: the newest sequence number ever answered "ok". */
    acked: { variable: number; user: number };
    /** Per item: the sequence numbers answered "ok" since the last start, and when. */
    ackedAt: { variable: Map<number, number>; user: Map<number, number> };
}

const variableName = (client: number) => `C${client}`;
const userId = (client: number) => String(USER_BASE + client);
const userName = (client: number, seq: number) => `client ${client} write ${seq}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('acknowledged changes survive SIGKILL (real Node-RED)', function () {
    this.timeout(60_000 + KILLS * 20_000);
    let userDir: string;
    let red: NodeRedProcess | undefined;

    before(() => {
        userDir = mkdtempSync(join(tmpdir(), 'evcm-kill-'));
    });
    after(async () => {
        if (red) await red.kill();
        rmSync(userDir, { recursive: true, force: true });
    });

    /** One client: a loop of changes, each sent once the previous one is answered. */
    async function client(
        base: string,
        id: number,
        ledger: ClientLedger,
        unexpected: string[],
        running: () => boolean,
    ): Promise<void> {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        try {
            while (running()) {
                const seq = ++ledger.sent;
                const item = seq % 2 ? 'user' : 'variable';
                let reply: Reply;
                try {
                    reply =
                        item === 'variable'
                            ? await send(
                                  agent,
                                  base,
                                  `/cnf?cmd=set_cm_vars&name=${variableName(id)}&val=${seq}`,
                              )
                            : await send(agent, base, '/cnf?cmd=set_user', {
                                  id: userId(id),
                                  name: userName(id, seq),
                              });
                } catch {
                    return; // the connection died with Node-RED: this change was not answered
                }
                if (reply.status === 200 && reply.body === 'ok') {
                    ledger.acked[item] = seq;
                    ledger.ackedAt[item].set(seq, Date.now());
                } else if (running()) {
                    unexpected.push(
                        `client ${id} #${seq}: ${reply.status} ${JSON.stringify(reply.body)}`,
                    );
                }
            }
        } finally {
            agent.destroy();
        }
    }

    async function admin<T>(base: string, query: string): Promise<T> {
        const agent = new Agent({ keepAlive: false });
        try {
            const r = await send(agent, base, `/cnf?${query}`);
            assert.equal(r.status, 200, `${query}: ${JSON.stringify(r.body)}`);
            return r.body as T;
        } finally {
            agent.destroy();
        }
    }

    it(`keeps every change answered "ok" when Node-RED is killed ${KILLS} times`, async () => {
        const ledgers: ClientLedger[] = Array.from({ length: CLIENTS }, () => ({
            sent: 0,
            acked: { variable: 0, user: 0 },
            ackedAt: { variable: new Map(), user: new Map() },
        }));
        const storeDir = join(userDir, 'evcm-charging-manager');
        let totalAcked = 0;
        const started = Date.now();
        red = await startNodeRed(flows, { userDir });
        for (let kill = 1; kill <= KILLS; kill++) {
            const base = red.url;
            const unexpected: string[] = [];
            let running = true;
            const clients = ledgers.map((ledger, id) =>
                client(base, id, ledger, unexpected, () => running),
            );
            const answered = () =>
                ledgers.reduce((n, l) => n + l.ackedAt.variable.size + l.ackedAt.user.size, 0);
            const loadStart = Date.now();
            if (Math.random() < 0.2) {
                // now and then while the first requests are on their way
                await sleep(Math.floor(Math.random() * 300));
            } else {
                // mostly while changes are being answered (however slow the machine is)
                while (answered() === 0 && Date.now() - loadStart < 10_000) await sleep(5);
                await sleep(Math.floor(Math.random() * 1000));
            }
            const delay = Date.now() - loadStart;
            const killedAt = Date.now();
            await red.kill();
            red = undefined;
            running = false;
            await Promise.all(clients);
            assert.deepEqual(unexpected, [], `kill ${kill}: answers other than "ok"`);
            totalAcked += answered();

            // The file parses and nothing was set aside.
            const files = readdirSync(storeDir);
            assert.deepEqual(
                files.filter((f) => f.includes('.corrupt-')),
                [],
                `kill ${kill}: a store file was set aside`,
            );
            // (no file yet only if nothing was saved: the check below finds any "ok" lost)
            const file = join(storeDir, `${MANAGER}.json`);
            if (existsSync(file)) JSON.parse(readFileSync(file, 'utf8'));

            red = await startNodeRed(undefined, { userDir });
            assert.doesNotMatch(red.log(), /could not be read|cannot be used/);
            const vars = await admin<{ vars: { name: string; expr: unknown }[] }>(
                red.url,
                'cmd=get_cm_vars',
            );
            const users = await admin<{ id: string; name: string }[]>(red.url, 'cmd=get_users');
            /** Per lost change: how long before the kill it was answered (ms; -1: an earlier run). */
            const lost: { what: string; msBeforeKill: number }[] = [];
            ledgers.forEach((ledger, id) => {
                const storedUser = users.find((u) => u.id === userId(id))?.name ?? '';
                const stored = {
                    variable: Number(vars.vars.find((v) => v.name === variableName(id))?.expr ?? 0),
                    user: Number(/write (\d+)$/.exec(storedUser)?.[1] ?? 0),
                };
                for (const item of ['variable', 'user'] as const) {
                    // a change sent but not answered may have landed too, nothing later
                    assert.ok(stored[item] <= ledger.sent, `client ${id} ${item}: ${stored[item]}`);
                    const answered = ledger.ackedAt[item];
                    for (const [seq, at] of answered) {
                        if (seq > stored[item])
                            lost.push({
                                what: `client ${id} ${item} #${seq}`,
                                msBeforeKill: killedAt - at,
                            });
                    }
                    if (stored[item] < ledger.acked[item] && !answered.has(ledger.acked[item]))
                        lost.push({
                            what: `client ${id} ${item} #${ledger.acked[item]}`,
                            msBeforeKill: -1,
                        });
                    answered.clear();
                }
            });
            if (lost.length) {
                const oldest = Math.max(...lost.map((l) => l.msBeforeKill));
                assert.fail(
                    `kill ${kill} (${delay} ms into the load): ${lost.length} changes answered "ok" ` +
                        `were lost, answered up to ${oldest} ms before the kill: ` +
                        lost
                            .slice(0, 5)
                            .map((l) => l.what)
                            .join(', '),
                );
            }
        }
        await red.kill();
        red = undefined;
        assert.ok(
            totalAcked >= KILLS,
            `the clients made progress (${totalAcked} changes answered)`,
        );
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        console.log(`      ${KILLS} kills, ${totalAcked} changes answered "ok" in ${seconds} s`);
    });

    it('answers 503 "change not saved" while the store cannot be written; the change stays in effect and is saved with the next write', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'evcm-unwritable-'));
        const storeDir = join(dir, 'evcm-charging-manager');
        const agent = new Agent({ keepAlive: false });
        const cnf = (query: string) => send(agent, red!.url, `/cnf?${query}`);
        try {
            // A file where the store's folder belongs: the store cannot even be opened.
            writeFileSync(storeDir, 'not a folder');
            red = await startNodeRed(flows, { userDir: dir });
            assert.deepEqual(await cnf('cmd=set_params&reserve_current=2000'), {
                status: 503,
                body: 'change not saved: the store cannot be written (EEXIST)',
            });
            const params = await cnf('cmd=get_params');
            assert.equal((params.body as { reserve_current: number }).reserve_current, 2000);
            await red.kill();

            // The folder disappears while Node-RED runs: writes fail until it is back.
            rmSync(storeDir);
            red = await startNodeRed(undefined, { userDir: dir });
            assert.deepEqual(await cnf('cmd=set_cm_vars&name=A&val=1'), {
                status: 200,
                body: 'ok',
            });
            rmSync(storeDir, { recursive: true });
            writeFileSync(storeDir, 'not a folder');
            assert.deepEqual(await cnf('cmd=set_cm_vars&name=B&val=2'), {
                status: 503,
                body: 'change not saved: the store cannot be written (ENOTDIR)',
            });
            const vars = (await cnf('cmd=get_cm_vars')).body as { vars: { name: string }[] };
            assert.deepEqual(
                vars.vars.map((v) => v.name),
                ['A', 'B'],
                'B is in effect',
            );
            assert.match(red.log(), /saving changes failed: .*could not be written/);
            rmSync(storeDir);
            mkdirSync(storeDir);
            assert.deepEqual(await cnf('cmd=set_cm_vars&name=C&val=3'), {
                status: 200,
                body: 'ok',
            });
            await red.kill();

            red = await startNodeRed(undefined, { userDir: dir });
            const after = (await cnf('cmd=get_cm_vars')).body as {
                vars: { name: string; expr: unknown }[];
            };
            assert.deepEqual(
                after.vars.map(({ name, expr }) => ({ name, expr })),
                [
                    { name: 'A', expr: 1 },
                    { name: 'B', expr: 2 },
                    { name: 'C', expr: 3 },
                ],
                'B went out with the write of C',
            );
            await red.kill();
            red = undefined;
        } finally {
            agent.destroy();
            if (red) await red.kill();
            red = undefined;
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
