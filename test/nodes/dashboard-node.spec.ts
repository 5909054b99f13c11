// The evcm-dashboard node in Node-RED: what it sends on each output on its own timer, paging,
// selection, and controls that reach the wallbox through evcm-override and evcm-rfid.
import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import type { ChartPoint, TilePage } from '../../lib/site/dashboard';
import type { ManagerNode } from '../../nodes/shared/types';
import {
    allNodes,
    errors,
    manager,
    nextMessage,
    sleep,
    type Flow,
    type HelperNode,
} from '../support/node-red';

helper.init(require.resolve('node-red'));

const node = (id: string) => helper.getNode(id) as unknown as HelperNode;
const OUTS = ['chart', 'power', 'tiles', 'boxes', 'sw', 'slider', 'ov', 'rf'];

function flow(n: number, extra: Record<string, unknown> = {}) {
    const devices = [
        ...Array.from({ length: n }, (_, i) => ({
            dev_type: 'evse_sim',
            dev_id: `E${i + 1}`,
            name: `Box ${i + 1}`,
            max_charging_cur: 16000,
            ...(i === 1 ? { users: ['2167520770'] } : {}),
        })),
        { dev_type: 'meter_sim', dev_id: 'M1', name: 'Grid', role: 3, sim_step_current: 0 },
    ];
    return [
        manager('m1', devices, {
            max_total_current: String(Math.max(32_000, n * 6000)),
            userTable: JSON.stringify([
                { id: '2167520770', name: 'Anna', rfids: [{ id: '4711' }] },
            ]),
        }),
        {
            id: 'd',
            type: 'evcm-dashboard',
            manager: 'm1',
            interval: '0.5',
            page_size: '4',
            wires: [
                ['chart'],
                ['power'],
                ['tiles'],
                ['boxes'],
                ['sw'],
                ['slider'],
                ['ov-node', 'ov'],
                ['rf-node', 'rf'],
            ],
            ...extra,
        },
        { id: 'ov-node', type: 'evcm-override', manager: 'm1', dev_id: 'E1' },
        { id: 'rf-node', type: 'evcm-rfid', manager: 'm1' },
        ...OUTS.map((id) => ({ id, type: 'helper' })),
    ];
}

describe('evcm-dashboard node', function () {
    this.timeout(20_000);
    afterEach(() => helper.unload());

    it('sends chart points, the power split, a page of tiles, the list and the controls', async () => {
        await helper.load(allNodes(), flow(6) as unknown as Flow);
        const [chart, power, tiles, boxes, sw, slider] = await Promise.all(
            ['chart', 'power', 'tiles', 'boxes', 'sw', 'slider'].map((id) =>
                nextMessage<{ payload: unknown; options?: unknown }>(node(id)),
            ),
        );
        const points = chart!.payload as ChartPoint[];
        assert.deepEqual(
            points.map((p) => p.series),
            ['L1', 'L2', 'L3', 'limit'],
        );
        assert.equal(points[3]!.y, 36);
        assert.ok('cars_w' in (power!.payload as object));
        const page = tiles!.payload as TilePage;
        assert.deepEqual([page.page, page.pages, page.total, page.tiles.length], [1, 2, 6, 4]);
        assert.equal((boxes!.options as unknown[]).length, 6);
        assert.equal(boxes!.payload, 'E1', 'the first wallbox is selected');
        assert.equal(sw!.payload, true);
        assert.equal(slider!.payload, 0);

        // Chart points keep coming on the timer; unchanged tiles are not sent again.
        const next = await nextMessage<{ payload: ChartPoint[] }>(node('chart'), 3000);
        assert.ok(next.payload[0]!.x > points[0]!.x);

        // Page 2: the rest.
        node('d').receive({ topic: 'page', payload: 2 });
        const second = await nextMessage<{ payload: TilePage }>(
            node('tiles'),
            3000,
            (m) => m.payload.page === 2,
        );
        assert.deepEqual(
            second.payload.tiles.map((t) => t.dev_id),
            ['E5', 'E6'],
        );
        assert.deepEqual(errors(node('d')), []);
    });

    it('switches the selected wallbox off and sets a limit through evcm-override', async () => {
        await helper.load(allNodes(), flow(3) as unknown as Flow);
        const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
        await nextMessage(node('tiles'));
        const selected = nextMessage<{ payload: string }>(
            node('boxes'),
            3000,
            (m) => m.payload === 'E3',
        );
        node('d').receive({ topic: 'select', payload: 'E3' });
        assert.ok(await selected);
        const ov = nextMessage<{ payload: unknown }>(node('ov'));
        // The switch follows what the manager holds.
        const swOff = nextMessage<{ payload: boolean }>(node('sw'), 3000, (m) => !m.payload);
        node('d').receive({ topic: 'charging', payload: false });
        assert.deepEqual((await ov).payload, { dev_id: 'E3', flags: 'C' });
        assert.equal((await swOff).payload, false);
        assert.equal(site.limits.overrides.get('E3')?.flags, 1, 'override_device C at E3');

        node('d').receive({ topic: 'limit', payload: 10, dev_id: 'E1' });
        await sleep(200);
        assert.equal(site.limits.overrides.get('E1')?.current, 10_000);
        assert.deepEqual(errors(node('ov-node')), []);
    });

    it('enters a card at the selected wallbox through evcm-rfid', async () => {
        await helper.load(allNodes(), flow(3) as unknown as Flow);
        const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
        await nextMessage(node('tiles'));
        node('d').receive({ topic: 'select', payload: 'E2' });
        const rf = nextMessage<{ payload: unknown }>(node('rf'));
        node('d').receive({ topic: 'card', payload: '4711' });
        assert.deepEqual((await rf).payload, { dev_id: 'E2', rfid: '4711' });
        await sleep(200);
        assert.equal(site.authorisation.userAt('E2')?.name, 'Anna');
        const tiles = await nextMessage<{ payload: TilePage }>(
            node('tiles'),
            3000,
            (m) => m.payload.tiles.find((t) => t.dev_id === 'E2')?.user === 'Anna',
        );
        assert.ok(tiles);
    });

    it('refuses a bad control message and an unknown wallbox; other messages resend', async () => {
        await helper.load(allNodes(), flow(2) as unknown as Flow);
        await nextMessage(node('tiles'));
        node('d').receive({ topic: 'limit', payload: 'lots' });
        node('d').receive({ topic: 'select', payload: 'E9' });
        await sleep(50);
        const errs = errors(node('d'));
        assert.equal(errs.length, 2, errs.join('\n'));
        assert.match(errs[0]!, /^limit: /);
        assert.match(errs[1]!, /E9 is not a wallbox/);
        // Anything else (e.g. a ui-event on connect): everything again, changed or not.
        const again = nextMessage(node('tiles'), 1000);
        node('d').receive({ payload: 'hello' });
        assert.ok(await again);
    });

    it('refuses a bad configuration', async () => {
        await helper.load(allNodes(), flow(1, { page_size: '0' }) as unknown as Flow);
        await sleep(50);
        assert.match(errors(node('d')).join(), /bad-config/);
    });
});
