// The edges of set_params and set_device: a device object copied from get_dev_info is taken (its
// state is ignored), the vendor's documented device fields are kept and shown, user ids are
// strings, and overdraft_cur can be set to 0.
import assert from 'node:assert/strict';
import { CnfContext } from '../../../lib/cnf/context';
import { handleCnf } from '../../../lib/cnf/handle';
import { Site } from '../../../lib/site/site';
import {
    ADMIN,
    ADMIN_PASSWORD,
    adminOk,
    adminSite,
    jsonCall,
    TEST_SCRYPT,
    type DirectSite,
} from '../../support/cnf';

type Json = Record<string, unknown>;

describe('device objects in set_params and set_device', function () {
    this.timeout(20_000);
    let d: DirectSite;
    beforeEach(async () => {
        d = await adminSite();
    });
    afterEach(() => d.stop());

    const call = (query: string, body?: unknown) => jsonCall(d, query, body);
    const ok = (query: string, body?: unknown) => adminOk(d, query, body);
    const info = async (id: string): Promise<Json> => {
        const all = (await ok('cmd=get_dev_info')) as { devices: Json[] };
        return all.devices.find((x) => x.dev_id === id)!;
    };

    it('takes an object copied from get_dev_info, ignoring what is state', async () => {
        await ok('cmd=set_device', {
            dev_id: 'E5',
            dev_type: 'evse_group',
            max_charging_cur: 20000,
        });
        for (const [id, change] of [
            ['E1', { prio: 3, label: 'Visitors' }],
            ['M3', { role: 1, name: 'Heat pump' }],
            ['E5', { max_charging_cur: 25000 }],
        ] as const) {
            const copy = { ...(await info(id)), ...change };
            assert.ok('com_err' in copy && 'model' in copy);
            await ok('cmd=set_device', { devices: [copy] });
            await ok('cmd=set_params', { devices: [copy] });
            const entry = d.site.device(id) as unknown as Json;
            for (const [k, v] of Object.entries(change)) assert.equal(entry[k], v, `${id}.${k}`);
            assert.ok(!('com_err' in entry) && !('model' in entry), 'no state in the settings');
        }
        // A meter has no used_phases setting; an EVSE has, and keeps it.
        assert.ok(!('used_phases' in (d.site.device('M3') as unknown as Json)));
        await ok('cmd=set_device', { ...(await info('E1')), used_phases: 1 });
        assert.equal((d.site.device('E1') as unknown as Json).used_phases, 1);
        // A key that is neither state nor a setting is still an error.
        const bad = await call('cmd=set_device', { ...(await info('E1')), bogus: 1 });
        assert.equal(bad.status, 400);
        assert.match(bad.value as string, /bogus/);
    });

    it('keeps and shows the vendor’s documented device fields', async () => {
        const fields = {
            battery_save_threshold: 3000,
            enable_snooze: false,
            enable_wakeup: false,
            fixed_rfid: '04A1B2C3',
            ocpp_gateway_client_id: 'CP42',
        };
        // The vendor's set_params example, with its device fields.
        await ok('cmd=set_params', { devices: [{ dev_id: 'E1', ...fields, soft_meter: 7120572 }] });
        const e1 = await info('E1');
        for (const [k, v] of Object.entries(fields)) assert.deepEqual(e1[k], v, k);
        assert.equal(e1.soft_meter, 7120572);
        const listed = ((await ok('cmd=get_devices')) as Json[]).find((x) => x.dev_id === 'E1')!;
        for (const [k, v] of Object.entries(fields)) assert.deepEqual(listed[k], v, k);
        // Defaults are shown for a wallbox that never set them.
        const e3 = await info('E3');
        assert.deepEqual(
            [e3.battery_save_threshold, e3.enable_snooze, e3.enable_wakeup, e3.fixed_rfid],
            [0, true, true, ''],
        );
        // The allocator gets the threshold.
        assert.equal(
            d.site.manager.site.evses.find((e) => e.id === 'E1')!.batterySaveThreshold,
            3000,
        );
        const bad = await call('cmd=set_device', { dev_id: 'E1', battery_save_threshold: -1 });
        assert.equal(bad.status, 400);
    });

    it('a new soft_meter sets the energy counter; the same value sent back changes nothing', async () => {
        await ok('cmd=set_ajax_evse&dev_id=E3', { state: 2, total_energy: 1000 });
        await ok('cmd=set_device', { dev_id: 'E3', soft_meter: 5000 });
        assert.equal((await info('E3')).total_energy, 5000);
        await ok('cmd=set_ajax_evse&dev_id=E3', { state: 3, total_energy: 1500 });
        assert.equal((await info('E3')).total_energy, 5500);
        await ok('cmd=set_device', { ...(await info('E3')), name: 'renamed' });
        assert.equal((await info('E3')).total_energy, 5500, 'a copied object keeps the count');
        await ok('cmd=set_device', { dev_id: 'E3', soft_meter: 100 });
        assert.equal((await info('E3')).total_energy, 100);
    });

    it('keeps user ids of a wallbox as strings', async () => {
        const big = '98765432109876543210';
        await ok('cmd=set_device', { dev_id: 'E3', users: ['1170223812', '0042', big] });
        const listed = ((await ok('cmd=get_devices')) as Json[]).find((x) => x.dev_id === 'E3')!;
        assert.deepEqual(listed.users, ['1170223812', '0042', big]);
        // An exact number (older configs) becomes its digits; an inexact one is refused.
        await ok('cmd=set_device', { dev_id: 'E3', users: [1170223812] });
        assert.deepEqual((d.site.device('E3') as unknown as Json).users, ['1170223812']);
        const r = await d.call({
            method: 'POST',
            query: 'cmd=set_device',
            body: '{"dev_id":"E3","users":[98765432109876543210]}',
            authorization: ADMIN,
        });
        assert.equal(r.status, 400);
        assert.match(JSON.parse(r.body) as string, /user ids above 2\^53 must be strings/);
        // The user with the long id is the one allowed there.
        await ok('cmd=set_device', { dev_id: 'E3', users: [big] });
        await ok('cmd=set_user', { id: big, name: 'Long', rfids: [{ id: '7777' }] });
        d.site.push('E3', { state: 2 });
        await d.site.manager.runCycle();
        assert.equal((await info('E3')).needs_auth, true);
        await ok('cmd=enter_rfid&rfid=7777&dev_id=E3');
        assert.equal((await info('E3')).needs_auth, false);
    });
});

describe('set_params overdraft_cur', function () {
    this.timeout(20_000);

    it('resets the largest overdraw to 0; the penalty stays; other values are refused', async () => {
        const site = new Site({
            params: { max_total_current: 16000, reserve_current: 0, cycle_ms: 200 },
            devices: [
                { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
                { dev_type: 'evse_ajax', dev_id: 'E1' },
            ],
        });
        const ctx = new CnfContext(site, { adminPassword: ADMIN_PASSWORD, scrypt: TEST_SCRYPT });
        const call = async (query: string, body?: unknown) => {
            const r = await handleCnf(
                {
                    method: body === undefined ? 'GET' : 'POST',
                    query,
                    body: body === undefined ? undefined : JSON.stringify(body),
                    remoteAddress: '192.0.2.1',
                    authorization: ADMIN,
                },
                ctx,
            );
            return { status: r.status, value: JSON.parse(r.body) as unknown };
        };
        const params = async () => (await call('cmd=get_params')).value as Json;
        // Each reading its own time: the allocator takes a reading it has seen once only.
        let takenAt = Date.now();
        const grid = (l1: number) =>
            site.push('M1', {
                powerW: (l1 * 230) / 1000,
                currents: [l1, 0, 0],
                takenAt: ++takenAt,
            });
        try {
            // 20 A on L1 through a 16 A connection: 4 A overdraw.
            grid(20000);
            await site.manager.runCycle();
            assert.equal((await params()).overdraft_cur, 4000);
            // get_params posted back unchanged is fine and changes nothing
            const echo = await call('cmd=set_params', { ...(await params()), title: 'x' });
            assert.equal(echo.status, 200, JSON.stringify(echo.value));
            assert.equal((await params()).overdraft_cur, 4000);
            const wrong = await call('cmd=set_params', { overdraft_cur: 100 });
            assert.deepEqual(
                [wrong.status, wrong.value],
                [400, 'overdraft_cur can only be set to 0'],
            );
            assert.equal((await params()).overdraft_cur, 4000);

            const reset = await call('cmd=set_params', { overdraft_cur: 0 });
            assert.deepEqual([reset.status, reset.value], [200, 'ok']);
            const after = await params();
            assert.deepEqual([after.overdraft_cur, after.overdraft], [0, 0]);
            const devInfo = (await call('cmd=get_dev_info')).value as { params: Json };
            assert.equal(devInfo.params.overdraft_cur, 0);
            // The fuse's cool-down is not cut short.
            grid(0);
            await site.manager.runCycle();
            assert.equal(site.manager.lastCycle!.result.site.penalty, 4000);
            assert.equal((await params()).overdraft_cur, 0);
            // The GET form and the old name (W) too.
            grid(18000);
            await site.manager.runCycle();
            assert.equal((await params()).overdraft_cur, 2000);
            assert.equal((await call('cmd=set_params&overdraft=0')).status, 200);
            assert.equal((await params()).overdraft_cur, 0);
        } finally {
            await site.stop();
        }
    });
});
