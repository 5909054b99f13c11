// The MQTT API without a broker: topic routing, the configuration, what each topic runs and with
// which rights (compared with handleCnf as HTTP clients reach it), and what is published.
import assert from 'node:assert/strict';
import { handleCnf } from '../../../lib/cnf/handle';
import {
    bodyOf,
    deviceValues,
    MqttApi,
    MqttApiConfigSchema,
    MqttInputError,
    routeOf,
    type MqttOutput,
} from '../../../lib/mqtt/api';
import type { SessionRecord } from '../../../lib/sessions/record';
import type { MeterReading } from '../../../lib/core/types';
import { ADMIN_PASSWORD, directSite, fingerprint, type DirectSite } from '../../support/cnf';

const config = (over: Record<string, unknown> = {}) => MqttApiConfigSchema.parse(over);

describe('MQTT API (lib)', () => {
    describe('routeOf', () => {
        const P = 'cfos_mqtt';
        it('routes api, set and get, and knows its own publications', () => {
            assert.deepEqual(routeOf(P, 'cfos_mqtt/api/cmd=get_dev_info'), {
                kind: 'api',
                query: 'cmd=get_dev_info',
            });
            // a value may hold a slash: the query is all that follows api/
            assert.deepEqual(routeOf(P, 'cfos_mqtt/api/cmd=set_cm_vars&name=x&val=a/b'), {
                kind: 'api',
                query: 'cmd=set_cm_vars&name=x&val=a/b',
            });
            assert.deepEqual(routeOf(P, 'cfos_mqtt/api'), { kind: 'api', query: '' });
            assert.deepEqual(routeOf(P, 'cfos_mqtt/set/m3'), { kind: 'set', devId: 'M3' });
            assert.deepEqual(routeOf(P, 'cfos_mqtt/get'), { kind: 'publish' });
            for (const own of ['api_res', 'ta_log', 'get/dev_info', 'get/params', 'get/E1'])
                assert.deepEqual(routeOf(P, `cfos_mqtt/${own}`), { kind: 'own' }, own);
        });

        it('names what is wrong with any other topic', () => {
            const why = (t: string) => {
                const r = routeOf(P, t);
                assert.equal(r.kind, 'unknown', t);
                return (r as { why: string }).why;
            };
            assert.match(why('other/api/cmd=x'), /not under cfos_mqtt\//);
            assert.match(why('cfos_mqtt_1/api/cmd=x'), /not under cfos_mqtt\//);
            assert.match(why('cfos_mqtt/set/X1'), /X1 is not a device id/);
            assert.match(why('cfos_mqtt/ctl'), /not a topic of the MQTT API/);
            assert.match(why('cfos_mqtt'), /not a topic of the MQTT API/);
            assert.match(why(''), /\(no topic\) is not under/);
        });

        it('works with the serial form of the prefix', () => {
            assert.deepEqual(routeOf('cfos_mqtt_fcf5', 'cfos_mqtt_fcf5/set/E3'), {
                kind: 'set',
                devId: 'E3',
            });
        });
    });

    describe('configuration', () => {
        it('defaults to the vendor: cfos_mqtt, admin rights, every 5 s, no device topics', () => {
            assert.deepEqual(config(), {
                prefix: 'cfos_mqtt',
                rights: 'admin',
                intervalMs: 5000,
                perDevice: false,
            });
            assert.equal(config({ interval: '' }).intervalMs, 5000);
            assert.equal(config({ interval: '0' }).intervalMs, 0);
            assert.equal(config({ interval: 0.5 }).intervalMs, 500);
        });

        it('takes a device list and refuses bad values', () => {
            assert.deepEqual(config({ per_device: 'list', dev_ids: 'e1, M3;M3' }).perDevice, [
                'E1',
                'M3',
            ]);
            assert.equal(config({ per_device: 'all', dev_ids: 'E1' }).perDevice, true);
            for (const bad of [
                { prefix: 'a/#' },
                { prefix: 'a/+/b' },
                { prefix: 'a//b' },
                { prefix: '/a' },
                { prefix: '  ' },
                { rights: 'write' },
                { interval: '-1' },
                { interval: 'soon' },
                { per_device: 'list', dev_ids: 'E1, G2' },
            ]) {
                assert.equal(
                    MqttApiConfigSchema.safeParse(bad).success,
                    false,
                    JSON.stringify(bad),
                );
            }
        });
    });

    describe('payloads', () => {
        it('a body is text as it came, bytes as UTF-8, parsed JSON as JSON; empty is none', () => {
            assert.equal(bodyOf('{"a": 1}'), '{"a": 1}');
            assert.equal(bodyOf(Buffer.from('{"ä":1}')), '{"ä":1}');
            assert.equal(bodyOf({ a: [1] }), '{"a":[1]}');
            assert.equal(bodyOf(12), '12');
            for (const none of ['', Buffer.alloc(0), undefined, null])
                assert.equal(bodyOf(none), undefined);
        });

        it('device values are a JSON object', () => {
            assert.deepEqual(deviceValues('{"power_w":5}'), { power_w: 5 });
            assert.deepEqual(deviceValues(Buffer.from('{"power_w":5}')), { power_w: 5 });
            assert.deepEqual(deviceValues({ power_w: 5 }), { power_w: 5 });
            assert.throws(() => deviceValues('power 5'), /not JSON/);
            assert.throws(() => deviceValues('[1,2]'), /must be a JSON object/);
            assert.throws(() => deviceValues(5), /must be a JSON object/);
            assert.throws(() => deviceValues(''), /not JSON/);
        });
    });

    describe('against a site', () => {
        let d: DirectSite;
        let sent: MqttOutput[];
        const api = (over: Record<string, unknown> = {}) =>
            new MqttApi(d.ctx, config(over), (m) => sent.push(m));
        const res = () => sent.filter((m) => m.topic === 'cfos_mqtt/api_res');

        afterEach(() => d.stop());

        describe('without an admin password', () => {
            beforeEach(() => {
                d = directSite(null);
                sent = [];
            });

            it('api/ answers on api_res what /cnf answers, errors too', async () => {
                const a = api();
                assert.deepEqual(await a.handle({ topic: 'cfos_mqtt/api/cmd=get_params' }), {
                    kind: 'answered',
                    status: 200,
                });
                const http = await d.call({ query: 'cmd=get_params' });
                assert.equal(res()[0]!.payload, http.body);
                assert.equal(res()[0]!.status, 200);
                await a.handle({ topic: 'cfos_mqtt/api/cmd=nope', payload: '' });
                assert.equal(res()[1]!.payload, '"unknown command"');
                assert.equal(res()[1]!.status, 404);
                await a.handle({ topic: 'cfos_mqtt/api/' });
                assert.equal(res()[2]!.payload, '"missing cmd"');
                assert.equal(sent.length, 3);
            });

            it('runs an admin command with a JSON payload as its POST body', async () => {
                const a = api();
                await a.handle({
                    topic: 'cfos_mqtt/api/cmd=set_params',
                    payload: '{"title":"Over MQTT"}',
                });
                assert.equal(res()[0]!.payload, '"ok"');
                assert.equal(d.site.params.title, 'Over MQTT');
                // an object payload (an MQTT node that parsed the JSON) is the same body
                await a.handle({ topic: 'cfos_mqtt/api/cmd=set_params', payload: { title: 'B' } });
                assert.equal(d.site.params.title, 'B');
            });

            it('read only: an admin command is refused as /cnf refuses another machine', async () => {
                const a = api({ rights: 'read' });
                const before = fingerprint(d);
                await a.handle({ topic: 'cfos_mqtt/api/cmd=set_params', payload: '{"title":"x"}' });
                const http = await d.call({
                    method: 'POST',
                    query: 'cmd=set_params',
                    body: '{"title":"x"}',
                    remoteAddress: '192.0.2.7',
                });
                assert.equal(http.status, 403);
                assert.equal(res()[0]!.status, http.status);
                assert.equal(res()[0]!.payload, http.body);
                assert.equal(fingerprint(d), before);
                // what needs no password is answered
                await a.handle({ topic: 'cfos_mqtt/api/cmd=get_dev_info' });
                assert.equal(res()[1]!.status, 200);
            });

            it('set/<dev_id> feeds an HTTP-input meter or wallbox by its kind', async () => {
                const a = api({ rights: 'read' }); // device data, whatever the API rights
                assert.deepEqual(
                    await a.handle({ topic: 'cfos_mqtt/set/M3', payload: '{"power_w":1234}' }),
                    { kind: 'set', devId: 'M3' },
                );
                const m = d.site.manager.deviceState('M3').sample.reading as MeterReading;
                assert.equal(m.powerW, 1234);
                await a.handle({ topic: 'cfos_mqtt/set/E3', payload: { state: 2 } });
                const e = d.site.manager.deviceState('E3').sample.reading as { state: number };
                assert.equal(e.state, 2);
                assert.equal(sent.length, 0, 'set publishes nothing');
            });

            it('refuses an unknown device, a device that takes no input, and bad values', async () => {
                const a = api();
                const before = fingerprint(d);
                const refused = async (msg: unknown, re: RegExp) => {
                    await assert.rejects(a.handle(msg), (err: Error) => {
                        assert.ok(err instanceof MqttInputError, err.message);
                        assert.match(err.message, re);
                        return true;
                    });
                };
                await refused(
                    { topic: 'cfos_mqtt/set/M9', payload: '{"power_w":1}' },
                    /^cfos_mqtt\/set\/M9: unknown device M9$/,
                );
                await refused(
                    { topic: 'cfos_mqtt/set/M4', payload: '{"power_w":1}' },
                    /set\/M4: set_ajax_meter: M4 is a meter_sim, not an HTTP input meter/,
                );
                await refused(
                    { topic: 'cfos_mqtt/set/E3', payload: '{"state":9}' },
                    /set\/E3: set_ajax_evse: body\.state/,
                );
                await refused({ topic: 'cfos_mqtt/set/M3', payload: 'lots' }, /M3: .*not JSON/);
                await refused({ topic: 'cfos_mqtt/ctl', payload: '{}' }, /not a topic/);
                await refused({ payload: 'x' }, /topic/);
                assert.equal(fingerprint(d), before);
                assert.equal(sent.length, 0);
            });

            it('ignores its own publications and does not run a retained API call', async () => {
                const a = api();
                for (const t of ['api_res', 'get/dev_info', 'get/params', 'get/E1', 'ta_log'])
                    assert.deepEqual(await a.handle({ topic: `cfos_mqtt/${t}`, payload: '"x"' }), {
                        kind: 'ignored',
                    });
                await assert.rejects(
                    a.handle({
                        topic: 'cfos_mqtt/api/cmd=set_params',
                        payload: '{"title":"again"}',
                        retain: true,
                    }),
                    /retained API call is not run/,
                );
                assert.notEqual(d.site.params.title, 'again');
                assert.equal(sent.length, 0);
            });

            it('runs messages in the order they arrived', async () => {
                const a = api();
                const runs = ['A', 'B', 'C'].map((t) =>
                    a.handle({ topic: 'cfos_mqtt/api/cmd=set_params', payload: { title: t } }),
                );
                runs.push(a.handle({ topic: 'cfos_mqtt/api/cmd=get_params' }));
                await Promise.all(runs);
                const last = JSON.parse(res()[3]!.payload as string) as { title: string };
                assert.equal(last.title, 'C');
                assert.equal(d.site.params.title, 'C');
            });

            it('publishes dev_info, its params and the chosen devices', async () => {
                await api().publishState();
                assert.deepEqual(
                    sent.map((m) => m.topic),
                    ['cfos_mqtt/get/dev_info', 'cfos_mqtt/get/params'],
                );
                const http = JSON.parse((await d.call({ query: 'cmd=get_dev_info' })).body) as {
                    params: unknown;
                    devices: { dev_id: string }[];
                };
                assert.deepEqual(sent[0]!.payload, http);
                assert.deepEqual(sent[1]!.payload, http.params);

                sent = [];
                await api({ per_device: 'list', dev_ids: 'M3,E9', prefix: 'x/y' }).publishState();
                assert.deepEqual(
                    sent.map((m) => m.topic),
                    ['x/y/get/dev_info', 'x/y/get/params', 'x/y/get/M3'],
                );
                assert.deepEqual(
                    sent[2]!.payload,
                    http.devices.find((x) => x.dev_id === 'M3'),
                );
                sent = [];
                await api({ per_device: 'all' }).handle({ topic: 'cfos_mqtt/get' });
                assert.deepEqual(
                    sent.slice(2).map((m) => m.topic),
                    http.devices.map((x) => `cfos_mqtt/get/${x.dev_id}`),
                );
            });

            it('publishes on its timer, and not at all with interval 0', async () => {
                const a = api({ interval: 0.05 });
                const stop = a.startPublishing((err) => assert.fail(err));
                await new Promise((r) => setTimeout(r, 180));
                stop();
                const n = sent.length;
                assert.ok(n >= 4, `${n} messages`);
                await new Promise((r) => setTimeout(r, 120));
                assert.equal(sent.length, n, 'stopped');
                const none = api({ interval: 0 });
                none.startPublishing((err) => assert.fail(err))();
                await new Promise((r) => setTimeout(r, 60));
                assert.equal(sent.length, n);
            });

            it('publishSession: a finished session on ta_log, checked against the record type', () => {
                const record: SessionRecord = {
                    id: '1700000000000-E3',
                    dev_id: 'E3',
                    name: 'HTTP wallbox',
                    card: '04A1B2',
                    start: 1_700_000_000_000,
                    end: 1_700_003_600_000,
                    energy_wh: 7400,
                    energy_source: 'counter',
                    meter_start_wh: 1000,
                    meter_stop_wh: 8400,
                    charging_s: 3500,
                    peak_ma: 16000,
                    mean_ma: 15500,
                    reason: 'unplugged',
                };
                const a = api({ prefix: 'cfos_mqtt_fcf5' });
                a.publishSession(record);
                assert.deepEqual(sent, [{ topic: 'cfos_mqtt_fcf5/ta_log', payload: record }]);
                assert.throws(
                    () => a.publishSession({ ...record, energy_wh: -1 }),
                    /ta_log: energy_wh/,
                );
                assert.equal(sent.length, 1);
            });
        });

        describe('with an admin password', () => {
            beforeEach(() => {
                d = directSite(null, { adminPassword: ADMIN_PASSWORD });
                sent = [];
            });

            it("admin rights run what needs the password; read only gets /cnf's 401", async () => {
                await api().handle({
                    topic: 'cfos_mqtt/api/cmd=set_params',
                    payload: '{"title":"a"}',
                });
                assert.equal(res()[0]!.payload, '"ok"');
                assert.equal(d.site.params.title, 'a');

                await api({ rights: 'read' }).handle({
                    topic: 'cfos_mqtt/api/cmd=set_params',
                    payload: '{"title":"b"}',
                });
                const http = await handleCnf(
                    { method: 'POST', query: 'cmd=set_params', body: '{"title":"b"}' },
                    d.ctx,
                );
                assert.equal(http.status, 401);
                assert.equal(res()[1]!.status, 401);
                assert.equal(res()[1]!.payload, http.body);
                assert.equal(d.site.params.title, 'a');
            });
        });
    });
});
