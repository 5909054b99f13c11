// evcm-price in Node-RED: a tariff node's list reaches the site's rules and plans, a bad list is
// an error that names the entry and changes nothing.
import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import type { ManagerNode } from '../../nodes/shared/types';
import {
    allNodes,
    errors,
    manager,
    nextMessage,
    sleep,
    statuses,
    type Flow,
    type HelperNode,
} from '../support/node-red';

helper.init(require.resolve('node-red'));

const node = (id: string) => helper.getNode(id) as unknown as HelperNode;
const H = 3_600_000;

describe('evcm-price', function () {
    this.timeout(20_000);
    afterEach(() => helper.unload());

    const flow = (extra: Record<string, unknown> = {}) =>
        [
            manager('m1', [
                {
                    dev_type: 'evse_sim',
                    dev_id: 'E1',
                    max_charging_cur: 16000,
                    charging_rules: [{ mode: 0, current: 16000, price_level: 2 }],
                },
            ]),
            { id: 'p', type: 'evcm-price', manager: 'm1', wires: [['out']], ...extra },
            { id: 'out', type: 'helper' },
        ] as unknown as Flow;

    it('takes a Tibber list: rules see its level, the output says the price now', async () => {
        await helper.load(allNodes(), flow());
        const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
        const hour = Math.floor(Date.now() / H) * H;
        const got = nextMessage<{ payload: Record<string, unknown> }>(node('out'));
        node('p').receive({
            payload: [
                { startsAt: new Date(hour).toISOString(), total: 0.1234, level: 'CHEAP' },
                { startsAt: new Date(hour + H).toISOString(), total: 0.4, level: 'EXPENSIVE' },
            ],
        });
        const msg = await got;
        assert.deepEqual(msg.payload, {
            price: 0.1234,
            level: 2,
            source: 'list',
            slots: 2,
            from: new Date(hour).toISOString(),
            to: new Date(hour + 2 * H).toISOString(),
        });
        assert.equal(statuses(node('p')).at(-1)?.fill, 'green');
        // The rule (price level at most 2) lets the wallbox charge.
        await site.manager.runCycle();
        assert.equal(site.manager.lastCycle!.snapshot.limits?.get('E1'), 16000);

        // A bad entry: an error naming it, and the list in force stays.
        node('p').receive({ payload: [{ startsAt: new Date(hour).toISOString(), total: 'x' }] });
        await sleep(20);
        assert.match(errors(node('p')).join('\n'), /payload\[0\]\.total/);
        assert.equal(site.prices.slots.length, 2);
        assert.equal(statuses(node('p')).at(-1)?.fill, 'red');

        node('p').receive({ reset: true });
        await sleep(20);
        assert.equal(site.prices.slots.length, 0);
        await site.manager.runCycle();
        assert.equal(site.manager.lastCycle!.snapshot.limits?.get('E1'), 0, 'no price: no match');
    });

    it('reads a unit-less list in the unit it is configured for', async () => {
        await helper.load(allNodes(), flow({ unit: 'ct/kWh' }));
        const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
        const hour = Math.floor(Date.now() / H) * H;
        node('p').receive({ payload: [{ start: hour, end: hour + H, price: 25 }] });
        await sleep(20);
        assert.equal(site.priceNow().price, 0.25);
    });
});
