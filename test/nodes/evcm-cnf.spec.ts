// Conformance of the evcm-cnf node in the real Node-RED runtime: every example of the source
// document, the requests real clients send, and get_dev_info against real firmware captures.
import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import supertest from 'supertest';
import type { PowerBrainSim } from '../../lib/sim/powerbrain-sim';
import cnfNode = require('../../nodes/evcm-cnf');
import managerNode = require('../../nodes/evcm-manager');
import { ADMIN_PASSWORD, fixture, startPowerBrain, testDevices } from '../support/cnf';

helper.init(require.resolve('node-red'));

type App = Parameters<typeof supertest>[0];
type Json = Record<string, unknown>;

interface SeedModbus {
    url: string;
    response?: unknown;
    type?: string;
    status?: number;
    admin?: boolean;
}
interface ClientRequest {
    client: string;
    method: 'GET' | 'POST';
    url: string;
    contentType?: string;
    body?: string;
    response?: unknown;
    keys?: string[];
    array?: boolean;
    public?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function loadSite(sim: PowerBrainSim, path = '/cnf'): Promise<App> {
    let app: App | undefined;
    const capture = (RED: { httpNode: App }) => {
        app = RED.httpNode;
    };
    const flow = [
        {
            id: 'm1',
            type: 'evcm-manager',
            title: 'Test site',
            max_total_current: '32000',
            cycle_ms: '200',
            devices: JSON.stringify(testDevices(sim)),
        },
        { id: 'c1', type: 'evcm-cnf', manager: 'm1', path },
    ];
    await helper.load(
        [capture, managerNode, cnfNode] as unknown as Parameters<typeof helper.load>[0],
        flow as unknown as Parameters<typeof helper.load>[1],
        { m1: { adminPassword: ADMIN_PASSWORD } } as never,
    );
    assert.ok(app, 'RED.httpNode captured');
    // Wait until the Modbus devices have been read once.
    for (let i = 0; i < 50; i++) {
        const info = (await supertest(app).get(`${path}?cmd=get_dev_info`)).body as {
            devices: Json[];
        };
        const e2 = info.devices.find((d) => d.dev_id === 'E2');
        if (String(e2?.model).includes('fcf5')) return app;
        await sleep(100);
    }
    throw new Error('the Power Brain was not read');
}

describe('evcm-cnf node (conformance)', function () {
    this.timeout(30_000);
    let sim: PowerBrainSim;
    let app: App;

    before(async () => {
        sim = await startPowerBrain();
    });
    after(async () => {
        await sim.close();
    });
    beforeEach(async () => {
        app = await loadSite(sim);
    });
    afterEach(() => helper.unload());

    const admin = (t: supertest.Test) => t.auth('admin', ADMIN_PASSWORD);

    it('answers every cmd=modbus example of the source document', async () => {
        // meter2 as in the vendor's sample: slave id 41
        await admin(supertest(app).get('/cnf?cmd=modbus&device=meter2&write=8040&value=41')).expect(
            200,
            '"ok"',
        );
        const seed = fixture<{ modbus: SeedModbus[] }>('seed-examples.json');
        for (const ex of seed.modbus) {
            const req = supertest(app).get(ex.url);
            const res = await (ex.admin ? admin(req) : req);
            assert.equal(res.status, ex.status ?? 200, `${ex.url}: ${res.text}`);
            assert.match(String(res.headers['content-type']), /application\/json/);
            if (ex.type) assert.equal(typeof res.body, ex.type, ex.url);
            else if (ex.url.endsWith('read=all')) {
                const want = JSON.parse(ex.response as string) as Json;
                const got = JSON.parse(res.text) as Json;
                // same keys in the same order on the wire
                const keys = (text: string) =>
                    [...text.matchAll(/"(\d+[dqs]?)":/g)].map((m) => m[1]);
                assert.deepEqual(keys(res.text), keys(ex.response as string));
                for (const [k, v] of Object.entries(want)) {
                    // 8003 device id and 8056 S0 level are per unit / input state in the simulator
                    if (k === '8016s' || k === '8003' || k === '8056') continue;
                    assert.deepEqual(got[k], v, `read=all ${k}`);
                }
            } else if (Array.isArray(ex.response)) {
                const got = res.body as number[];
                assert.equal(got.length, ex.response.length);
                ex.response.forEach((w, i) => i !== 1 && assert.equal(got[i], w, `word ${i}`));
            } else assert.deepEqual(res.body, ex.response, ex.url);
        }
        // The written words are there.
        const words = await supertest(app).get('/cnf?cmd=modbus&device=evse&read=8044&count=4');
        assert.deepEqual(words.body, [7, 230, 230, 230]);
    });

    it('answers every general request of the source document', async () => {
        const get = (url: string) => admin(supertest(app).get(url));
        const post = (url: string, body: string) =>
            admin(supertest(app).post(url)).set('Content-Type', 'application/json').send(body);
        const info = (await supertest(app).get('/cnf?cmd=get_dev_info').expect(200)).body as Json;
        assert.ok(Array.isArray(info.devices) && info.params);

        // users: the document's user object
        await post(
            '/cnf?cmd=set_user',
            JSON.stringify({
                id: '2167520770',
                name: 'wusel',
                display: true,
                dev_ids: ['E1'],
                rfids: [
                    { id: '4711', name: 'TeSt', ac_auth: true, ac_ovch: false, used_phases: 7 },
                ],
                charging_rules: [],
            }),
        ).expect(200, '"ok"');
        const users = (await get('/cnf?cmd=get_users').expect(200)).body as Json[];
        assert.equal(users[0]!.name, 'wusel');
        // a user may read and change itself with its id, without the admin password
        const self = await supertest(app).get('/cnf?cmd=get_user&id=2167520770').expect(200);
        assert.equal((self.body as Json).name, 'wusel');
        await supertest(app)
            .post('/cnf?cmd=set_user')
            .send({ id: '2167520770', name: 'wusel2', dev_ids: ['E1'], rfids: [{ id: '4711' }] })
            .expect(200, '"ok"');
        const newId = (await get('/cnf?cmd=get_new_user_id').expect(200)).body as string;
        assert.match(newId, /^\d+$/);

        // RFID and override without admin credentials, with the user's RFID
        await supertest(app).get('/cnf?cmd=enter_rfid&rfid=4711&dev_id=E1').expect(200, '"ok"');
        await supertest(app)
            .get('/cnf?cmd=override_device&dev_id=E1&flags=C&mamps=8000&rfid=4711')
            .expect(200, '"ok"');
        let e1 = await device('E1');
        assert.equal(e1.overrides, 1);
        assert.equal(e1.ov_cur, 8000);
        await supertest(app)
            .get('/cnf?cmd=override_device&dev_id=E1&flags=c&rfid=4711')
            .expect(200);
        // E needs admin
        await supertest(app)
            .get('/cnf?cmd=override_device&dev_id=E1&flags=E&rfid=4711')
            .expect(401);
        await get('/cnf?cmd=override_device&dev_id=E1&flags=E').expect(200, '"ok"');
        e1 = await device('E1');
        assert.equal(e1.overrides, 2);

        // soft meter: returns the old reading
        const before = (await supertest(app).get('/cnf?cmd=soft_meter&dev_id=E1').expect(200))
            .body as number;
        assert.equal(typeof before, 'number');
        const old = (await get('/cnf?cmd=soft_meter&dev_id=E1&val=5000000').expect(200)).body;
        assert.ok(Math.abs((old as number) - before) < 100);
        const now = (await supertest(app).get('/cnf?cmd=soft_meter&dev_id=E1').expect(200)).body;
        assert.ok((now as number) >= 5_000_000 && (now as number) < 5_000_100);

        // HTTP input meter: POST as in the curl example, and the GET form
        await post(
            '/cnf?cmd=set_ajax_meter&dev_id=M3',
            '{ "model": "TestModell", "import_wh": 12345, "export_wh": 23456, "voltage": [231, 232, 233], "current": [10001, 10002, 10003] }',
        ).expect(200, '"ok"');
        let m3 = await device('M3');
        assert.equal(m3.model, 'TestModell');
        assert.equal(m3.import, 12345);
        assert.equal(m3.current_l2, 10002);
        assert.equal(m3.voltage_l3, 233);
        await get(
            '/cnf?cmd=set_ajax_meter&dev_id=M3&model=TestModell&import_wh=12346&export_wh=23456&voltage=231,232,233&current=10001,10002,10004',
        ).expect(200, '"ok"');
        m3 = await device('M3');
        assert.equal(m3.import, 12346);
        assert.equal(m3.current_l3, 10004);

        // HTTP input wallbox: POST and GET; the answer is the control object
        const control = (
            await post(
                '/cnf?cmd=set_ajax_evse&dev_id=E3',
                '{"state": 2, "max_charging_current": 16000, "current": [0,0,0], "total_energy": 1000, "model": "TestModell", "rfid": "4711"}',
            ).expect(200)
        ).body as Json;
        assert.deepEqual(Object.keys(control).sort(), [
            'charging_current',
            'charging_enabled',
            'device_enabled',
            'paused',
        ]);
        assert.equal(typeof control.device_enabled, 'boolean');
        assert.equal(typeof control.charging_current, 'number');
        await get(
            '/cnf?cmd=set_ajax_evse&dev_id=E3&model=TestModell&state=3&max_charging_current=16000&current=6000,6000,6000&total_energy=1001&rfid=4711',
        ).expect(200);
        assert.equal((await device('E3')).state, 3);

        // parameters
        const params = (await supertest(app).get('/cnf?cmd=get_params').expect(200)).body as Json;
        assert.equal(typeof params.dev_meta, 'object');
        assert.equal(params.max_total_current, 32000);
        await post(
            '/cnf?cmd=set_params',
            JSON.stringify({ devices: [{ dev_id: 'E1', group: 0, phase_rotation: 0, prio: 3 }] }),
        ).expect(200, '"ok"');
        assert.equal((await device('E1')).prio, 3);
        // a get_params answer posted back unchanged is accepted
        await post('/cnf?cmd=set_params', JSON.stringify(params)).expect(200, '"ok"');

        // housekeeping
        await get('/cnf?cmd=accept_license&acc=1&allow_usage_stats=0').expect(200, '"ok"');
        await get('/cnf?cmd=set_diag_logging&enable=1').expect(200, '"ok"');
        await get('/cnf?cmd=set_diag_logging&enable=0').expect(200, '"ok"');
        await get('/cnf?cmd=reset_device&dev_id=E3').expect(200, '"ok"');
        await get('/cnf?cmd=del_device&dev_id=E3').expect(200, '"ok"');
        await supertest(app)
            .get('/cnf?cmd=get_dev_info')
            .expect((res) => {
                assert.ok(
                    !(res.body as { devices: Json[] }).devices.some((d) => d.dev_id === 'E3'),
                );
            });
        await get('/cnf?cmd=del_device&dev_id=E3').expect(404, '"unknown device"');

        // admin password: old and new as in the document
        await get(`/cnf?cmd=change_admin_pwd&old_pwd=${ADMIN_PASSWORD}&new_pwd=alt`).expect(200);
        await supertest(app)
            .get('/cnf?cmd=change_admin_pwd&old_pwd=alt&new_pwd=neu')
            .expect(200, '"ok"');
        await supertest(app)
            .get('/cnf?cmd=get_users')
            .auth('admin', ADMIN_PASSWORD)
            .expect(401)
            .expect('WWW-Authenticate', /Basic/);
        await supertest(app).get('/cnf?cmd=get_users').auth('admin', 'neu').expect(200);
    });

    async function device(id: string): Promise<Json> {
        const res = await supertest(app).get('/cnf?cmd=get_dev_info').expect(200);
        const d = (res.body as { devices: Json[] }).devices.find((x) => x.dev_id === id);
        assert.ok(d, id);
        return d;
    }

    it('replays the requests real clients send', async () => {
        const { requests } = fixture<{ requests: ClientRequest[] }>('client-requests.json');
        for (const r of requests) {
            let t = r.method === 'POST' ? supertest(app).post(r.url) : supertest(app).get(r.url);
            if (!r.public) t = admin(t);
            if (r.body !== undefined)
                t = t.set('Content-Type', r.contentType ?? 'text/plain').send(r.body);
            const res = await t;
            assert.equal(res.status, 200, `${r.client}: ${res.status} ${res.text}`);
            if (r.response !== undefined)
                assert.deepEqual(JSON.parse(res.text), r.response, r.client);
            const body = JSON.parse(res.text) as Json;
            for (const k of r.keys ?? []) assert.ok(k in body, `${r.client}: key ${k}`);
            if (r.array) assert.ok(Array.isArray(body), r.client);
        }
        const vars = (await admin(supertest(app).get('/cnf?cmd=get_cm_vars')).expect(200)).body as {
            vars: { name: string; val: number | null }[];
        };
        assert.deepEqual(
            vars.vars.map((v) => v.name),
            ['var1', 'var2', 'tarif', 'PWR'],
        );
        assert.equal(vars.vars.find((v) => v.name === 'PWR')?.val, 80);
        const info = (await supertest(app).get('/cnf?cmd=get_params')).body as Json;
        assert.equal(info.max_total_cur_prc, 50);
        assert.equal(info.reserve_current, 1000);
        // the wallbox got the two writes of the start command
        assert.equal(sim.state.currentLimit, 10_000);
    });

    it('serves get_dev_info with the key sets and types of real firmware, old and new names', async () => {
        const ours = (await supertest(app).get('/cnf?cmd=get_dev_info').expect(200)).body as {
            params: Json;
            devices: Json[];
        } & Json;
        const evses = ours.devices.filter((d) => d.is_evse === true);
        const meters = ours.devices.filter((d) => d.is_evse === false);
        for (const name of [
            '1.6.1042_get_dev_info.json',
            '1.12.0_get_dev_info.json',
            '1.14.0_get_dev_info.json',
            '1.14.0_get_dev_info_single_wb.json',
        ]) {
            const real = fixture<{ response: { params: Json; devices: Json[] } & Json }>(
                name,
            ).response;
            for (const k of Object.keys(real)) assert.ok(k in ours, `${name}: top-level ${k}`);
            for (const [k, v] of Object.entries(real.params)) {
                if (k === 'ocpp_srv_password') continue; // a secret: never sent
                assert.ok(k in ours.params, `${name}: params.${k}`);
                assert.equal(typeof ours.params[k], typeof v, `${name}: params.${k} type`);
            }
            for (const d of real.devices) {
                for (const mine of d.is_evse ? evses : meters) {
                    for (const [k, v] of Object.entries(d)) {
                        if (k === 'attach') continue; // only sent when a meter is attached
                        assert.ok(k in mine, `${name}: ${String(mine.dev_id)}.${k}`);
                        assert.equal(
                            typeof mine[k],
                            typeof v,
                            `${name}: ${String(mine.dev_id)}.${k}`,
                        );
                    }
                }
            }
        }
        // new-name clients (≥ 1.20): the document's example and what integrations read
        for (const k of [
            'max_total_current',
            'reserve_current',
            'overdraft_cur',
            'max_total_evse_current',
            'cons_evse_power',
            'avail_evse_power',
        ]) {
            assert.equal(typeof ours.params[k], 'number', k);
        }
        for (const d of evses) {
            for (const k of [
                'power_w',
                'max_charging_cur',
                'cur_charging_power',
                'overrides',
                'ov_cur',
            ]) {
                assert.equal(typeof d[k], 'number', `${String(d.dev_id)}.${k}`);
            }
        }
        for (const d of meters) assert.equal(typeof d.power_w, 'number');
        for (const d of ours.devices) {
            assert.equal(typeof d.is_evse, 'boolean');
            assert.match(String(d.dev_id), /^[EM]\d+$/);
            assert.ok(d.device_enabled === 0 || d.device_enabled === 1);
        }
        // Home Assistant's version check: float(major.minor) ≥ 1.2 selects power_w
        const [major, minor] = String(ours.params.version).split('.');
        assert.ok(Number(`${major}.${minor}`) >= 1.2);
        assert.ok(Number(minor) >= 20);
    });

    it('serves get_params with the key sets and types of real firmware', async () => {
        const ours = (await supertest(app).get('/cnf?cmd=get_params').expect(200)).body as Json;
        for (const name of [
            '1.6.1042_get_params.json',
            '1.12.0_get_params.json',
            '1.14.0_get_params.json',
        ]) {
            const real = fixture<{ response: Json }>(name).response;
            for (const [k, v] of Object.entries(real)) {
                if (k === 'ocpp_srv_password') continue; // a secret: never sent
                assert.ok(k in ours, `${name}: ${k}`);
                assert.equal(typeof ours[k], typeof v, `${name}: ${k} type`);
            }
        }
        // py-powerbrain needs max_total_evse_power and dev_meta
        assert.equal(typeof ours.max_total_evse_power, 'number');
        assert.equal((ours.dev_meta as Json).evse_powerbrain, 'cFos Power Brain');
    });

    it('checks admin credentials on GET /ui/en/sim.htm', async () => {
        await supertest(app).get('/ui/en/sim.htm').expect(401).expect('WWW-Authenticate', /Basic/);
        await supertest(app).get('/ui/en/sim.htm').auth('admin', 'wrong').expect(401);
        await admin(supertest(app).get('/ui/en/sim.htm')).expect(200);
    });

    it('reads POST bodies as JSON whatever the Content-Type and refuses oversized ones', async () => {
        await admin(supertest(app).post('/cnf?cmd=set_params'))
            .set('Content-Type', 'text/plain')
            .send('{"title":"Plain"}')
            .expect(200, '"ok"');
        await admin(supertest(app).post('/cnf?cmd=set_params'))
            .set('Content-Type', 'application/json')
            .send('{"title":')
            .expect(400, '"body is not valid JSON"');
        await admin(supertest(app).post('/cnf?cmd=set_params'))
            .set('Content-Type', 'text/plain')
            .send('{"title":"' + 'x'.repeat(70_000) + '"}')
            .expect(413);
        assert.equal(
            ((await supertest(app).get('/cnf?cmd=get_params')).body as Json).title,
            'Plain',
        );
        await supertest(app).get('/cnf?cmd=nope').expect(404, '"unknown command"');
        await supertest(app).get('/cnf').expect(400, '"missing cmd"');
    });

    it('reports a bad path or a missing manager and serves nothing', async () => {
        await helper.unload();
        let bad: App | undefined;
        const capture = (RED: { httpNode: App }) => {
            bad = RED.httpNode;
        };
        await helper.load(
            [capture, managerNode, cnfNode] as unknown as Parameters<typeof helper.load>[0],
            [
                { id: 'c2', type: 'evcm-cnf', manager: 'm1', path: 'no-slash' },
                { id: 'c3', type: 'evcm-cnf', manager: 'nope', path: '/x' },
            ] as unknown as Parameters<typeof helper.load>[1],
        );
        for (const id of ['c2', 'c3']) {
            const n = helper.getNode(id) as unknown as { error: { called: boolean } };
            assert.ok(n.error.called, `${id} reports an error`);
        }
        await supertest(bad!).get('/x?cmd=get_dev_info').expect(404);
    });

    it('removes its routes when the flow stops', async () => {
        await supertest(app).get('/cnf?cmd=get_dev_types').expect(200);
        await helper.unload();
        await supertest(app).get('/cnf?cmd=get_dev_types').expect(404);
        await supertest(app).get('/ui/en/sim.htm').expect(404);
        app = await loadSite(sim, '/api/cnf');
        await supertest(app).get('/api/cnf?cmd=get_dev_types').expect(200);
    });
});
