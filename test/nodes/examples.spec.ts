import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import { freePortBlock } from '../../lib/sim/powerbrain-sim';
import { startBroker, type TestBroker } from '../support/mqtt-broker';
import { allNodes, errors, sleep, type Flow, type HelperNode } from '../support/node-red';

helper.init(require.resolve('node-red'));

const root = join(__dirname, '..', '..', '..');
const examplesDir = join(root, 'examples');
const ours = Object.keys(
    (
        JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
            'node-red': { nodes: Record<string, string> };
        }
    )['node-red'].nodes,
);
const CORE = [
    ...['inject', 'debug', 'function', 'change', 'comment', 'switch', 'catch', 'status'],
    ...['mqtt in', 'mqtt out', 'mqtt-broker'],
];
/** FlowFuse Dashboard 2 (a devDependency; the dashboard example needs it in the user's palette). */
const DASHBOARD = Object.keys(
    (
        JSON.parse(
            readFileSync(require.resolve('@flowfuse/node-red-dashboard/package.json'), 'utf8'),
        ) as { 'node-red': { nodes: Record<string, string> } }
    )['node-red'].nodes,
);
/** Its configuration nodes (base, page, group, theme): no messages pass through them. */
const DASHBOARD_CONFIG = ['ui-base', 'ui-page', 'ui-link', 'ui-group', 'ui-theme'];
const coreNodes = [
    'common/20-inject',
    'function/10-function',
    'function/15-change',
    'network/10-mqtt',
].map((f) => require(require.resolve(`@node-red/nodes/core/${f}.js`)) as never);

type NodeDef = { id: string; type: string; port?: string; devices?: string; [k: string]: unknown };

/** An example with its simulator ports moved to free ones, so tests never collide. */
export function exampleFlow(file: string, port: number): NodeDef[] {
    const text = readFileSync(join(examplesDir, file), 'utf8')
        .replace(/4701/g, String(port))
        .replace(/4702/g, String(port + 1))
        .replace(/4703/g, String(port + 2));
    return JSON.parse(text) as NodeDef[];
}

describe('examples', function () {
    this.timeout(30_000);
    // An example with an MQTT broker node talks to a real broker (on a free port in the test).
    let broker: TestBroker | undefined;
    afterEach(async () => {
        await helper.unload();
        await broker?.close();
        broker = undefined;
    });
    const files = readdirSync(examplesDir).filter((f) => f.endsWith('.json'));

    it('there are examples for Import → Examples', () => {
        assert.ok(files.length >= 4, files.join());
    });

    for (const file of files) {
        it(`${file}: parses, uses only core and our nodes, deploys without errors`, async () => {
            const flow = exampleFlow(file, await freePortBlock(3));
            assert.ok(Array.isArray(flow));
            for (const n of flow.filter((f) => f.type === 'mqtt-broker')) {
                assert.equal(n.port, '1883', `${n.id}: the broker's usual port`);
                broker ??= await startBroker();
                n.port = String(broker.port);
            }
            for (const n of flow) {
                assert.ok(
                    ours.includes(n.type) || CORE.includes(n.type) || DASHBOARD.includes(n.type),
                    `${n.id}: ${n.type} is neither a core node, a Dashboard 2 widget nor ours`,
                );
                // Dashboard widgets only show and ask: the logic stays in our nodes.
                if (DASHBOARD.includes(n.type)) assert.ok(!flow.some((f) => f.type === 'function'));
                assert.ok(!n.z, `${n.id} must not belong to a tab`);
            }
            // The helper has no Dashboard 2: its widgets become helper nodes that receive what
            // our nodes send them (the browser test runs the real dashboard).
            const runnable = flow
                .filter((n) => n.type !== 'comment' && !DASHBOARD_CONFIG.includes(n.type))
                .map((n) =>
                    n.type === 'debug' || DASHBOARD.includes(n.type)
                        ? { id: n.id, type: 'helper' }
                        : n,
                )
                .map((n) => (n.type === 'evcm-manager' ? n : { ...n, z: 'tab' }));
            const tab = { id: 'tab', type: 'tab', label: file };
            const modules = [...(allNodes() as never[]), ...coreNodes];
            await helper.load(modules, [tab, ...runnable] as unknown as Flow);
            for (const n of runnable)
                assert.ok(helper.getNode(n.id), `${n.id} (${n.type}) started`);
            const received: { topic?: unknown }[] = [];
            for (const n of runnable.filter((r) => r.type === 'helper')) {
                (helper.getNode(n.id) as unknown as HelperNode).on(
                    'input',
                    (m: { topic?: unknown }) => received.push(m),
                );
            }
            await sleep(2500);
            for (const n of runnable) {
                const node = helper.getNode(n.id) as unknown as HelperNode;
                assert.deepEqual(errors(node), [], `${n.id} (${n.type})`);
            }
            assert.ok(received.length > 0, 'the example produced messages');
            // Through the broker and back: a client's API call was answered.
            if (broker)
                assert.ok(
                    received.some((m) => /\/api_res$/.test(String(m.topic))),
                    file,
                );
        });
    }
});
