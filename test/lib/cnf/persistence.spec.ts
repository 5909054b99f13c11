// The mapping between a manager's /cnf context and its store: what a restart keeps, what it does
// not (tmp, max_total_cur_prc), the editor/API precedence per item, and energy counters that
// never go down. Changes are made through handleCnf, as clients make them.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CnfContext } from '../../../lib/cnf/context';
import { handleCnf, type CnfRequest, type CnfResponse } from '../../../lib/cnf/handle';
import {
    editorStateOf,
    ManagerPersistence,
    reconcileAdminPassword,
    storeFileFor,
    type RestoreReport,
} from '../../../lib/cnf/persistence';
import { MemoryUsers, parseUsersText } from '../../../lib/cnf/users';
import { parseManagerConfig, userTableText } from '../../../lib/site/editor';
import { Site } from '../../../lib/site/site';
import { emptyDocument, type StoreDocument } from '../../../lib/store/schema';
import { ManagerStore } from '../../../lib/store/store';
import { basic, TEST_SCRYPT } from '../../support/cnf';

type Def = Record<string, unknown>;

const maxCurrent = (m: { site: Site }, devId: string): unknown =>
    (m.site.device(devId) as { max_charging_cur?: number } | undefined)?.max_charging_cur;

const EDITOR_USERS = [
    { id: '1001', name: 'Anna', dev_ids: ['E1'], rfids: [{ id: 'A1' }] },
    { id: '1002', name: 'Ben', dev_ids: ['E1'], rfids: [{ id: 'B1' }] },
];

function editorDef(change: (def: Def) => void = () => undefined): Def {
    const def: Def = {
        id: 'mgr1',
        max_total_current: '32000',
        reserve_current: '1000',
        cycle_ms: '200',
        min_pause_time: '0',
        userTable: JSON.stringify(EDITOR_USERS),
        devices: JSON.stringify([
            { dev_type: 'evse_ajax', dev_id: 'E1', name: 'Carport', max_charging_cur: 16000 },
            { dev_type: 'evse_ajax', dev_id: 'E2', name: 'Garage' },
            { dev_type: 'meter_ajax', dev_id: 'M1', name: 'Grid', role: 3 },
        ]),
    };
    change(def);
    return def;
}

interface Manager {
    site: Site;
    ctx: CnfContext;
    store: ManagerStore;
    persistence: ManagerPersistence;
    report: RestoreReport;
    call(query: string, options?: { body?: unknown; password?: string }): Promise<CnfResponse>;
    json(query: string, options?: { body?: unknown; password?: string }): Promise<unknown>;
    stop(): Promise<void>;
}

/** What the manager node does on start, without Node-RED. */
async function startManager(file: string, def: Def, adminPassword: string): Promise<Manager> {
    const users = parseUsersText(userTableText(def));
    const site = new Site(parseManagerConfig(def));
    const ctx = new CnfContext(site, {
        adminPassword,
        scrypt: TEST_SCRYPT,
        users: new MemoryUsers(users),
    });
    const store = await ManagerStore.open(file, { debounceMs: 5 });
    const problems: Error[] = [];
    const { persistence, report } = await ManagerPersistence.start(
        ctx,
        store,
        editorStateOf(def, adminPassword),
        { onProblem: (err) => problems.push(err), scrypt: TEST_SCRYPT, counterSaveMs: 3_600_000 },
    );
    const call: Manager['call'] = (query, options = {}) =>
        handleCnf(
            {
                method: options.body === undefined ? 'GET' : 'POST',
                query,
                body: options.body === undefined ? undefined : JSON.stringify(options.body),
                remoteAddress: '127.0.0.1',
                authorization:
                    options.password === undefined ? undefined : basic('admin', options.password),
            } as CnfRequest,
            ctx,
        );
    return {
        site,
        ctx,
        store,
        persistence,
        report,
        call,
        async json(query, options) {
            const r = await call(query, options);
            assert.equal(r.status, 200, `${query}: ${r.body}`);
            return JSON.parse(r.body);
        },
        async stop() {
            await site.stop();
            await persistence.close();
            assert.deepEqual(
                problems.map((p) => p.message),
                [],
            );
        },
    };
}

describe('persistence of the /cnf context (lib/cnf/persistence)', function () {
    this.timeout(20_000);
    let dir: string;
    let file: string;
    const running: Manager[] = [];

    async function start(def: Def = editorDef(), password = ''): Promise<Manager> {
        const m = await startManager(file, def, password);
        running.push(m);
        return m;
    }
    async function restart(m: Manager, def: Def = editorDef(), password = ''): Promise<Manager> {
        await m.stop();
        running.splice(running.indexOf(m), 1);
        return start(def, password);
    }

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), 'evcm-persist-'));
        file = join(dir, 'mgr1.json');
    });
    afterEach(async () => {
        for (const m of running.splice(0)) await m.stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
    });

    it('keeps every change made through /cnf across a restart, and nothing sent with tmp=1', async () => {
        let m = await start();
        const ok = async (query: string, body?: unknown, password?: string) =>
            assert.equal(
                await m.json(query, {
                    ...(body === undefined ? {} : { body }),
                    ...(password === undefined ? {} : { password }),
                }),
                'ok',
            );
        await ok('cmd=set_params', { max_total_current: 25000, reserve_current: 3000 });
        await ok('cmd=set_params&max_total_cur_prc=50');
        await ok('cmd=set_params&tmp=1&voltage=240');
        await ok('cmd=set_device', { devices: [{ dev_id: 'E1', max_charging_cur: 10000 }] });
        await ok('cmd=set_device', {
            devices: [{ dev_id: 'E5', dev_type: 'evse_ajax', name: 'Added' }],
        });
        await ok('cmd=del_device&dev_id=E2');
        await ok('cmd=set_user', {
            id: '1002',
            name: 'Ben (API)',
            dev_ids: ['E1', 'E5'],
            rfids: [{ id: 'B1' }, { id: 'B2', ac_auth: false }],
        });
        await ok('cmd=set_user', { id: '1003', name: 'Carla', rfids: [{ id: 'C1' }] });
        await ok('cmd=set_cm_vars', {
            vars: [
                { name: 'AVAIL', expr: 60 },
                { name: 'LIMIT', expr: '32000 * CM.AVAIL / 100' },
            ],
        });
        await ok('cmd=set_cm_vars&tmp=1&name=TMPVAR&val=5');
        await ok('cmd=set_cplan&dev_id=E1', { cplan: [{ st: 60, dr: 120, lm: 8000 }] });
        await ok('cmd=set_cplan&dev_id=E5&tmp=1', { cplan: [{ st: 0, dr: 10, lm: 6000 }] });
        await ok('cmd=change_admin_pwd&new_pwd=s3cret');
        const before = {
            params: { ...m.site.params },
            devices: await m.json('cmd=get_devices', { password: 's3cret' }),
            users: await m.json('cmd=get_users', { password: 's3cret' }),
        };

        m = await restart(m);
        assert.deepEqual(m.report, { replaced: [], problems: [] });
        const params = (await m.json('cmd=get_params')) as Record<string, unknown>;
        assert.equal(params.max_total_current, 25000);
        assert.equal(params.reserve_current, 3000);
        assert.equal(params.max_total_cur_prc, 100, 'max_total_cur_prc is never kept');
        assert.equal(m.site.params.voltage, 230, 'a parameter sent with tmp=1 is not kept');
        assert.deepEqual(
            { ...m.site.params, max_total_cur_prc: 50, voltage: 240 },
            before.params,
            'everything else as before',
        );

        assert.equal((await m.call('cmd=get_users')).status, 401, 'the password is required');
        assert.equal((await m.call('cmd=get_users', { password: '' })).status, 401);
        const opts = { password: 's3cret' };
        assert.deepEqual(await m.json('cmd=get_devices', opts), before.devices);
        assert.deepEqual(
            ((await m.json('cmd=get_devices', opts)) as { dev_id: string }[]).map((d) => d.dev_id),
            ['E1', 'M1', 'E5'],
        );
        assert.deepEqual(await m.json('cmd=get_users', opts), before.users);
        assert.equal(m.ctx.users.byRfid('B2')?.name, 'Ben (API)');
        assert.equal(m.ctx.users.byRfid('C1')?.id, '1003');
        const vars = (await m.json('cmd=get_cm_vars', opts)) as { vars: { name: string }[] };
        assert.deepEqual(
            vars.vars.map((v) => v.name),
            ['AVAIL', 'LIMIT'],
        );
        assert.deepEqual(await m.json('cmd=get_cplan&dev_id=E1', opts), {
            cplan: [{ dc: false, st: 60, dr: 120, lm: 8000 }],
        });
        assert.deepEqual(await m.json('cmd=get_cplan&dev_id=E5', opts), { cplan: [] });

        // The file holds the scrypt hash, never the clear text.
        const text = readFileSync(file, 'utf8');
        assert.ok(!text.includes('s3cret'));
        assert.match(JSON.parse(text).adminPasswordHash, /^scrypt\$1024\$8\$1\$/);
    });

    it("keeps a plan's target across a restart; one that has departed is over", async () => {
        let m = await start();
        const departure = Math.floor(Date.now() / 1000) + 5 * 3600;
        assert.equal(
            await m.json('cmd=set_cplan&dev_id=E1', {
                body: { cplan: [{ st: 60, dr: 120, lm: 8000 }], req_energy: 20_000, departure },
            }),
            'ok',
        );
        assert.equal(
            await m.json('cmd=set_cplan&dev_id=E2', {
                body: { cplan: [], req_energy: 5000, departure: Math.floor(Date.now() / 1000) + 2 },
            }),
            'ok',
        );
        m = await restart(m);
        const got = (await m.json('cmd=get_cplan&dev_id=E1')) as Record<string, unknown>;
        assert.deepEqual(got.cplan, [{ dc: false, st: 60, dr: 120, lm: 8000 }]);
        assert.equal(got.req_energy, 20_000);
        assert.equal(got.departure, departure);
        await new Promise((r) => setTimeout(r, 2100));
        m = await restart(m);
        assert.deepEqual(await m.json('cmd=get_cplan&dev_id=E2'), { cplan: [] });
        assert.equal(
            ((await m.json('cmd=get_cplan&dev_id=E1')) as { req_energy?: number }).req_energy,
            20_000,
        );
    });

    it('a flow with its user table under the old name `users` keeps its users; the rename changes nothing', async () => {
        const legacy = editorDef((d) => {
            d.users = d.userTable;
            delete d.userTable;
        });
        let m = await start(legacy);
        assert.equal(m.ctx.users.byRfid('A1')?.name, 'Anna');
        assert.equal(m.ctx.users.byRfid('B1')?.name, 'Ben');
        await m.json('cmd=set_user', {
            body: { id: '1001', name: 'Anna (API)', rfids: [{ id: 'A1' }, { id: 'A2' }] },
        });
        await m.json('cmd=set_user', {
            body: { id: '1003', name: 'Carla', rfids: [{ id: 'C1' }] },
        });
        const before = await m.json('cmd=get_users');

        // The same table saved by the editor under its new name: nothing the API set gives way.
        m = await restart(m, editorDef());
        assert.deepEqual(m.report.replaced, []);
        assert.deepEqual(await m.json('cmd=get_users'), before);
        assert.equal(m.ctx.users.byRfid('A2')?.name, 'Anna (API)');

        // Both names: the new one is the editor's table.
        m = await restart(
            m,
            editorDef((d) => (d.users = '[]')),
        );
        assert.deepEqual(m.report.replaced, []);
        assert.equal(m.ctx.users.byRfid('B1')?.name, 'Ben');
    });

    it('a flow without a user table says nothing about users: every stored user stays in force', async () => {
        let m = await start();
        await m.json('cmd=set_user', {
            body: { id: '1001', name: 'Anna (API)', rfids: [{ id: 'A1' }, { id: 'A2' }] },
        });
        await m.json('cmd=set_user', {
            body: { id: '1003', name: 'Carla', rfids: [{ id: 'C1' }] },
        });

        m = await restart(
            m,
            editorDef((d) => delete d.userTable),
        );
        assert.deepEqual(m.report.replaced, []);
        assert.equal(m.ctx.users.byRfid('A2')?.name, 'Anna (API)');
        assert.equal(m.ctx.users.byRfid('C1')?.name, 'Carla');
        assert.equal(m.ctx.users.get('1002'), undefined, 'an editor user is where the table is');

        // The table back as it was: the API's versions still stand.
        m = await restart(m, editorDef());
        assert.deepEqual(m.report.replaced, []);
        assert.equal(m.ctx.users.byRfid('A2')?.name, 'Anna (API)');
        assert.equal(m.ctx.users.byRfid('B1')?.name, 'Ben');

        // An empty table is the editor's word: its users give way.
        m = await restart(
            m,
            editorDef((d) => (d.userTable = '[]')),
        );
        assert.deepEqual(m.report.replaced, ['user:1001']);
        assert.equal(m.ctx.users.get('1001'), undefined);
        assert.equal(m.ctx.users.byRfid('C1')?.name, 'Carla', 'a user made through the API stays');
    });

    it('a deploy that changes an item in the editor wins for that item only', async () => {
        let m = await start(editorDef(), 'editor-pw');
        await m.json('cmd=set_params', {
            body: { max_total_current: 25000, reserve_current: 3000 },
            password: 'editor-pw',
        });
        await m.json('cmd=set_device', {
            body: { devices: [{ dev_id: 'E1', max_charging_cur: 10000 }] },
            password: 'editor-pw',
        });
        await m.json('cmd=set_user', {
            body: { id: '1001', name: 'Anna (API)', rfids: [{ id: 'A1' }, { id: 'A2' }] },
            password: 'editor-pw',
        });
        await m.json('cmd=set_user', {
            body: { id: '1002', name: 'Ben (API)', rfids: [{ id: 'B1' }] },
            password: 'editor-pw',
        });
        await m.json('cmd=change_admin_pwd&old_pwd=editor-pw&new_pwd=api-pw');

        // Same editor: the API's values stay.
        m = await restart(m, editorDef(), 'editor-pw');
        assert.deepEqual(m.report.replaced, []);
        assert.equal(m.site.params.max_total_current, 25000);
        assert.equal((await m.call('cmd=get_users', { password: 'editor-pw' })).status, 401);
        assert.equal((await m.call('cmd=get_users', { password: 'api-pw' })).status, 200);

        // The editor changes max_total_current: that parameter only.
        m = await restart(
            m,
            editorDef((d) => (d.max_total_current = '30000')),
            'editor-pw',
        );
        assert.deepEqual(m.report.replaced, ['param:max_total_current']);
        assert.equal(m.site.params.max_total_current, 30000);
        assert.equal(m.site.params.reserve_current, 3000);
        assert.equal(maxCurrent(m, 'E1'), 10000);
        assert.equal(m.ctx.users.get('1001')?.name, 'Anna (API)');
        assert.equal((await m.call('cmd=get_users', { password: 'api-pw' })).status, 200);

        // The editor changes Anna: Anna only.
        const users = structuredClone(EDITOR_USERS);
        users[0]!.name = 'Anna (editor)';
        const def = editorDef((d) => {
            d.max_total_current = '30000';
            d.userTable = JSON.stringify(users);
        });
        m = await restart(m, def, 'editor-pw');
        assert.deepEqual(m.report.replaced, ['user:1001']);
        assert.equal(m.ctx.users.get('1001')?.name, 'Anna (editor)');
        assert.equal(m.ctx.users.byRfid('A2'), undefined);
        assert.equal(m.ctx.users.get('1002')?.name, 'Ben (API)');
        assert.equal(m.site.params.reserve_current, 3000);

        // The editor changes the admin password: the password only.
        m = await restart(m, def, 'editor-pw-2');
        assert.deepEqual(m.report.replaced, ['admin_password']);
        assert.equal((await m.call('cmd=get_users', { password: 'api-pw' })).status, 401);
        assert.equal((await m.call('cmd=get_users', { password: 'editor-pw-2' })).status, 200);
        assert.equal(m.ctx.users.get('1002')?.name, 'Ben (API)');
        assert.equal(maxCurrent(m, 'E1'), 10000);
        assert.equal(m.site.params.reserve_current, 3000);

        // An API change after that wins again until the editor changes the item.
        await m.json('cmd=set_params', {
            body: { max_total_current: 20000 },
            password: 'editor-pw-2',
        });
        m = await restart(m, def, 'editor-pw-2');
        assert.equal(m.site.params.max_total_current, 20000);
    });

    it('a password removed through the API stays removed until the editor sets another', async () => {
        let m = await start(editorDef(), 'pw1');
        await m.json('cmd=change_admin_pwd&old_pwd=pw1&new_pwd=');
        m = await restart(m, editorDef(), 'pw1');
        assert.equal(m.ctx.auth.password.isSet, false);
        m = await restart(m, editorDef(), 'pw2');
        assert.deepEqual(m.report.replaced, ['admin_password']);
        assert.equal((await m.call('cmd=get_users', { password: 'pw2' })).status, 200);
        assert.equal((await m.call('cmd=get_users')).status, 401);
        m = await restart(m, editorDef(), 'pw2');
        assert.deepEqual(m.report.replaced, []);
        await m.ctx.auth.password.ready(); // the editor password is hashed in the background
        assert.equal(m.ctx.auth.password.isSet, true);
        assert.equal((await m.call('cmd=get_users')).status, 401);
        assert.equal((await m.call('cmd=get_users', { password: 'pw2' })).status, 200);
    });

    it('the password baseline is a salted scrypt hash, and a changed editor password is seen', async () => {
        const first = await reconcileAdminPassword('editor-pw', emptyDocument(), TEST_SCRYPT);
        const baseline = first.storeDoc.editorBaseline.admin_password!;
        assert.match(baseline, /^scrypt\$/);
        assert.ok(!baseline.includes('editor-pw'));
        const again = await reconcileAdminPassword('editor-pw', first.storeDoc, TEST_SCRYPT);
        assert.equal(again.changed, false);
        const doc = structuredClone(first.storeDoc);
        doc.adminPasswordHash = 'scrypt$1024$8$1$AAAA$AAAA';
        const changed = await reconcileAdminPassword('other', doc, TEST_SCRYPT);
        assert.equal(changed.replaced, true);
        assert.equal(changed.storeDoc.adminPasswordHash, null);
        const removed = await reconcileAdminPassword('', doc, TEST_SCRYPT);
        assert.equal(removed.replaced, true);
        assert.equal(removed.storeDoc.editorBaseline.admin_password, '-');
    });

    it('energy totals never go down: not across a restart, not when a wallbox counts again from 0', async () => {
        let m = await start();
        const total = async () =>
            ((await m.json('cmd=get_dev_info')) as { devices: Record<string, unknown>[] }).devices
                .filter((d) => d.dev_id === 'E1' || d.dev_id === 'E2')
                .map((d) => d.total_energy);
        const push = async (devId: string, wh: number) => {
            await m.json(`cmd=set_ajax_evse&dev_id=${devId}&state=1&total_energy=${wh}`);
            m.persistence.counters.update(); // what every control cycle does
        };
        await push('E1', 5000);
        await push('E2', 7000);
        await push('E1', 5200);
        assert.deepEqual(await total(), [5200, 7000]);
        await push('E1', 100); // the wallbox restarted its counter
        assert.deepEqual(await total(), [5200, 7000]);
        await push('E1', 150);
        assert.deepEqual(await total(), [5250, 7000]);

        m = await restart(m);
        assert.deepEqual(await total(), [5250, 7000], 'the stored totals before any reading');
        await push('E1', 20); // E1 counts from 0 again after the restart
        await push('E2', 7010); // E2 kept its counter
        assert.deepEqual(await total(), [5250, 7010]);
        await push('E1', 30);
        assert.deepEqual(await total(), [5260, 7010]);
        assert.equal(await m.json('cmd=soft_meter&dev_id=E1'), 5260);

        // An explicit soft_meter value may be lower, and is kept.
        assert.equal(await m.json('cmd=soft_meter&dev_id=E1&val=1000'), 5260);
        m = await restart(m);
        await push('E1', 40);
        assert.deepEqual(await total(), [1010, 7010]);
    });

    it('budget usage survives a restart: a used-up budget stays used up', async () => {
        let m = await start();
        const session = {
            key: 'user:1001',
            budget: { unit: 'kwh', amount: 1, reset: 'once' },
        } as const;
        const now = Date.now();
        m.ctx.budgets.charge(session, now + 60_000, 1200, 60);
        assert.ok(m.ctx.budgets.exhausted(session, now + 60_000));
        m.persistence.saveCounters(); // what the periodic save and close do
        m = await restart(m);
        assert.ok(
            m.ctx.budgets.exhausted(session, now + 60_000),
            'still used up after the restart',
        );
        assert.deepEqual(m.ctx.budgets.snapshot(), {
            'user:1001': { usedWh: 1200, usedS: 60, periodStart: 0 },
        });
    });

    it('a stored change that no longer fits the editor config is reported and kept', async () => {
        let m = await start();
        await m.json('cmd=set_device', {
            body: { devices: [{ dev_id: 'E5', dev_type: 'evse_ajax', attach: 'M1' }] },
        });
        // The editor drops M1, which the API device E5 is attached to.
        const def = editorDef((d) => {
            d.devices = JSON.stringify([
                { dev_type: 'evse_ajax', dev_id: 'E1', name: 'Carport', max_charging_cur: 16000 },
            ]);
        });
        m = await restart(m, def);
        assert.equal(m.report.problems.length, 1);
        assert.match(m.report.problems[0]!, /^device:E5: the device cannot be applied: .*M1/);
        assert.equal(m.site.device('E5'), undefined);
        assert.equal(m.store.document.devices.E5?.added, true, 'still in the store');
    });

    it('a write that fails is reported and answered 503; the change stays in force and is written later', async () => {
        const problems: Error[] = [];
        const users = parseUsersText(userTableText(editorDef()));
        const site = new Site(parseManagerConfig(editorDef()));
        const ctx = new CnfContext(site, { scrypt: TEST_SCRYPT, users: new MemoryUsers(users) });
        const sub = join(dir, 'sub');
        mkdirSync(sub);
        const store = await ManagerStore.open(join(sub, 'mgr1.json'), { debounceMs: 5 });
        const { persistence } = await ManagerPersistence.start(
            ctx,
            store,
            editorStateOf(editorDef(), ''),
            { onProblem: (err) => problems.push(err), scrypt: TEST_SCRYPT },
        );
        await store.flush();
        rmSync(sub, { recursive: true });
        writeFileSync(sub, 'a file where the folder was');
        const r = await handleCnf(
            { method: 'GET', query: 'cmd=set_params&reserve_current=4000', remoteAddress: '::1' },
            ctx,
        );
        assert.equal(r.status, 503);
        assert.equal(JSON.parse(r.body), 'change not saved: the store cannot be written (ENOTDIR)');
        assert.equal(problems.length, 1, 'one failed write, reported once');
        assert.match(problems[0]!.message, /could not be written/);
        assert.equal(site.params.reserve_current, 4000, 'in effect');
        assert.equal(store.pending, true);
        // what is not kept does not wait for the store, and is answered as usual
        for (const query of [
            'cmd=set_params&reserve_current=4100&tmp=1',
            'cmd=set_cm_vars&name=X&val=1&tmp=1',
            'cmd=get_params',
        ]) {
            const ok = await handleCnf({ method: 'GET', query, remoteAddress: '::1' }, ctx);
            assert.equal(ok.status, 200, `${query}: ${ok.body}`);
        }
        assert.equal(problems.length, 1, 'no write was tried for them');
        await handleCnf(
            {
                method: 'GET',
                query: 'cmd=set_params&reserve_current=4000&tmp=1',
                remoteAddress: '::1',
            },
            ctx,
        );
        rmSync(sub);
        mkdirSync(sub);
        // the next change's write takes the earlier one along
        const next = await handleCnf(
            { method: 'GET', query: 'cmd=set_params&title=Home', remoteAddress: '::1' },
            ctx,
        );
        assert.equal(next.status, 200, next.body);
        const saved = JSON.parse(readFileSync(join(sub, 'mgr1.json'), 'utf8')) as StoreDocument;
        assert.equal(saved.params.reserve_current, 4000);
        assert.equal(saved.params.title, 'Home');
        await persistence.close();
        await site.stop();
    });

    it('a change is answered only once it is on disk', async () => {
        const m = await start();
        const r = await m.call('cmd=set_cm_vars&name=AVAIL&val=42');
        assert.equal(r.status, 200);
        // read at the moment of the answer, without close or flush
        const saved = JSON.parse(readFileSync(file, 'utf8')) as StoreDocument;
        assert.deepEqual(saved.variables, [{ name: 'AVAIL', expr: 42 }]);
        assert.equal(m.store.pending, false);
        await m.json('cmd=set_user', { body: { id: '1001', name: 'Anna B.' } });
        const users = (JSON.parse(readFileSync(file, 'utf8')) as StoreDocument).users;
        assert.equal(users.find((u) => u.id === '1001')?.name, 'Anna B.');
    });

    it('energy totals and budget usage ride along with a change; alone they wait for the periodic save', async () => {
        const m = await start();
        await m.store.flush(); // the write after the start (baselines) is done
        await m.json('cmd=set_ajax_evse&dev_id=E1&state=1&total_energy=5000');
        m.persistence.counters.update(); // what every control cycle does
        const session = { key: 'user:1001', budget: { unit: 'kwh', amount: 10, reset: 'once' } };
        m.ctx.budgets.charge(session as never, Date.now() + 60_000, 700, 60);
        await new Promise((resolve) => setTimeout(resolve, 50)); // beyond the debounce time
        const before = existsSync(file)
            ? (JSON.parse(readFileSync(file, 'utf8')) as StoreDocument)
            : undefined;
        assert.equal(before?.counters.E1?.total_energy, undefined, 'no write of its own');
        await m.json('cmd=set_params&title=Home');
        const saved = JSON.parse(readFileSync(file, 'utf8')) as StoreDocument;
        assert.equal(saved.counters.E1?.total_energy, 5000);
        assert.equal(saved.budgets?.['user:1001']?.usedWh, 700);
    });

    it('without a store the answer is not delayed', async () => {
        const site = new Site(parseManagerConfig(editorDef()));
        const ctx = new CnfContext(site, { scrypt: TEST_SCRYPT });
        try {
            let turned = false;
            setImmediate(() => (turned = true));
            const r = await handleCnf(
                { method: 'GET', query: 'cmd=set_cm_vars&name=A&val=1', remoteAddress: '::1' },
                ctx,
            );
            assert.equal(r.status, 200);
            assert.equal(turned, false, 'answered before the event loop turned: no I/O waited for');
        } finally {
            await site.stop();
        }
    });

    it('a change after the store is closed is answered as not saved', async () => {
        const m = await start();
        await m.persistence.close();
        const r = await m.call('cmd=set_params&reserve_current=2500');
        assert.equal(r.status, 503);
        assert.equal(JSON.parse(r.body), 'change not saved: the manager is stopping');
        const tmp = await m.call('cmd=set_params&reserve_current=2600&tmp=1');
        assert.equal(tmp.status, 200, 'a tmp=1 change is not to be saved anyway');
        assert.equal((await m.call('cmd=get_params')).status, 200, 'reads are answered');
        const saved = JSON.parse(readFileSync(file, 'utf8')) as StoreDocument;
        assert.equal(saved.params.reserve_current, undefined);
    });

    it('keeps the vendor device fields, string user ids and partial user changes across a restart', async () => {
        let m = await start();
        const big = '98765432109876543210';
        const fields = {
            battery_save_threshold: 3000,
            enable_snooze: false,
            enable_wakeup: false,
            fixed_rfid: '04A1B2',
            ocpp_gateway_client_id: 'CP42',
            soft_meter: 7120572,
            users: ['0042', big],
        };
        await m.json('cmd=set_params', { body: { devices: [{ dev_id: 'E1', ...fields }] } });
        // A partial change of an editor user keeps its cards and wallboxes.
        await m.json('cmd=set_user', { body: { id: '1001', name: 'Anna (API)' } });
        m = await restart(m);
        const e1 = m.site.device('E1') as unknown as Record<string, unknown>;
        for (const [k, v] of Object.entries(fields)) assert.deepEqual(e1[k], v, k);
        const anna = m.ctx.users.get('1001')!;
        assert.equal(anna.name, 'Anna (API)');
        assert.deepEqual(anna.dev_ids, ['E1']);
        assert.deepEqual(
            anna.rfids.map((r) => r.id),
            ['A1'],
        );
        assert.equal(
            m.site.manager.site.evses.find((e) => e.id === 'E1')!.batterySaveThreshold,
            3000,
        );
    });

    it('store files are named after the manager node id, made safe for a file name', () => {
        assert.equal(
            storeFileFor('/u', 'a1b2c3d4e5f60718'),
            join('/u', 'evcm-charging-manager', 'a1b2c3d4e5f60718.json'),
        );
        const odd = storeFileFor('/u', '../../etc/passwd');
        assert.match(odd, /evcm-charging-manager\/id-[0-9a-f]{24}\.json$/);
        assert.notEqual(odd, storeFileFor('/u', '../../etc/passwd2'));
    });
});
