// What a manager keeps across a restart of Node-RED itself: a real Node-RED in a child process
// (temporary userDir, loopback port), configured through /cnf, stopped with SIGTERM, started again
// on the same userDir; then deploys through the admin API that change one item in the editor.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

interface Reply {
    status: number;
    body: unknown;
}

/** One HTTP request without keep-alive (no socket outlives the test). */
function http(
    base: string,
    path: string,
    options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
    const data = options.body === undefined ? undefined : JSON.stringify(options.body);
    return new Promise((resolve, reject) => {
        const req = request(
            new URL(path, base),
            {
                method: options.method ?? (data ? 'POST' : 'GET'),
                agent: false,
                headers: {
                    ...(data ? { 'Content-Type': 'application/json' } : {}),
                    ...options.headers,
                },
            },
            (res) => {
                let text = '';
                res.setEncoding('utf8');
                res.on('data', (c: string) => (text += c));
                res.on('end', () => {
                    let body: unknown = text;
                    try {
                        body = JSON.parse(text);
                    } catch {
                        // not JSON: keep the text
                    }
                    resolve({ status: res.statusCode ?? 0, body });
                });
            },
        );
        req.on('error', reject);
        req.end(data);
    });
}

const basic = (password: string) => ({
    Authorization: 'Basic ' + Buffer.from(`admin:${password}`).toString('base64'),
});

const MANAGER = 'a1b2c3d4e5f60718';
const EDITOR_PASSWORD = 'editor-pw';
const API_PASSWORD = 'api-pw';

const flows = [
    { id: 'tab1', type: 'tab', label: 'Site' },
    {
        id: MANAGER,
        type: 'evcm-manager',
        name: 'Site',
        title: 'Site',
        max_total_current: '32000',
        reserve_current: '1000',
        min_pause_time: '0',
        lb_enabled: true,
        disable_policy: '0',
        cycle_ms: '500',
        userTable: JSON.stringify([{ id: '1001', name: 'Anna', rfids: [{ id: 'A1' }] }]),
        devices: JSON.stringify([
            { dev_type: 'evse_sim', dev_id: 'E1', name: 'Garage', max_charging_cur: 16000 },
            { dev_type: 'meter_sim', dev_id: 'M1', name: 'Grid', role: 3, sim_step_current: 0 },
        ]),
    },
    {
        id: 'cnf1',
        type: 'evcm-cnf',
        z: 'tab1',
        name: '',
        manager: MANAGER,
        path: '/cnf',
        x: 120,
        y: 60,
        wires: [],
    },
];

/** Parameters that are configuration (the rest of get_params is measured or derived). */
const CONFIG_PARAMS = [
    'title',
    'max_total_current',
    'reserve_current',
    'max_total_evse_current',
    'max_imbalance',
    'min_pause_time',
    'lb_enabled',
    'disable_policy',
];

interface Snapshot {
    params: Record<string, unknown>;
    devices: unknown;
    users: unknown;
    vars: unknown;
    totals: Record<string, number>;
}

describe('persistence across a Node-RED restart (real runtime)', function () {
    this.timeout(120_000);
    let userDir: string;
    let red: NodeRedProcess | undefined;

    const cnf = async (query: string, password?: string, body?: unknown): Promise<Reply> => {
        assert.ok(red);
        return http(red.url, `/cnf?${query}`, {
            ...(body === undefined ? {} : { body }),
            headers: password === undefined ? {} : basic(password),
        });
    };
    const ok = async (query: string, password?: string, body?: unknown): Promise<unknown> => {
        const r = await cnf(query, password, body);
        assert.equal(r.status, 200, `${query}: ${JSON.stringify(r.body)}`);
        return r.body;
    };

    async function snapshot(password: string): Promise<Snapshot> {
        const params = (await ok('cmd=get_params')) as Record<string, unknown>;
        const info = (await ok('cmd=get_dev_info')) as { devices: Record<string, unknown>[] };
        const vars = (await ok('cmd=get_cm_vars', password)) as {
            vars: { name: string; expr: unknown }[];
        };
        return {
            params: Object.fromEntries(CONFIG_PARAMS.map((k) => [k, params[k]])),
            devices: await ok('cmd=get_devices', password),
            users: await ok('cmd=get_users', password),
            vars: vars.vars.map(({ name, expr }) => ({ name, expr })),
            totals: Object.fromEntries(
                info.devices
                    .filter((d) => d.is_evse)
                    .map((d) => [String(d.dev_id), Number(d.total_energy)]),
            ),
        };
    }

    /** Polls until `probe` gives a value; a failing probe (a route being redeployed) is retried. */
    async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
        const deadline = Date.now() + 20_000;
        for (;;) {
            let problem: unknown;
            try {
                const value = await probe();
                if (value !== undefined) return value;
            } catch (err) {
                problem = err;
            }
            if (Date.now() > deadline) {
                throw new Error(`timed out waiting for ${what}`, { cause: problem });
            }
            await new Promise((r) => setTimeout(r, 200));
        }
    }

    async function deploy(change: (manager: Record<string, unknown>) => void): Promise<void> {
        assert.ok(red);
        const current = await http(red.url, '/flows', {
            headers: { 'Node-RED-API-Version': 'v1' },
        });
        assert.equal(current.status, 200);
        const list = current.body as Record<string, unknown>[];
        const manager = list.find((n) => n.id === MANAGER)!;
        change(manager);
        const r = await http(red.url, '/flows', {
            body: list,
            headers: { 'Node-RED-API-Version': 'v1', 'Node-RED-Deployment-Type': 'full' },
        });
        assert.equal(r.status, 204, JSON.stringify(r.body));
    }

    async function stop(): Promise<string> {
        const process = red!;
        red = undefined;
        await process.stop();
        return process.log();
    }

    before(() => {
        userDir = mkdtempSync(join(tmpdir(), 'evcm-restart-'));
    });
    afterEach(async () => {
        if (red) await stop();
    });
    after(() => {
        rmSync(userDir, { recursive: true, force: true });
    });

    it('keeps /cnf changes across SIGTERM and start; an editor deploy wins for the item it changes', async () => {
        red = await startNodeRed(flows, {
            userDir,
            credentials: { [MANAGER]: { adminPassword: EDITOR_PASSWORD } },
        });

        // Configure through /cnf.
        const pw = EDITOR_PASSWORD;
        await ok('cmd=set_params', pw, { max_total_current: 25000, reserve_current: 3000 });
        await ok('cmd=set_device', pw, {
            devices: [
                { dev_id: 'E1', max_charging_cur: 10000 },
                { dev_id: 'E2', dev_type: 'evse_sim', name: 'Added', sim_plugged: false },
            ],
        });
        await ok('cmd=set_user', pw, {
            id: '1001',
            name: 'Anna',
            rfids: [{ id: 'A1' }, { id: 'A2', name: 'spare card' }],
        });
        await ok('cmd=set_user', pw, {
            id: '2002',
            name: 'Carla',
            dev_ids: ['E2'],
            rfids: [{ id: 'C1', ac_ovch: true }],
        });
        await ok('cmd=set_cm_vars', pw, {
            vars: [
                { name: 'AVAIL', expr: 80 },
                { name: 'LIMIT', expr: '25000 * CM.AVAIL / 100' },
            ],
        });
        await ok('cmd=set_cm_vars&tmp=1&name=SCRATCH&val=1', pw);
        await ok('cmd=soft_meter&dev_id=E1&val=100000', pw);
        await ok(`cmd=change_admin_pwd&old_pwd=${pw}&new_pwd=${API_PASSWORD}`);
        // E1 charges: its total grows beyond the soft meter value set above.
        await waitFor('E1 to count energy', async () => {
            const s = await snapshot(API_PASSWORD);
            return s.totals.E1! > 100_002 ? s : undefined;
        });
        const before = await snapshot(API_PASSWORD);
        assert.equal(before.params.max_total_current, 25000);
        assert.equal(
            (before.vars as unknown[]).length,
            3,
            'SCRATCH (tmp) is there until the restart',
        );

        // Stop (SIGTERM by PID) and start again on the same userDir.
        const pid = red.pid;
        const firstLog = await stop();
        assert.match(firstLog, /Stopped flows/);
        assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the first Node-RED has exited');
        assert.ok(existsSync(join(userDir, 'evcm-charging-manager', `${MANAGER}.json`)));
        red = await startNodeRed(undefined, { userDir });

        const after = await snapshot(API_PASSWORD);
        assert.deepEqual(after.params, before.params);
        assert.deepEqual(after.devices, before.devices);
        assert.deepEqual(after.users, before.users);
        assert.deepEqual(
            after.vars,
            (before.vars as { name: string }[]).filter((v) => v.name !== 'SCRATCH'),
        );
        for (const [devId, total] of Object.entries(before.totals)) {
            assert.ok(after.totals[devId]! >= total, `${devId}: ${after.totals[devId]} < ${total}`);
        }
        assert.equal((await cnf('cmd=get_users')).status, 401, 'the admin password is required');
        assert.equal((await cnf('cmd=get_users', EDITOR_PASSWORD)).status, 401);
        assert.equal((await cnf('cmd=get_users', API_PASSWORD)).status, 200);
        // the wallbox keeps counting from there
        await waitFor('E1 to count on', async () => {
            const s = await snapshot(API_PASSWORD);
            return s.totals.E1! > after.totals.E1! ? true : undefined;
        });

        // The editor changes max_total_current and deploys: that item only.
        await deploy((m) => (m.max_total_current = '30000'));
        const deployed = await waitFor('the deploy', async () => {
            const s = await snapshot(API_PASSWORD);
            return s.params.max_total_current === 30000 ? s : undefined;
        });
        assert.equal(deployed.params.reserve_current, 3000);
        assert.deepEqual(deployed.params, { ...after.params, max_total_current: 30000 });
        assert.deepEqual(deployed.devices, after.devices);
        assert.deepEqual(deployed.users, after.users);
        assert.deepEqual(deployed.vars, after.vars);
        assert.ok(deployed.totals.E1! >= after.totals.E1!);

        // The editor changes the admin password and deploys: the password only.
        await deploy((m) => (m.credentials = { adminPassword: 'editor-pw-2' }));
        await waitFor('the new password', async () =>
            (await cnf('cmd=get_users', 'editor-pw-2')).status === 200 ? true : undefined,
        );
        assert.equal((await cnf('cmd=get_users', API_PASSWORD)).status, 401);
        const second = await snapshot('editor-pw-2');
        assert.deepEqual(second.params, deployed.params);
        assert.deepEqual(second.devices, after.devices);
        assert.deepEqual(second.users, after.users);
        assert.deepEqual(second.vars, after.vars);
        await stop();
    });

    it('a store that cannot be read is moved aside and reported; the manager runs on the editor config', async () => {
        const dir = join(userDir, 'evcm-charging-manager');
        const file = join(dir, `${MANAGER}.json`);
        mkdirSync(dir, { recursive: true });
        writeFileSync(file, '{"version": 1, "params": {"max_total_current": 25');
        red = await startNodeRed(flows, {
            userDir,
            credentials: { [MANAGER]: { adminPassword: EDITOR_PASSWORD } },
        });
        const params = (await ok('cmd=get_params')) as Record<string, unknown>;
        assert.equal(params.max_total_current, 32000, 'the editor value');
        assert.equal(params.reserve_current, 1000);
        assert.equal((await cnf('cmd=get_users', EDITOR_PASSWORD)).status, 200);
        const aside = readdirSync(dir).filter((n) => n.startsWith(`${MANAGER}.json.corrupt-`));
        assert.equal(aside.length, 1, readdirSync(dir).join(', '));
        assert.match(red.log(), /stored settings could not be read .*not valid JSON/);
        assert.match(red.log(), new RegExp(`moved to .*${aside[0]}`));
        // a new store is started
        await ok('cmd=set_params', EDITOR_PASSWORD, { reserve_current: 2500 });
        await stop();
        red = await startNodeRed(undefined, { userDir });
        assert.equal(
            ((await ok('cmd=get_params')) as { reserve_current: number }).reserve_current,
            2500,
        );
        await stop();
    });
});
