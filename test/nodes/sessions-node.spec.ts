// evcm-sessions in the Node-RED runtime: a session that ends comes out as its record, once it is
// in the log under the user directory; a message asks for recorded sessions; a bad query is the
// node's error and nothing else.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import type { SessionRecord } from '../../lib/sessions/record';
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

describe('evcm-sessions', function () {
    this.timeout(20_000);
    let userDir: string;
    before(() => {
        userDir = mkdtempSync(join(tmpdir(), 'evcm-sessions-red-'));
        helper.settings({ userDir });
    });
    after(() => {
        helper.settings({});
        rmSync(userDir, { recursive: true, force: true });
    });
    afterEach(() => helper.unload());

    it('sends each ended session as written to the log, and the recorded ones when asked', async () => {
        await helper.load(allNodes(), [
            manager(
                'sm',
                [
                    { dev_type: 'evse_ajax', dev_id: 'E1', name: 'Carport', used_phases: 7 },
                    { dev_type: 'meter_ajax', dev_id: 'M1', name: 'Grid', role: 3 },
                ],
                { cycle_ms: '200' },
            ),
            { id: 'ei', type: 'evcm-evse-in', manager: 'sm', dev_id: 'E1' },
            { id: 'ss', type: 'evcm-sessions', manager: 'sm', wires: [['out']] },
            { id: 'out', type: 'helper' },
        ] as unknown as Flow);
        const push = async (state: number, wh: number) => {
            node('ei').receive({ payload: { state, total_energy: wh, current: [0, 0, 0] } });
            await sleep(450);
        };
        const ended = nextMessage<{ topic: string; payload: SessionRecord }>(node('out'), 8000);
        await push(2, 1000);
        await push(3, 1500);
        await push(1, 1750);
        const msg = await ended;
        assert.equal(msg.topic, 'evcm/session');
        assert.equal(msg.payload.dev_id, 'E1');
        assert.equal(msg.payload.name, 'Carport');
        assert.equal(msg.payload.energy_wh, 750);
        assert.equal(msg.payload.reason, 'unplugged');
        const file = join(userDir, 'evcm-charging-manager', 'sm.sessions.jsonl');
        assert.ok(existsSync(file));
        assert.equal(JSON.parse(readFileSync(file, 'utf8').trim()).id, msg.payload.id);

        const answer = nextMessage<{ payload: SessionRecord[] }>(node('out'));
        node('ss').receive({ payload: { dev_id: 'e1', from: '2020-01-01T00:00:00Z' } });
        assert.deepEqual(
            (await answer).payload.map((r) => r.id),
            [msg.payload.id],
        );
        const none = nextMessage<{ payload: SessionRecord[] }>(node('out'));
        node('ss').receive({ payload: { user: 'nobody' } });
        assert.deepEqual((await none).payload, []);

        node('ss').receive({ payload: { from: 'last tuesday' } });
        node('ss').receive({ payload: { colour: 'red' } });
        await sleep(50);
        const problems = errors(node('ss'));
        assert.equal(problems.length, 2, problems.join('\n'));
        assert.match(problems[0]!, /payload\.from/);
        assert.match(problems[1]!, /colour/);
    });

    it('a redeploy of the manager carries a running session on, recorded once', async () => {
        const flow = (maxTotal: string) =>
            [
                manager(
                    'rm',
                    [
                        { dev_type: 'evse_ajax', dev_id: 'E1', name: 'Carport', used_phases: 7 },
                        { dev_type: 'meter_ajax', dev_id: 'M1', name: 'Grid', role: 3 },
                    ],
                    { cycle_ms: '200', max_total_current: maxTotal },
                ),
                { id: 'ei', type: 'evcm-evse-in', manager: 'rm', dev_id: 'E1' },
                { id: 'ss', type: 'evcm-sessions', manager: 'rm', wires: [['out']] },
                { id: 'out', type: 'helper' },
            ] as unknown as Flow;
        const push = async (state: number, wh: number) => {
            node('ei').receive({ payload: { state, total_energy: wh, current: [0, 0, 0] } });
            await sleep(450);
        };
        await helper.load(allNodes(), flow('32000'));
        await push(2, 5000);
        await push(3, 5400);
        // The user changes the fuse and deploys: every node is made anew.
        await helper.setFlows(flow('25000'), 'full');
        const ended = nextMessage<{ payload: SessionRecord }>(node('out'), 8000);
        await push(3, 5900);
        await push(1, 6000);
        const r = (await ended).payload;
        assert.equal(r.energy_wh, 1000, 'the whole session, across the deploy');
        assert.equal(r.reason, 'unplugged');
        const lines = readFileSync(
            join(userDir, 'evcm-charging-manager', 'rm.sessions.jsonl'),
            'utf8',
        )
            .trim()
            .split('\n');
        assert.deepEqual(
            lines.map((l) => (JSON.parse(l) as SessionRecord).id),
            [r.id],
        );
    });
});
