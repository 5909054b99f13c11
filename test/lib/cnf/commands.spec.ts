// /cnf commands against a Site without Node-RED: overrides reach the allocator and end when the
// car leaves, changes are all or nothing, register views, get_dev_info caching.
import assert from 'node:assert/strict';
import type { SimEvse } from '../../../lib/devices/sim';
import { freePort } from '../../../lib/sim/powerbrain-sim';
import { ADMIN, ADMIN_PASSWORD, directSite, fingerprint, type DirectSite } from '../../support/cnf';

type Json = Record<string, unknown>;

describe('/cnf commands', function () {
    this.timeout(20_000);
    let d: DirectSite;
    beforeEach(async () => {
        d = directSite(null, { adminPassword: ADMIN_PASSWORD });
        await d.ctx.auth.password.ready();
        await d.site.manager.runCycle();
    });
    afterEach(() => d.stop());

    const admin = (query: string, body?: string) =>
        d.call({ method: body ? 'POST' : 'GET', query, body, authorization: ADMIN });
    const e1 = async (): Promise<Json> => {
        const info = JSON.parse((await d.call({ query: 'cmd=get_dev_info' })).body) as {
            devices: Json[];
        };
        return info.devices.find((x) => x.dev_id === 'E1')!;
    };

    it('override E switches the wallbox charging rules off, e back on', async () => {
        const ruleLimit = () => d.site.manager.lastCycle!.snapshot.limits?.get('E1');
        // A rule that never matches: rules exist, none applies, so the wallbox gets 0.
        await d.site.setDevice({
            dev_id: 'E1',
            charging_rules: [{ mode: 0, current: 16000, days: 0 }],
        });
        await d.site.manager.runCycle();
        assert.equal(ruleLimit(), 0);
        assert.equal(d.site.manager.lastCycle!.result.setpoints.get('E1')!.current, 0);
        assert.equal((await admin('cmd=override_device&dev_id=E1&flags=E')).status, 200);
        await d.site.manager.runCycle();
        assert.equal(ruleLimit(), undefined, 'rules off: no limit from them');
        assert.equal((await e1()).overrides, 2);
        assert.equal((await admin('cmd=override_device&dev_id=E1&flags=e')).status, 200);
        await d.site.manager.runCycle();
        assert.equal(ruleLimit(), 0, 'rules on again');
    });

    it('override C stops charging, mamps limits it, both end when the car is unplugged', async () => {
        await d.site.manager.runCycle();
        assert.ok(d.site.manager.lastCycle!.result.setpoints.get('E1')!.current > 0);
        // down at once: first the limit, then no charging at all
        assert.equal((await admin('cmd=override_device&dev_id=E1&mamps=7000')).status, 200);
        await d.site.manager.runCycle();
        const sp = d.site.manager.lastCycle!.result.setpoints.get('E1')!.current;
        assert.ok(sp > 0 && sp <= 7000, String(sp));
        assert.equal((await e1()).ov_cur, 7000);
        assert.equal((await admin('cmd=override_device&dev_id=E1&flags=C')).status, 200);
        await d.site.manager.runCycle();
        assert.equal(d.site.manager.lastCycle!.result.setpoints.get('E1')!.current, 0);
        assert.equal((await e1()).overrides, 1);
        (d.site.manager.driver('E1') as SimEvse).unplug();
        await d.site.manager.runCycle();
        await d.site.manager.runCycle();
        assert.equal(d.ctx.overrides.size, 0, 'override ends with the session');
        assert.equal((await e1()).overrides, 0);
    });

    it('a charging plan limits the wallbox while it is active', async () => {
        const set = await admin(
            'cmd=set_cplan&dev_id=E1&tmp=1',
            '{"cplan":[{"dc":false,"st":0,"dr":1440,"lm":7000}]}',
        );
        assert.equal(set.status, 200, set.body);
        await d.site.manager.runCycle();
        const sp = d.site.manager.lastCycle!.result.setpoints.get('E1')!.current;
        assert.ok(sp > 0 && sp <= 7000, String(sp));
        const got = JSON.parse((await admin('cmd=get_cplan&dev_id=E1')).body) as {
            cplan: unknown[];
        };
        assert.deepEqual(got.cplan, [{ dc: false, st: 0, dr: 1440, lm: 7000 }]);
        assert.equal((await admin('cmd=set_cplan&dev_id=$G', '{"cplan":[]}')).status, 400);
        assert.equal(
            (await admin('cmd=set_cplan&dev_id=E1', '{"cplan":[{"st":2000,"dr":1,"lm":1}]}'))
                .status,
            400,
        );
        assert.equal((await admin('cmd=set_cplan&dev_id=E1', '{"cplan":[]}')).status, 200);
        assert.equal(d.ctx.plans.size, 0);
    });

    it('a plan with req_energy and departure: set, read with its decision, checked', async () => {
        const departure = Math.floor(Date.now() / 1000) + 3 * 3600;
        const set = await admin(
            'cmd=set_cplan&dev_id=E1&tmp=1',
            JSON.stringify({ cplan: [], req_energy: 10_000.4, departure }),
        );
        assert.equal(set.status, 200, set.body);
        await d.site.manager.runCycle();
        const got = JSON.parse((await admin('cmd=get_cplan&dev_id=E1')).body) as Json;
        // No prices known: the plan charges normally and says so.
        assert.deepEqual(
            { ...got, plan_windows: undefined },
            {
                cplan: [],
                req_energy: 10_000,
                departure,
                charged_energy: 0,
                plan_state: 'no-prices',
                plan_windows: undefined,
            },
        );
        assert.ok(d.site.manager.lastCycle!.result.setpoints.get('E1')!.current > 0);
        const refused = async (body: unknown, re: RegExp) => {
            const r = await admin('cmd=set_cplan&dev_id=E1', JSON.stringify(body));
            assert.equal(r.status, 400, JSON.stringify(body));
            assert.match(JSON.parse(r.body) as string, re);
        };
        await refused({ cplan: [], req_energy: 5000 }, /req_energy and departure go together/);
        await refused(
            { cplan: [], req_energy: 0, departure },
            /body\.req_energy: must be at least 1 Wh/,
        );
        await refused(
            { cplan: [], req_energy: 5000, departure: departure - 4 * 3600 },
            /body\.departure: must be in the future/,
        );
        await refused(
            { cplan: [], req_energy: 5000, departure: departure + 8 * 86_400 },
            /at most 7 days ahead/,
        );
        await refused({ cplan: [], req_energy: 5000, departure: 'soon' }, /body\.departure/);
        assert.equal(d.ctx.plans.get('E1')?.target?.energyWh, 10_000, 'refusals change nothing');
        // The vendor's object without a target ends it.
        assert.equal((await admin('cmd=set_cplan&dev_id=E1', '{"cplan":[]}')).status, 200);
        assert.equal(d.ctx.plans.size, 0);
    });

    it('set_params with devices is all or nothing', async () => {
        const before = fingerprint(d);
        const r = await admin(
            'cmd=set_params',
            JSON.stringify({ title: 'changed', devices: [{ dev_id: 'E1', max_charging_cur: 1 }] }),
        );
        assert.equal(r.status, 400);
        assert.match(r.body, /max_charging_cur/);
        assert.equal(fingerprint(d), before);
        const badAddress = await admin(
            'cmd=set_device',
            JSON.stringify({
                devices: [
                    { dev_id: 'E1', prio: 5 },
                    { dev_id: 'M8', dev_type: 'meter_sdm630', address: 'no such host:99999' },
                ],
            }),
        );
        assert.equal(badAddress.status, 400);
        assert.match(badAddress.body, /M8\.address/);
        assert.equal(fingerprint(d), before);
        const bad = await admin('cmd=set_params', JSON.stringify({ title: 'x', nope: 1 }));
        assert.equal(bad.status, 400);
        assert.match(bad.body, /nope/);
        assert.equal(fingerprint(d), before);
        const ok = await admin(
            'cmd=set_params',
            JSON.stringify({
                title: 'changed',
                devices: [{ dev_id: 'E1', max_charging_cur: 10000 }],
            }),
        );
        assert.equal(ok.status, 200, ok.body);
        assert.equal(d.site.params.title, 'changed');
        assert.equal((await e1()).max_charging_cur, 10000);
    });

    it('set_cm_vars: GET and POST forms, tmp and clear; a bad batch changes nothing', async () => {
        assert.equal((await admin('cmd=set_cm_vars&name=a&val=1')).status, 200);
        assert.equal(
            (await admin('cmd=set_cm_vars&tmp=1', '{"vars":[{"name":"b","expr":"CM.a*2"}]}'))
                .status,
            200,
        );
        const bad = await admin(
            'cmd=set_cm_vars',
            '{"vars":[{"name":"c","expr":3},{"name":"no way","expr":1}]}',
        );
        assert.equal(bad.status, 400);
        assert.match(bad.body, /no way/);
        const list = JSON.parse((await admin('cmd=get_cm_vars')).body) as {
            vars: { name: string }[];
        };
        assert.deepEqual(
            list.vars.map((v) => v.name),
            ['a', 'b'],
        );
        assert.deepEqual(
            d.ctx.variables.persistent().map((v) => v.name),
            ['a'],
            'tmp is not saved',
        );
        assert.equal((await admin('cmd=set_cm_vars&clear=1')).status, 200);
        assert.deepEqual(
            (JSON.parse((await admin('cmd=get_cm_vars')).body) as { vars: [] }).vars,
            [],
        );
    });

    it("set_cm_vars sets the vendor's _set_price and _set_price_level; other _ names are refused", async () => {
        assert.equal(
            (await admin('cmd=set_cm_vars&tmp=1&name=_set_price_level&val=2')).status,
            200,
        );
        const r = await admin(
            'cmd=set_cm_vars&tmp=1',
            JSON.stringify({ vars: [{ name: '_set_price', expr: '0.1 + 0.25' }] }),
        );
        assert.equal(r.status, 200, r.body);
        await d.site.manager.runCycle();
        assert.deepEqual(d.site.priceNow(), { price: 0.35, level: 2, source: 'variables' });
        assert.equal((await admin('cmd=set_cm_vars&name=_price&val=1')).status, 400);
    });

    it('set_cm_vars refuses names formulas cannot read as a variable (NaN, Infinity)', async () => {
        for (const name of ['NaN', 'Infinity', 'inf', 'nan']) {
            const get = await admin(`cmd=set_cm_vars&name=${name}&val=1`);
            assert.equal(get.status, 400, name);
            assert.match(
                JSON.parse(get.body) as string,
                new RegExp(`invalid variable name '${name}'`),
            );
            const post = await admin(
                'cmd=set_cm_vars',
                JSON.stringify({ vars: [{ name, expr: 2 }] }),
            );
            assert.equal(post.status, 400, name);
        }
        assert.equal(d.ctx.variables.size, 0, 'nothing was set');
        // A formula cannot read such a word either.
        const formula = await admin('cmd=set_cm_vars&name=x&val=CM.NaN%2B1');
        assert.equal(formula.status, 400);
        assert.match(JSON.parse(formula.body) as string, /'NaN' is not a name/);
    });

    it('serves register views of devices without Modbus and refuses bad registers', async () => {
        const read = async (q: string) => d.call({ query: `cmd=modbus&${q}` });
        const cp = await read('device=E1&read=8092');
        assert.equal(cp.status, 200);
        assert.ok([1, 2].includes(JSON.parse(cp.body) as number));
        assert.equal(JSON.parse((await read('device=evse&read=8000d')).body), -821755904);
        assert.equal(JSON.parse((await read('device=M4&read=8062d')).body) > 0, true, 'grid power');
        assert.deepEqual(
            JSON.parse((await read('device=E1&read=8048')).body),
            'bad modbus register',
        );
        assert.equal((await read('device=E1&read=8093d')).status, 400);
        assert.equal((await read('device=E9&read=8092')).status, 404);
        assert.equal((await read('device=meter7&read=8092')).status, 404);
        assert.equal((await read('device=E1&read=abc')).status, 400);
        const managed = await admin('cmd=modbus&device=E1&write=8093&value=100');
        assert.equal(managed.status, 400);
        assert.match(managed.body, /override_device/);
        const ro = await admin('cmd=modbus&device=E1&write=8092&value=1');
        assert.equal(ro.status, 400);
        assert.match(ro.body, /read-only/);
        assert.equal((await admin('cmd=modbus&device=E1&write=8044&value=70000')).status, 400);
    });

    it('answers unknown commands, devices and users in the vendor style', async () => {
        const r = async (q: string, auth = false) =>
            d.call({ query: q, ...(auth ? { authorization: ADMIN } : {}) });
        assert.deepEqual(
            [(await r('cmd=nope')).status, (await r('cmd=nope')).body],
            [404, '"unknown command"'],
        );
        assert.equal((await r('cmd=soft_meter&dev_id=E7')).body, '"unknown device"');
        assert.equal((await r('cmd=get_user&id=1234', true)).body, '"unknown user"');
        assert.equal(
            (await r('cmd=del_device&dev_id=M4&dev_id=M3', true)).body,
            '"repeated parameter dev_id"',
        );
        const typed = await r('cmd=set_ajax_meter&dev_id=E1&power_w=1', true);
        assert.equal(typed.status, 400);
        assert.match(typed.body, /not an HTTP input meter/);
    });

    it('answers 502 for a Modbus device that cannot be reached, and shows com_err', async () => {
        const port = await freePort();
        const add = await admin(
            'cmd=set_device',
            JSON.stringify({
                devices: [
                    {
                        dev_id: 'M9',
                        dev_type: 'meter_powerbrain',
                        address: `127.0.0.1:${port}`,
                        id: 2,
                    },
                ],
            }),
        );
        assert.equal(add.status, 200, add.body);
        const r = await d.call({ query: 'cmd=modbus&device=M9&read=8002' });
        assert.ok(r.status === 502 || r.status === 504, `${r.status} ${r.body}`);
        assert.match(r.body, /^"device not (reachable|responding)"$/);
        await d.site.manager.runCycle();
        const info = JSON.parse((await d.call({ query: 'cmd=get_dev_info' })).body) as {
            devices: Json[];
        };
        const m9 = info.devices.find((x) => x.dev_id === 'M9')!;
        assert.equal(m9.com_err, true);
        assert.equal(m9.model, 'failed to connect');
        assert.ok((m9.com_errors as number) >= 1);
    });

    it('reuses one get_dev_info answer until something changes', async () => {
        const a = (await d.call({ query: 'cmd=get_dev_info' })).body;
        assert.equal((await d.call({ query: 'cmd=get_dev_info' })).body, a);
        await admin('cmd=override_device&dev_id=E1&flags=E');
        const b = (await d.call({ query: 'cmd=get_dev_info' })).body;
        assert.notEqual(b, a);
    });
});
