// User device definitions through /cnf: set_params takes `device_defs` (checked whole, errors
// name the field, nothing changes on an error), get_params and get_dev_types show them, the store
// keeps them, and a device-table entry of such a type drives a simulated wallbox over Modbus TCP.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EvseReading } from '../../../lib/core/types';
import { CnfContext } from '../../../lib/cnf/context';
import { handleCnf, type CnfRequest } from '../../../lib/cnf/handle';
import { editorStateOf, ManagerPersistence } from '../../../lib/cnf/persistence';
import { BusPool } from '../../../lib/modbus/pool';
import { parseManagerConfig } from '../../../lib/site/editor';
import { Site } from '../../../lib/site/site';
import { at, type DeviceFixture, RegisterSim, stringWords } from '../../../lib/sim/register-sim';
import { ManagerStore } from '../../../lib/store/store';
import { TEST_SCRYPT } from '../../support/cnf';

/** A wallbox we do not ship, as a user would describe it. */
const ACME = {
    type: 'evse_user_acme',
    kind: 'evse',
    title: 'Acme Box 11',
    status: { state: { address: 10 } },
    states: [
        { when: { state: [1] }, state: 1 },
        { when: { state: [2] }, state: 2 },
        { when: { state: [3] }, state: 3 },
    ],
    readings: {
        currentsA: [
            { address: 20, scale: 0.1 },
            { address: 21, scale: 0.1 },
            { address: 22, scale: 0.1 },
        ],
        model: { address: 40, type: 'string', words: 4 },
        serial: { address: 44, type: 'string', words: 4 },
    },
    control: { current: { address: 30, scale: 0.1, max: 16 } },
};

const ACME_BOX: DeviceFixture = {
    type: 'evse_user_acme',
    title: 'Acme Box 11',
    source: 'made up: a user-defined wallbox',
    unit: 1,
    holding: {
        10: 3,
        ...at(20, [100, 101, 99]),
        30: 0,
        31: 0,
        ...at(40, stringWords('AB11', 4)),
        ...at(44, stringWords('A-77', 4)),
    },
    writable: [30, 31],
    states: { charging: { expect: { state: 3, currentsA: [10, 10.1, 9.9] } } },
};

interface Manager {
    site: Site;
    call(query: string, body?: unknown): Promise<{ status: number; body: string }>;
    stop(): Promise<void>;
}

const EDITOR = {
    id: 'mgr-defs',
    max_total_current: '32000',
    reserve_current: '0',
    cycle_ms: '200',
    devices: JSON.stringify([{ dev_type: 'meter_ajax', dev_id: 'M1', name: 'Grid', role: 0 }]),
};

async function startManager(file: string, pool: BusPool): Promise<Manager> {
    const site = new Site({ ...parseManagerConfig(EDITOR), pool });
    const ctx = new CnfContext(site, { scrypt: TEST_SCRYPT });
    const store = await ManagerStore.open(file, { debounceMs: 5 });
    const { persistence, report } = await ManagerPersistence.start(
        ctx,
        store,
        editorStateOf(EDITOR, ''),
        { onProblem: (e) => assert.fail(e), scrypt: TEST_SCRYPT, counterSaveMs: 3_600_000 },
    );
    assert.deepEqual(report.problems, []);
    return {
        site,
        call: async (query, body) => {
            const r = await handleCnf(
                {
                    method: body === undefined ? 'GET' : 'POST',
                    query,
                    body: body === undefined ? undefined : JSON.stringify(body),
                    remoteAddress: '127.0.0.1',
                } as CnfRequest,
                ctx,
            );
            return { status: r.status, body: r.body };
        },
        async stop() {
            await site.stop();
            await persistence.close();
        },
    };
}

describe('/cnf: user device definitions (device_defs)', function () {
    this.timeout(20_000);
    let dir: string;
    let pool: BusPool;
    let sim: RegisterSim;
    let port: number;
    const running: Manager[] = [];
    const start = async (): Promise<Manager> => {
        const m = await startManager(join(dir, 'mgr.json'), pool);
        running.push(m);
        return m;
    };

    beforeEach(async () => {
        dir = mkdtempSync(join(tmpdir(), 'evcm-defs-'));
        pool = new BusPool({ timeoutMs: 300 });
        sim = new RegisterSim(ACME_BOX);
        port = await sim.listen();
    });
    afterEach(async () => {
        for (const m of running.splice(0)) await m.stop();
        await pool.close();
        await sim.close();
        rmSync(dir, { recursive: true, force: true });
    });

    it('set_params takes a definition; a device of its type charges a simulated wallbox; a restart keeps both', async () => {
        let m = await start();
        const ok = async (query: string, body?: unknown) => {
            const r = await m.call(query, body);
            assert.equal(r.status, 200, r.body);
            return JSON.parse(r.body) as Record<string, unknown>;
        };
        await ok('cmd=set_params', { device_defs: [ACME] });
        const params = await ok('cmd=get_params');
        assert.deepEqual(params.device_defs, [ACME], 'shown as written');
        assert.equal((params.dev_meta as Record<string, string>).evse_user_acme, 'Acme Box 11');
        assert.equal((await ok('cmd=get_dev_types')).evse_user_acme, 'Acme Box 11');

        await ok('cmd=set_params', {
            devices: [
                {
                    dev_type: 'evse_user_acme',
                    dev_id: 'E1',
                    address: `127.0.0.1:${port}`,
                    max_charging_cur: 12000,
                },
            ],
        });
        await m.site.manager.runCycle();
        await m.site.manager.runCycle();
        const written = sim.writes.filter((w) => w.address === 30).at(-1);
        assert.ok(written, 'the current register was written');
        assert.ok(written.values[0]! >= 60 && written.values[0]! <= 120, String(written.values));
        const info = await ok('cmd=get_dev_info');
        const e1 = (info.devices as Record<string, unknown>[]).find((d) => d.dev_id === 'E1')!;
        assert.equal(e1.dev_type, 'evse_user_acme');
        assert.equal(e1.state, 3);
        assert.equal(e1.model, 'AB11,,,A-77', 'model and serial from the device');
        assert.deepEqual([e1.current_l1, e1.current_l2, e1.current_l3], [10000, 10100, 9900]);

        // a restart: the definition and the device come back from the store
        await m.stop();
        running.splice(0);
        m = await start();
        assert.deepEqual(m.site.params.device_defs, [ACME]);
        assert.equal(m.site.device('E1')?.dev_type, 'evse_user_acme');
        const before = sim.requests;
        await m.site.manager.runCycle();
        assert.ok(sim.requests > before, 'the restored device is read');
        assert.equal(
            (m.site.manager.deviceState('E1').sample.reading as EvseReading | undefined)?.state,
            3,
        );
    });

    it('a bad definition is refused naming the field, and nothing changes', async () => {
        const m = await start();
        const bad = { ...ACME, control: { current: { address: -3 } } };
        const r = await m.call('cmd=set_params', { device_defs: [bad], title: 'changed' });
        assert.equal(r.status, 400);
        assert.match(r.body, /device_defs\[0\]\.control\.current\.address/);
        assert.deepEqual(m.site.params.device_defs, []);
        assert.equal(m.site.params.title, '');
        const named = await m.call('cmd=set_params', {
            device_defs: [{ ...ACME, type: 'evse_acme' }],
        });
        assert.equal(named.status, 400);
        assert.match(named.body, /device_defs\[0\]\.type: a user definition's type starts with/);
        // a device of an unknown type, and a definition taken away while a device uses it
        const unknown = await m.call('cmd=set_params', {
            devices: [{ dev_type: 'evse_user_acme', dev_id: 'E1', address: `127.0.0.1:${port}` }],
        });
        assert.equal(unknown.status, 400);
        assert.match(JSON.parse(unknown.body) as string, /unknown dev_type "evse_user_acme"/);
        assert.equal(
            (
                await m.call('cmd=set_params', {
                    device_defs: [ACME],
                    devices: [
                        { dev_type: 'evse_user_acme', dev_id: 'E1', address: `127.0.0.1:${port}` },
                    ],
                })
            ).status,
            200,
        );
        const away = await m.call('cmd=set_params', { device_defs: [] });
        assert.equal(away.status, 400);
        assert.match(JSON.parse(away.body) as string, /unknown dev_type "evse_user_acme"/);
        assert.deepEqual(m.site.params.device_defs, [ACME]);
    });

    it('a changed definition gives its devices a new driver', async () => {
        const m = await start();
        const post = (body: unknown) => m.call('cmd=set_params', body);
        await post({
            device_defs: [ACME],
            devices: [{ dev_type: 'evse_user_acme', dev_id: 'E1', address: `127.0.0.1:${port}` }],
        });
        await m.site.manager.runCycle();
        assert.ok(sim.writes.some((w) => w.address === 30));
        sim.writes.length = 0;
        const moved = { ...ACME, control: { current: { address: 31, scale: 0.1, max: 16 } } };
        assert.equal((await post({ device_defs: [moved] })).status, 200);
        await m.site.manager.runCycle();
        assert.deepEqual(
            [...new Set(sim.writes.map((w) => w.address))],
            [31],
            'writes go where the new definition says',
        );
    });
});
