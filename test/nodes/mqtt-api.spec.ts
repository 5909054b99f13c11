// evcm-mqtt in the real Node-RED runtime between the core mqtt in / mqtt out nodes, against a real
// broker (aedes in this process) and a real MQTT client: what a client publishes under cfos_mqtt/
// is run as /cnf runs it, and the answers and the state come back on the vendor's topics.
import assert from 'node:assert/strict';
import { connectAsync, type MqttClient } from 'mqtt';
import helper from 'node-red-node-test-helper';
import supertest from 'supertest';
import type { SessionRecord } from '../../lib/sessions/record';
import { ADMIN_PASSWORD } from '../support/cnf';
import { startBroker, type TestBroker } from '../support/mqtt-broker';
import {
    allNodes,
    errors,
    manager,
    sleep,
    statuses,
    type Flow,
    type HelperNode,
} from '../support/node-red';

helper.init(require.resolve('node-red'));

type App = Parameters<typeof supertest>[0];
type Json = Record<string, unknown>;

const mqttNodes = require(require.resolve('@node-red/nodes/core/network/10-mqtt.js')) as never;

const devices = [
    { dev_type: 'evse_sim', dev_id: 'E1', name: 'Garage', max_charging_cur: 16000 },
    { dev_type: 'evse_ajax', dev_id: 'E3', name: 'Other wallbox' },
    { dev_type: 'meter_ajax', dev_id: 'M3', name: 'Grid', role: 3 },
];

interface Received {
    topic: string;
    text: string;
}

/** Everything the client receives, and a way to wait for the next match. */
class Inbox {
    readonly all: Received[] = [];
    private waiters: { accept: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];

    constructor(client: MqttClient) {
        client.on('message', (topic, payload) => {
            const m = { topic, text: payload.toString('utf8') };
            this.all.push(m);
            this.waiters = this.waiters.filter((w) => {
                if (!w.accept(m)) return true;
                w.resolve(m);
                return false;
            });
        });
    }

    next(topic: string, timeoutMs = 5000): Promise<Received> {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`nothing on ${topic}`)), timeoutMs);
            this.waiters.push({
                accept: (m) => m.topic === topic,
                resolve: (m) => {
                    clearTimeout(timer);
                    resolve(m);
                },
            });
        });
    }
}

describe('evcm-mqtt against a real broker', function () {
    this.timeout(20_000);
    let broker: TestBroker;
    let client: MqttClient | undefined;
    let inbox: Inbox;
    let app: App | undefined;

    before(async () => {
        broker = await startBroker();
    });
    after(() => broker.close());
    afterEach(async () => {
        await client?.endAsync();
        client = undefined;
        await helper.unload();
    });

    /** The flow: mqtt in (cfos_mqtt/#) → evcm-mqtt → mqtt out, and /cnf on Node-RED's port. */
    async function start(api: Json = {}, credentials: Json = {}): Promise<void> {
        const capture = (RED: { httpNode: App }) => {
            app = RED.httpNode;
        };
        const flow = [
            { id: 'tab', type: 'tab' },
            manager('m1', devices),
            {
                id: 'b1',
                type: 'mqtt-broker',
                broker: '127.0.0.1',
                port: String(broker.port),
                clientid: '',
                autoConnect: true,
                usetls: false,
                protocolVersion: '4',
                keepalive: '60',
                cleansession: true,
            },
            {
                id: 'in',
                z: 'tab',
                type: 'mqtt in',
                broker: 'b1',
                topic: 'cfos_mqtt/#',
                qos: '1',
                datatype: 'utf8',
                wires: [['api']],
            },
            {
                id: 'api',
                z: 'tab',
                type: 'evcm-mqtt',
                manager: 'm1',
                interval: '0',
                ...api,
                wires: [['out']],
            },
            { id: 'out', z: 'tab', type: 'mqtt out', broker: 'b1', topic: '', qos: '1' },
            { id: 'c1', z: 'tab', type: 'evcm-cnf', manager: 'm1', path: '/cnf' },
        ];
        await helper.load(
            [capture, ...(allNodes() as never[]), mqttNodes] as never,
            flow as unknown as Flow,
            credentials as never,
        );
        await broker.subscribed('cfos_mqtt/#');
        client = await connectAsync(broker.url, { reconnectPeriod: 0 });
        inbox = new Inbox(client);
        await client.subscribeAsync(['cfos_mqtt/api_res', 'cfos_mqtt/get/#', 'cfos_mqtt/ta_log']);
    }

    /** Publishes a call and waits for its answer on api_res. */
    async function call(query: string, payload = ''): Promise<Received> {
        const answer = inbox.next('cfos_mqtt/api_res');
        await client!.publishAsync(`cfos_mqtt/api/${query}`, payload, { qos: 1 });
        return answer;
    }

    const apiNode = () => helper.getNode('api') as unknown as HelperNode;

    it('answers cmd=get_dev_info on api_res with what /cnf answers', async () => {
        await start();
        const res = await call('cmd=get_dev_info');
        const info = JSON.parse(res.text) as { params: Json; devices: Json[] };
        const http = (await supertest(app!).get('/cnf?cmd=get_dev_info').expect(200)).body as {
            params: Json;
            devices: Json[];
        };
        assert.deepEqual(Object.keys(info), Object.keys(http));
        assert.deepEqual(
            info.devices.map((d) => d.dev_id),
            http.devices.map((d) => d.dev_id),
        );
        assert.equal(info.params.title, http.params.title);
        // an error is answered there too, as /cnf words it
        assert.equal((await call('cmd=nope')).text, '"unknown command"');
        assert.deepEqual(errors(apiNode()), [], 'its own api_res came back and was ignored');
    });

    it('runs cmd=set_params with a JSON payload; the change shows through /cnf', async () => {
        await start();
        const res = await call('cmd=set_params', JSON.stringify({ title: 'Set over MQTT' }));
        assert.equal(res.text, '"ok"');
        const params = (await supertest(app!).get('/cnf?cmd=get_params').expect(200)).body as Json;
        assert.equal(params.title, 'Set over MQTT');
    });

    it('feeds cfos_mqtt/set/<meter id> into the meter; an unknown id is a node error', async () => {
        await start();
        await client!.publishAsync(
            'cfos_mqtt/set/M3',
            JSON.stringify({ current: [4000, 5000, 6000], power_w: 3450 }),
            { qos: 1 },
        );
        let m3: Json | undefined;
        for (let i = 0; i < 50 && m3?.power_w !== 3450; i++) {
            await sleep(50);
            const info = (await supertest(app!).get('/cnf?cmd=get_dev_info')).body as {
                devices: Json[];
            };
            m3 = info.devices.find((d) => d.dev_id === 'M3');
        }
        assert.equal(m3?.power_w, 3450);
        assert.equal(m3?.current_l2, 5000);

        // The parameters without what changes by itself (the clock, the load of the machine).
        const settings = async () => {
            const p = (await supertest(app!).get('/cnf?cmd=get_params')).body as Json;
            delete p.time;
            delete p.cpu;
            delete p.mem;
            return p;
        };
        const before = await settings();
        await client!.publishAsync('cfos_mqtt/set/M7', '{"power_w":1}', { qos: 1 });
        for (let i = 0; i < 50 && errors(apiNode()).length === 0; i++) await sleep(50);
        assert.deepEqual(errors(apiNode()), ['cfos_mqtt/set/M7: unknown device M7']);
        assert.deepEqual(await settings(), before);
    });

    it('publishes get/dev_info and get/params on its timer, and per device when chosen', async () => {
        await start({ interval: '0.3', per_device: 'list', dev_ids: 'E3' });
        const first = await inbox.next('cfos_mqtt/get/dev_info');
        const info = JSON.parse(first.text) as { params: Json; devices: Json[] };
        assert.deepEqual(
            info.devices.map((d) => d.dev_id),
            ['E1', 'E3', 'M3'],
        );
        const params = JSON.parse((await inbox.next('cfos_mqtt/get/params')).text) as Json;
        assert.equal(params.title, info.params.title);
        const e3 = JSON.parse((await inbox.next('cfos_mqtt/get/E3')).text) as Json;
        assert.equal(e3.dev_id, 'E3');
        await inbox.next('cfos_mqtt/get/dev_info'); // and again
        await sleep(300);
        const topics = new Set(inbox.all.map((m) => m.topic));
        assert.ok(!topics.has('cfos_mqtt/get/E1') && !topics.has('cfos_mqtt/get/M3'));
        assert.deepEqual(errors(apiNode()), [], 'its own get/… came back and was ignored');
    });

    it('publishes each finished session on ta_log, as it was recorded', async () => {
        await start();
        const got = inbox.next('cfos_mqtt/ta_log');
        // A wallbox fed over MQTT: plugged in, charging 300 Wh on its counter, unplugged.
        for (const [state, wh] of [
            [2, 1000],
            [3, 1100],
            [3, 1300],
            [1, 1300],
        ]) {
            await client!.publishAsync(
                'cfos_mqtt/set/E3',
                JSON.stringify({ state, total_energy: wh, current: [0, 0, 0] }),
                { qos: 1 },
            );
            await sleep(450); // two cycles of 200 ms see it
        }
        const record = JSON.parse((await got).text) as SessionRecord;
        assert.deepEqual(
            [record.dev_id, record.energy_wh, record.reason],
            ['E3', 300, 'unplugged'],
        );
        const http = (await supertest(app!).get('/cnf?cmd=get_sessions&dev_id=E3').expect(200))
            .body as { sessions: SessionRecord[] };
        assert.deepEqual(http.sessions, [record]);
        assert.deepEqual(errors(apiNode()), [], 'its own ta_log came back and was ignored');
    });

    it('read only: an admin command is refused exactly as /cnf refuses it without the password', async () => {
        await start({ rights: 'read' }, { m1: { adminPassword: ADMIN_PASSWORD } });
        const body = JSON.stringify({ title: 'Not allowed' });
        const res = await call('cmd=set_params', body);
        const http = await supertest(app!)
            .post('/cnf?cmd=set_params')
            .set('Content-Type', 'application/json')
            .send(body);
        assert.equal(http.status, 401);
        assert.equal(res.text, http.text);
        const params = (await supertest(app!).get('/cnf?cmd=get_params')).body as Json;
        assert.notEqual(params.title, 'Not allowed');
        // what needs no password is answered
        const info = JSON.parse((await call('cmd=get_params')).text) as Json;
        assert.equal(info.title, params.title);
        // with admin rights (the vendor's) the same call goes through
        await client!.endAsync();
        await helper.unload();
        await start({}, { m1: { adminPassword: ADMIN_PASSWORD } });
        assert.equal((await call('cmd=set_params', body)).text, '"ok"');
    });

    it('a bad configuration is one node error and a red ring; the node then takes nothing', async () => {
        await helper.load(allNodes(), [
            manager('m1', devices),
            { id: 'api', type: 'evcm-mqtt', manager: 'm1', prefix: 'cfos_mqtt/#' },
            { id: 'none', type: 'evcm-mqtt', manager: '' },
        ] as unknown as Flow);
        assert.deepEqual(errors(apiNode()), ['evcm-mqtt.errors.bad-config']);
        assert.equal(statuses(apiNode()).at(-1)?.fill, 'red');
        const none = helper.getNode('none') as unknown as HelperNode;
        assert.deepEqual(errors(none), ['evcm-mqtt.errors.missing-config']);
        apiNode().receive({ topic: 'cfos_mqtt/api/cmd=get_params' });
        await sleep(50);
        assert.equal(errors(apiNode()).length, 1);
    });
});
