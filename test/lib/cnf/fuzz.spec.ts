// Fuzz: thousands of random and malformed /cnf requests. No crash, no 5xx other than a device
// that does not answer, no change from any rejected request, and every error names the problem.
import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import supertest from 'supertest';
import type { CnfRequest, CnfResponse } from '../../../lib/cnf/handle';
import { COMMANDS } from '../../../lib/cnf/commands';
import type { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import cnfNode = require('../../../nodes/evcm-cnf');
import managerNode = require('../../../nodes/evcm-manager');
import {
    ADMIN,
    ADMIN_PASSWORD,
    basic,
    directSite,
    fingerprint,
    startPowerBrain,
    testDevices,
    type DirectSite,
} from '../../support/cnf';

helper.init(require.resolve('node-red'));

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const NAMES = [
    'cmd',
    'dev_id',
    'device',
    'read',
    'write',
    'value',
    'values',
    'count',
    'rfid',
    'flags',
    'mamps',
    'val',
    'name',
    'clear',
    'tmp',
    'id',
    'acc',
    'allow_usage_stats',
    'enable',
    'old_pwd',
    'new_pwd',
    'state',
    'current',
    'voltage',
    'power_w',
    'power_va',
    'import_wh',
    'model',
    'is_va',
    'title',
    'max_total_current',
    'reserve_current',
    'lb_enabled',
    'x',
    '',
    'dev_id[]',
    '__proto__',
    'constructor',
    'ünï',
    '🚗',
];
const VALUES = [
    '',
    '0',
    '1',
    '-1',
    '7',
    '8000',
    '16000',
    '32000',
    '65535',
    '65536',
    '-32769',
    '99999999999999999999',
    '1e309',
    'NaN',
    'Infinity',
    '0x10',
    '1.5',
    '8000.0',
    '1e3',
    ' 42 ',
    'true',
    'null',
    'E1',
    'E2',
    'E3',
    'E9',
    'M1',
    'M3',
    'M4',
    'e1',
    'X1',
    'evse',
    'meter1',
    'meter2',
    'EVSE',
    'all',
    '8002',
    '8044',
    '8044d',
    '8050q',
    '8016s',
    '8062d',
    '8093',
    '8094',
    '99999',
    '8044x',
    '[7,230,230,230 ]',
    '[1,2',
    '[]',
    '[a]',
    '1,2,3',
    '231,232,233',
    'C',
    'cCeEuU',
    'CE',
    'Z',
    '4711',
    '2167520770',
    'ünïcødé',
    '🚗⚡',
    '%',
    '"',
    "'",
    '<script>',
    'a'.repeat(5000),
    '\u0000',
    'get_dev_info',
    'modbus',
    'set_params',
];
const CMDS = [
    ...Object.keys(COMMANDS),
    'bogus',
    '',
    'GET_DEV_INFO',
    'modbus ',
    '🚗',
    'toString',
    '__proto__',
];
const BODIES: (() => string | undefined)[] = [
    () => undefined,
    () => '',
    () => 'not json',
    () => '{"title":',
    () => 'null',
    () => '[]',
    () => '[1,2,3]',
    () => '"ok"',
    () => '{}',
    () => '{"title":"fuzz"}',
    () => '{"max_total_current":-5}',
    () => '{"max_total_current":1e309}',
    () => '{"max_total_current":"32000"}',
    () => '{"devices":[{"dev_id":"E1","prio":"high"}]}',
    () =>
        '{"devices":[{"dev_id":"E9","dev_type":"evse_sim"},{"dev_id":"E1","max_charging_cur":1}]}',
    () => '{"devices":{"dev_id":"E1"}}',
    () => '{"vars":[{"name":"a b","expr":1}]}',
    () => '{"vars":[{"name":"ok1","expr":"1+"}]}',
    () => '{"vars":[{"name":"ok2","expr":2}]}',
    () => '{"state":9}',
    () => '{"state":2,"current":[1,2]}',
    () => '{"power_w":"lots"}',
    () => '{"id":"12345","name":"x","rfids":[{"id":"!"}]}',
    () => '{"__proto__":{"polluted":1}}',
    () => '{"title":"' + 'y'.repeat(70_000) + '"}',
    () => '\u00ff\u00fe{}',
    () => '['.repeat(20_000) + ']'.repeat(20_000),
    () => '{"title":"x","devices":[' + '{"a":'.repeat(40) + '1' + '}'.repeat(40) + ']}',
    () => '{"vars":[{"name":"NaN","expr":1}]}',
    () => '{"id":"2167520770","dev_ids":["E1","E2","E3"]}',
];

function randomRequest(r: () => number, remote: string): CnfRequest {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const parts: string[] = [];
    if (r() < 0.95) parts.push(`cmd=${encodeURIComponent(pick(CMDS))}`);
    const n = Math.floor(r() * 6);
    for (let i = 0; i < n; i++) {
        const name = r() < 0.1 ? 'cmd' : pick(NAMES);
        const value =
            r() < 0.05 ? String(Math.floor(r() * 2 ** 53) * (r() < 0.5 ? -1 : 1)) : pick(VALUES);
        parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
    }
    if (r() < 0.05) parts.push('%E0%A4%A'); // broken percent-encoding
    const auth = r();
    return {
        method: pick(['GET', 'GET', 'POST', 'POST', 'PUT']),
        query: parts.join('&'),
        body: pick(BODIES)(),
        remoteAddress: r() < 0.8 ? remote : pick(['127.0.0.1', '10.1.2.3', '::1', '']),
        ...(auth < 0.5
            ? { authorization: ADMIN }
            : auth < 0.6
              ? { authorization: basic('admin', pick(VALUES)) }
              : auth < 0.65
                ? {
                      authorization: pick([
                          'Basic',
                          'Basic !!!',
                          'Bearer x',
                          'Basic ' + 'A'.repeat(300),
                      ]),
                  }
                : {}),
    };
}

function checkResponse(req: CnfRequest, res: CnfResponse): void {
    const where = `${req.method} ${String(req.query).slice(0, 200)}`;
    assert.ok(
        (res.status >= 200 && res.status < 500) || res.status === 502 || res.status === 504,
        `${where} → ${res.status} ${res.body}`,
    );
    const value: unknown = JSON.parse(res.body);
    if (res.status >= 400) {
        assert.equal(typeof value, 'string', where);
        const msg = value as string;
        assert.ok(msg.length > 0 && msg.length < 300, `${where}: ${msg}`);
        assert.doesNotMatch(
            msg,
            /\n\s+at |internal error|\[object Object\]|undefined/,
            `${where}: ${msg}`,
        );
    }
}

describe('/cnf fuzz', function () {
    this.timeout(120_000);
    let sim: PowerBrainSim;
    before(async () => {
        sim = await startPowerBrain();
    });
    after(async () => {
        await sim.close();
    });

    it('survives 5,000 random and malformed requests without a stray change', async () => {
        const d: DirectSite = directSite(sim, { adminPassword: ADMIN_PASSWORD });
        try {
            d.site.start();
            await d.site.manager.runCycle();
            const r = rng(20261123);
            const statuses = new Map<number, number>();
            for (let i = 0; i < 5000; i++) {
                const req = randomRequest(r, `198.51.100.${i % 250}`);
                const before = fingerprint(d);
                const res = await d.call(req);
                statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
                checkResponse(req, res);
                if (res.status >= 400) {
                    assert.equal(
                        fingerprint(d),
                        before,
                        `rejected ${req.method} ${String(req.query)} changed state`,
                    );
                }
                assert.equal(({} as Record<string, unknown>).polluted, undefined);
            }
            // The mix reached the handlers, not only the parsers.
            assert.ok((statuses.get(200) ?? 0) > 300, JSON.stringify([...statuses]));
            assert.ok((statuses.get(400) ?? 0) > 500, JSON.stringify([...statuses]));
            // Still serving.
            assert.equal((await d.call({ query: 'cmd=get_dev_info' })).status, 200);
        } finally {
            await d.stop();
        }
    });

    it('survives 300 random requests through the node in Node-RED', async () => {
        let app: Parameters<typeof supertest>[0] | undefined;
        const capture = (RED: { httpNode: typeof app }) => {
            app = RED.httpNode;
        };
        await helper.load(
            [capture, managerNode, cnfNode] as unknown as Parameters<typeof helper.load>[0],
            [
                {
                    id: 'm1',
                    type: 'evcm-manager',
                    cycle_ms: '200',
                    devices: JSON.stringify(testDevices(sim)),
                },
                { id: 'c1', type: 'evcm-cnf', manager: 'm1' },
            ] as unknown as Parameters<typeof helper.load>[1],
            { m1: { adminPassword: ADMIN_PASSWORD } } as never,
        );
        try {
            const r = rng(7);
            for (let i = 0; i < 300; i++) {
                const req = randomRequest(r, '');
                const method = req.method === 'GET' ? 'get' : req.method === 'PUT' ? 'put' : 'post';
                let t = supertest(app!)[method](`/cnf?${String(req.query)}`);
                if (req.authorization) t = t.set('Authorization', req.authorization);
                if (req.body !== undefined) t = t.set('Content-Type', 'text/plain').send(req.body);
                const res = await t;
                if (method === 'put') assert.equal(res.status, 405, 'PUT: the API answers');
                checkResponse(req, { status: res.status, headers: {}, body: res.text });
            }
            await supertest(app!).get('/cnf?cmd=get_dev_info').expect(200);
        } finally {
            await helper.unload();
        }
    });
});
