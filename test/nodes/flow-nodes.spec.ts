import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import { sharedBusPool } from '../../lib/modbus/shared-pool';
import { freePort } from '../../lib/sim/powerbrain-sim';
import type { ManagerNode } from '../../nodes/shared/types';
import {
    allNodes,
    errors,
    manager,
    nextCall,
    nextMessage,
    sleep,
    statuses,
    type Flow,
    type HelperNode,
} from '../support/node-red';

helper.init(require.resolve('node-red'));

const node = (id: string) => helper.getNode(id) as unknown as HelperNode;
const load = (flow: unknown[]) => helper.load(allNodes(), flow as unknown as Flow);
const errorText = (args: unknown[]) => String((args[0] as Error)?.message ?? args[0]);

const ajaxSite = manager('m1', [
    { dev_type: 'evse_ajax', dev_id: 'E1', name: 'Other integration', max_charging_cur: 16000 },
    { dev_type: 'meter_ajax', dev_id: 'M1', name: 'Grid', role: 3 },
]);

describe('flow nodes', function () {
    this.timeout(20_000);
    afterEach(() => helper.unload());

    describe('evcm-meter-in and evcm-evse-in', () => {
        const flow = () => [
            ajaxSite,
            { id: 'mi', type: 'evcm-meter-in', manager: 'm1', dev_id: 'M1' },
            { id: 'ei', type: 'evcm-evse-in', manager: 'm1', dev_id: 'E1', wires: [['out']] },
            { id: 'out', type: 'helper' },
        ];

        it('pushes set_ajax_meter values, also in the GET form', async () => {
            await load(flow());
            const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
            node('mi').receive({
                payload: { current: [1000, 2000, 3000], voltage: [230, 230, 230] },
            });
            await sleep(20);
            const r1 = site.manager.deviceState('M1').sample.reading as unknown as {
                currents: number[];
                powerW: number;
            };
            assert.deepEqual(r1.currents, [1000, 2000, 3000]);
            assert.equal(r1.powerW, 1380);
            node('mi').receive({ payload: { current: '4000,5000,6000', power_w: '99' } });
            await sleep(20);
            const r2 = site.manager.deviceState('M1').sample.reading as unknown as {
                currents: number[];
                powerW: number;
            };
            assert.deepEqual(r2.currents, [4000, 5000, 6000]);
            assert.equal(r2.powerW, 99);
        });

        it('emits the control object when the wallbox may charge, and its ring says so', async () => {
            await load(flow());
            const got = nextMessage<{ topic: string; payload: Record<string, unknown> }>(
                node('out'),
                5000,
                (m) => Number(m.payload.charging_current) > 0,
            );
            node('mi').receive({ payload: { current: [2000, 2000, 2000] } });
            node('ei').receive({ payload: { state: 2, current: [0, 0, 0] } });
            const msg = await got;
            assert.equal(msg.topic, 'E1');
            assert.deepEqual(Object.keys(msg.payload).sort(), [
                'charging_current',
                'charging_enabled',
                'device_enabled',
                'paused',
            ]);
            assert.equal(msg.payload.device_enabled, true);
            assert.equal(msg.payload.charging_enabled, true);
            assert.equal(msg.payload.paused, false);
            assert.ok(Number(msg.payload.charging_current) >= 6000);
            await sleep(450);
            const texts = statuses(node('ei')).map((s) => s.text);
            assert.ok(texts.includes('evcm-evse-in.status.charging'), texts.join());
            assert.ok(statuses(node('mi')).some((s) => s.text === 'evcm-meter-in.status.power'));
        });

        it('answers every input with the current control object when asked to', async () => {
            await load([
                ajaxSite,
                {
                    id: 'ei',
                    type: 'evcm-evse-in',
                    manager: 'm1',
                    dev_id: 'E1',
                    output: 'input',
                    wires: [['out']],
                },
                { id: 'out', type: 'helper' },
            ]);
            const got = nextMessage<{
                topic: string;
                payload: Record<string, unknown>;
                extra?: number;
            }>(node('out'), 2000, (m) => m.extra === 1);
            node('ei').receive({ payload: { state: 1 }, extra: 1 });
            const msg = await got;
            assert.equal(msg.topic, 'E1');
            assert.equal(typeof msg.payload.charging_current, 'number');
        });

        it('shows waiting before data and stale after it stops', async () => {
            const site = manager('m1', [
                { dev_type: 'meter_ajax', dev_id: 'M1', role: 3, stale_after: 1 },
            ]);
            await load([site, { id: 'mi', type: 'evcm-meter-in', manager: 'm1', dev_id: 'M1' }]);
            assert.equal(statuses(node('mi'))[0]?.text, 'evcm-meter-in.status.waiting');
            node('mi').receive({ payload: { power_w: 500 } });
            await nextCall(
                node('mi'),
                'status',
                (a) => (a[0] as { text: string }).text === 'evcm-meter-in.status.stale',
                4000,
            );
        });

        it('rejects a bad payload with done(err) naming the field, and a red ring', async () => {
            await load(flow());
            node('ei').receive({ payload: { state: 9 } });
            const args = await nextCall(node('ei'), 'error');
            assert.match(errorText(args), /set_ajax_evse: body\.state: state must be 1\.\.5/);
            node('mi').receive({ payload: { current: 'lots' } });
            assert.match(errorText(await nextCall(node('mi'), 'error')), /body\.current/);
            const last = statuses(node('mi')).at(-1);
            assert.equal(last?.fill, 'red');
            assert.equal(last?.text, 'evcm-meter-in.status.bad-input');
        });

        it('an empty meter payload is an error on the node, never a reading of 0 W', async () => {
            await load(flow());
            const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
            node('mi').receive({ payload: {} });
            assert.match(
                errorText(await nextCall(node('mi'), 'error')),
                /set_ajax_meter needs power_w \(or power_va\) or current/,
            );
            assert.equal(site.manager.deviceState('M1').sample.reading, undefined);
            // the next good reading clears the red ring
            node('mi').receive({ payload: { power_w: 700 } });
            await sleep(20);
            assert.equal(
                (site.manager.deviceState('M1').sample.reading as { powerW?: number }).powerW,
                700,
            );
            assert.notEqual(statuses(node('mi')).at(-1)?.text, 'evcm-meter-in.status.bad-input');
        });

        it('reports a dev_id that is not an HTTP input device, or a missing manager', async () => {
            await load([
                manager('m1', [{ dev_type: 'evse_sim', dev_id: 'E1' }]),
                { id: 'ei', type: 'evcm-evse-in', manager: 'm1', dev_id: 'E1' },
                { id: 'e2', type: 'evcm-evse-in', manager: 'nope', dev_id: 'E1' },
                { id: 'e3', type: 'evcm-evse-in', manager: 'm1', dev_id: 'M1' },
            ]);
            const err = (id: string) => errors(node(id))[0] ?? '';
            assert.equal(err('ei'), 'evcm-evse-in.errors.bad-config');
            assert.equal(err('e2'), 'evcm-evse-in.errors.missing-config');
            assert.equal(err('e3'), 'evcm-evse-in.errors.bad-config');
            assert.equal(statuses(node('e2'))[0]?.fill, 'red');
        });

        it('leaves no subscriptions behind on redeploy and removal', async () => {
            await load(flow());
            const first = (helper.getNode('m1') as unknown as ManagerNode).site!;
            assert.ok(first.manager.events.count() > 0);
            await helper.unload();
            assert.equal(first.manager.events.count(), 0);
            await load(flow());
            const second = (helper.getNode('m1') as unknown as ManagerNode).site!;
            assert.notEqual(first, second);
            assert.equal(second.manager.events.count('setpoint'), 1);
        });
    });

    describe('removal by a "modified nodes" deploy', () => {
        it('a removed flow node unsubscribes while the manager keeps running', async () => {
            const flow = [
                { id: 'tab', type: 'tab', label: 't' },
                ajaxSite,
                {
                    id: 'ei',
                    z: 'tab',
                    type: 'evcm-evse-in',
                    manager: 'm1',
                    dev_id: 'E1',
                    wires: [[]],
                },
                { id: 'mi', z: 'tab', type: 'evcm-meter-in', manager: 'm1', dev_id: 'M1' },
            ];
            await load(flow);
            const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
            assert.equal(site.manager.events.count('setpoint'), 1);
            const cycles = site.manager.events.count('cycle');
            await helper.setFlows(flow.filter((n) => n.id !== 'ei') as unknown as Flow, 'nodes');
            assert.equal(helper.getNode('ei'), null);
            assert.equal(
                (helper.getNode('m1') as unknown as ManagerNode).site,
                site,
                'manager kept',
            );
            assert.equal(site.manager.events.count('setpoint'), 0);
            assert.equal(site.manager.events.count('cycle'), cycles - 1);
        });
    });

    describe('evcm-powerbrain-sim, evcm-modbus-read and evcm-modbus-write', () => {
        let port = 0;
        beforeEach(async () => {
            port = await freePort();
        });
        const flow = () => [
            manager('m1', [
                { dev_type: 'evse_powerbrain', dev_id: 'E1', address: `127.0.0.1:${port}`, id: 1 },
                { dev_type: 'evse_sim', dev_id: 'E2' },
            ]),
            { id: 'sim', type: 'evcm-powerbrain-sim', port, plugged: true, wires: [['simout']] },
            {
                id: 'rd',
                type: 'evcm-modbus-read',
                manager: 'm1',
                device: 'E1',
                register: '8016s',
                wires: [['out']],
            },
            {
                id: 'wr',
                type: 'evcm-modbus-write',
                manager: 'm1',
                device: 'E1',
                register: '8088',
                wires: [['wout']],
            },
            { id: 'out', type: 'helper' },
            { id: 'wout', type: 'helper' },
            { id: 'simout', type: 'helper' },
        ];
        const read = async (msg: Record<string, unknown>) => {
            const rd = node('rd');
            const out = node('out');
            return new Promise<unknown>((resolve, reject) => {
                const finish = () => {
                    out.removeListener('input', onMsg);
                    rd.removeListener('call:error', onErr);
                };
                const onMsg = (m: { payload: unknown }) => {
                    finish();
                    resolve(m.payload);
                };
                const onErr = (c: { args: unknown[] }) => {
                    finish();
                    reject(new Error(errorText(c.args)));
                };
                out.on('input', onMsg);
                rd.on('call:error', onErr);
                rd.receive(msg);
            });
        };

        /** The simulator listens and the manager's bus is connected (it retries with back-off). */
        const ready = async () => {
            for (let i = 0; ; i++) {
                try {
                    return await read({ register: '8002' });
                } catch (e) {
                    if (i > 40) throw e;
                    await sleep(100);
                }
            }
        };

        it('reads through the manager bus with the cmd=modbus addressing and suffixes', async () => {
            await load(flow());
            await ready();
            assert.equal(await read({}), 'cFos Power Brain');
            assert.equal(await read({ register: '8002' }), 1);
            assert.deepEqual(await read({ register: '8002', count: 2 }), [1, 257]);
            assert.equal(
                await read({ device: 'evse', register: '8002' }).catch(() => 'no pb'),
                'no pb',
            );
            assert.equal(await read({ device: `127.0.0.1:${port}`, unit: 1, register: '8002' }), 1);
            const all = (await read({ register: 'all' })) as Record<string, unknown>;
            assert.equal(all['8016s'], 'cFos Power Brain');
            assert.ok(statuses(node('rd')).some((s) => s.fill === 'green'));
        });

        it('writes, and reports bad registers, sizes and devices through done(err)', async () => {
            await load(flow());
            await ready();
            const ok = nextMessage<{ payload: unknown }>(node('wout'));
            node('wr').receive({ payload: 1 });
            assert.equal((await ok).payload, 1);
            assert.equal(await read({ register: '8088' }), 1);
            node('wr').receive({ register: '8083q', payload: 1 });
            assert.match(
                errorText(await nextCall(node('wr'), 'error')),
                /bad modbus register size/,
            );
            node('rd').receive({ device: 'E9' });
            assert.match(errorText(await nextCall(node('rd'), 'error')), /unknown device/);
            node('rd').receive({ device: 'E2' });
            assert.match(errorText(await nextCall(node('rd'), 'error')), /no Modbus address/);
            node('rd').receive({ register: 'x1' });
            assert.match(errorText(await nextCall(node('rd'), 'error')), /bad modbus register/);
            node('rd').receive({ device: { no: 1 } });
            assert.match(errorText(await nextCall(node('rd'), 'error')), /msg\.device/);
            node('wr').receive({ payload: { no: 1 } });
            assert.match(errorText(await nextCall(node('wr'), 'error')), /value must be/);
        });

        it('simulator: plug and unplug from a flow, status ring, bad command', async () => {
            await load(flow());
            await sleep(300);
            const got = nextMessage<{ payload: { plugged: boolean } }>(node('simout'));
            node('sim').receive({ payload: 'unplug' });
            assert.equal((await got).payload.plugged, false);
            assert.ok(
                statuses(node('sim')).some(
                    (s) => s.text === 'evcm-powerbrain-sim.status.unplugged',
                ),
            );
            node('sim').receive({ payload: { plug: 'maybe' } });
            assert.match(errorText(await nextCall(node('sim'), 'error')), /msg.payload must be/);
        });

        it('simulator: rejects a bad port and a port in use', async () => {
            await load([
                { id: 's1', type: 'evcm-powerbrain-sim', port: 80 },
                { id: 's2', type: 'evcm-powerbrain-sim', port },
                { id: 's3', type: 'evcm-powerbrain-sim', port },
            ]);
            assert.equal(errors(node('s1'))[0], 'evcm-powerbrain-sim.errors.bad-config');
            for (let i = 0; i < 50; i++) {
                const both = [...errors(node('s2')), ...errors(node('s3'))];
                if (both.includes('evcm-powerbrain-sim.errors.listen')) return;
                await sleep(50);
            }
            assert.fail('the second simulator on the same port reported nothing');
        });

        it('redeploy releases the simulator port and the node buses', async () => {
            await load(flow());
            await ready();
            const pool = sharedBusPool();
            assert.ok(
                pool.users(`127.0.0.1:${port}`).includes('rd'),
                'the read node shares the bus',
            );
            await helper.unload();
            assert.deepEqual(pool.users(`127.0.0.1:${port}`), [], 'every user let go of the bus');
            await load(flow());
            await ready();
            assert.equal(await read({ register: '8002' }), 1);
        });
    });

    describe('evcm-status', () => {
        it('sends on change by default, every cycle when asked, and on input', async () => {
            await load([
                manager('m1', [
                    { dev_type: 'evse_sim', dev_id: 'E1' },
                    { dev_type: 'meter_sim', dev_id: 'M1', role: 3 },
                ]),
                {
                    id: 'st',
                    type: 'evcm-status',
                    manager: 'm1',
                    output: 'cycle',
                    topic: 'site',
                    wires: [['out']],
                },
                { id: 'out', type: 'helper' },
            ]);
            const first = await nextMessage<{ topic: string; payload: { evses: unknown[] } }>(
                node('out'),
            );
            assert.equal(first.topic, 'site');
            assert.equal(first.payload.evses.length, 1);
            await nextMessage(node('out')); // every cycle, changed or not
            const asked = nextMessage(node('out'), 150);
            node('st').receive({});
            await asked;
        });

        it('reports a missing manager', async () => {
            await load([{ id: 'st', type: 'evcm-status', manager: 'zz' }]);
            assert.equal(statuses(node('st'))[0]?.text, 'evcm-status.status.no-manager');
        });
    });
});
