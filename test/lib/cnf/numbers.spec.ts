// Numbers in queries as clients send them: Home Assistant works in floats ("8000.0"). Every numeric
// parameter takes integral-valued decimals; currents (mA) and energies (Wh) with a fraction are
// rounded to the whole unit; counts, register values and flags must still be whole.
import assert from 'node:assert/strict';
import { adminOk, adminSite, jsonCall, type DirectSite } from '../../support/cnf';

describe('/cnf numbers with decimals', function () {
    this.timeout(20_000);
    let d: DirectSite;
    beforeEach(async () => {
        d = await adminSite();
    });
    afterEach(() => d.stop());

    const admin = (query: string, body?: unknown) => jsonCall(d, query, body);
    const ok = (query: string, body?: unknown) => adminOk(d, query, body);
    const refused = async (query: string, message: RegExp) => {
        const r = await admin(query);
        assert.equal(r.status, 400, `${query}: ${JSON.stringify(r.value)}`);
        assert.match(r.value as string, message, query);
    };

    it('override_device mamps as Home Assistant sends it', async () => {
        await ok('cmd=override_device&dev_id=E1&mamps=8000.0');
        assert.equal(d.ctx.overrides.get('E1')?.current, 8000);
        await ok('cmd=override_device&dev_id=E1&mamps=9000.6');
        assert.equal(d.ctx.overrides.get('E1')?.current, 9001, 'rounded to whole mA');
        await ok('cmd=override_device&dev_id=E1&mamps=1.6e4');
        assert.equal(d.ctx.overrides.get('E1')?.current, 16000);
        await ok('cmd=override_device&dev_id=E1&mamps=0.0');
        assert.equal(d.ctx.overrides.get('E1'), undefined, '0 clears the limit');
        for (const bad of ['abc', 'NaN', 'Infinity', '0x10', '', '1e400', '8000,5']) {
            await refused(
                `cmd=override_device&dev_id=E1&mamps=${encodeURIComponent(bad)}`,
                /^mamps: must be a number$/,
            );
        }
        await refused('cmd=override_device&dev_id=E1&mamps=90000.0', /mamps: must be at most/);
    });

    it('modbus count, value and values', async () => {
        assert.equal(
            ((await ok('cmd=modbus&device=E1&read=8044&count=2.0')) as number[]).length,
            2,
        );
        await refused('cmd=modbus&device=E1&read=8044&count=2.5', /count: must be a whole number/);
        await ok('cmd=modbus&device=E1&write=8044&value=3.0');
        await ok(
            'cmd=modbus&device=E1&write=8045&values=' + encodeURIComponent('[230.0, 231,2.3e2]'),
        );
        assert.deepEqual(await ok('cmd=modbus&device=E1&read=8044&count=4'), [3, 230, 231, 230]);
        await refused('cmd=modbus&device=E1&write=8044&value=7.5', /^bad modbus value$/);
        await refused('cmd=modbus&device=E1&write=8044&values=%5B1.5%5D', /whole numbers/);
    });

    it('soft_meter, set_cm_vars, flags and the GET form of set_params', async () => {
        await ok('cmd=soft_meter&dev_id=E3&val=1234.0');
        assert.equal(await ok('cmd=soft_meter&dev_id=E3&val=2000.4'), 1234);
        assert.equal(await ok('cmd=soft_meter&dev_id=E3'), 2000, 'rounded to whole Wh');
        await ok('cmd=set_cm_vars&name=PWR&val=80.0');
        assert.deepEqual((d.ctx.variables.list().vars[0] as { expr: unknown }).expr, 80);
        await ok('cmd=accept_license&acc=1.0&allow_usage_stats=0.0');
        assert.deepEqual(d.ctx.license, { accepted: true, usageStats: false });
        await refused('cmd=set_diag_logging&enable=0.5', /enable: must be 0 or 1/);
        await ok('cmd=set_params&reserve_current=2500.0&min_pause_time=120.0&tmp=1.0');
        assert.equal(d.site.params.reserve_current, 2500);
        assert.equal(d.site.params.min_pause_time, 120);
        await ok('cmd=set_params&reserve_current=2500.5');
        assert.equal(d.site.params.reserve_current, 2501, 'mA rounded');
        const seconds = await admin('cmd=set_params&min_pause_time=120.5');
        assert.equal(seconds.status, 400, 'a time in seconds must be whole');
        assert.equal(d.site.params.min_pause_time, 120);
    });

    it('bodies: set_ajax_evse in its GET form, set_cplan and device currents', async () => {
        await ok('cmd=set_ajax_evse&dev_id=E3&state=2.0&current=1000.0,2000.4,3.0e3');
        assert.deepEqual(d.site.manager.deviceState('E3').sample.reading, {
            state: 2,
            currents: [1000, 2000, 3000],
        });
        await ok('cmd=set_cplan&dev_id=E1', { cplan: [{ st: 60, dr: 120, lm: 8000.4 }] });
        assert.equal(d.ctx.plans.get('E1')?.cplan[0]?.lm, 8000);
        await ok('cmd=set_device', {
            dev_id: 'E1',
            max_charging_cur: 10000.5,
            min_charging_cur: '6000.0',
        });
        const e1 = d.site.device('E1') as { max_charging_cur: unknown; min_charging_cur: unknown };
        assert.deepEqual([e1.min_charging_cur, e1.max_charging_cur], [6000, 10001]);
    });
});
