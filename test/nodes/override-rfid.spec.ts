import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import managerNode = require('../../nodes/evcm-manager');
import overrideNode = require('../../nodes/evcm-override');
import rfidNode = require('../../nodes/evcm-rfid');
import { handleCnf } from '../../lib/cnf/handle';
import { cnfContextOf } from '../../nodes/shared/cnf';
import type { ManagerNode } from '../../nodes/shared/types';

helper.init(require.resolve('node-red'));

type Flow = Parameters<typeof helper.load>[1];
type Msg = { payload: unknown; topic?: string };

const flow = () =>
    [
        {
            id: 'm1',
            type: 'evcm-manager',
            max_total_current: '32000',
            // a known card, for no wallbox in particular: E1 needs no authorisation
            users: JSON.stringify([{ id: '2167520770', name: 'Anna', rfids: [{ id: '4711' }] }]),
            devices: JSON.stringify([
                { dev_type: 'evse_sim', dev_id: 'E1', max_charging_cur: 16000 },
                { dev_type: 'meter_sim', dev_id: 'M1', role: 3 },
            ]),
        },
        {
            id: 'o1',
            type: 'evcm-override',
            manager: 'm1',
            dev_id: 'E1',
            flags: '',
            mamps: '',
            wires: [['h1']],
        },
        { id: 'r1', type: 'evcm-rfid', manager: 'm1', dev_id: '', wires: [['h2']] },
        { id: 'h1', type: 'helper' },
        { id: 'h2', type: 'helper' },
    ] as unknown as Flow;

function next(id: string): Promise<Msg> {
    return new Promise((resolve) =>
        (helper.getNode(id) as unknown as NodeJS.EventEmitter).once('input', resolve),
    );
}
function nextError(id: string): Promise<string> {
    return new Promise((resolve) =>
        (helper.getNode(id) as unknown as NodeJS.EventEmitter).once(
            'call:error',
            (call: { args: unknown[] }) => resolve(String(call.args[0])),
        ),
    );
}

describe('evcm-override and evcm-rfid nodes', function () {
    this.timeout(20_000);
    afterEach(() => helper.unload());

    for (const password of ['', 'secret']) {
        it(`override C stops a wallbox, c lets it charge again (admin password ${password ? 'set' : 'not set'})`, async () => {
            await helper.load([managerNode, overrideNode, rfidNode], flow(), {
                m1: { adminPassword: password },
            } as never);
            const manager = helper.getNode('m1') as unknown as ManagerNode;
            assert.equal(manager.adminPassword, password);
            const site = manager.site!;
            await site.manager.runCycle();
            const got = next('h1');
            helper.getNode('o1').receive({ payload: 'C' } as never);
            const msg = await got;
            assert.equal(msg.payload, 'ok');
            assert.equal(msg.topic, 'E1');
            await site.manager.runCycle();
            assert.equal(site.manager.lastCycle!.result.setpoints.get('E1')!.current, 0);
            const again = next('h1');
            helper.getNode('o1').receive({ payload: { flags: 'c', mamps: 8000 } } as never);
            await again;
            await site.manager.runCycle();
            assert.equal(site.manager.lastCycle!.snapshot.limits?.get('E1'), 8000);
        });
    }

    it('reports a bad override with the API message, as an error of the node', async () => {
        await helper.load([managerNode, overrideNode, rfidNode], flow());
        const err = nextError('o1');
        helper.getNode('o1').receive({ payload: 'X' } as never);
        assert.match(await err, /flags may only hold C c E e U u/);
        const err2 = nextError('o1');
        helper.getNode('o1').receive({ payload: { mamps: 3000 } } as never);
        assert.match(await err2, /mamps must be 0 \(no limit\) or at least 6000/);
        const err3 = nextError('o1');
        helper.getNode('o1').receive({ payload: 42 } as never);
        assert.match(await err3, /payload/);
    });

    it('enters an RFID at a wallbox, and names the problem when it cannot', async () => {
        await helper.load([managerNode, overrideNode, rfidNode], flow());
        const got = next('h2');
        helper.getNode('r1').receive({ payload: { rfid: '4711', dev_id: 'E1' } } as never);
        const msg = await got;
        assert.equal(msg.payload, 'ok');
        const err = nextError('r1');
        helper.getNode('r1').receive({ payload: { rfid: '4711', dev_id: 'E9' } } as never);
        assert.match(await err, /enter_rfid: .*(unknown|E9)/);
        const err2 = nextError('r1');
        helper.getNode('r1').receive({ payload: { card: 1 } } as never);
        assert.match(await err2, /payload/);
        // A card that is nobody's is refused: an error of the node, with a red ring.
        const err3 = nextError('r1');
        helper.getNode('r1').receive({ payload: { rfid: '9999', dev_id: 'E1' } } as never);
        assert.match(await err3, /enter_rfid: unknown RFID\/PIN/);
        const status = (helper.getNode('r1').status as unknown as { lastCall: { args: unknown[] } })
            .lastCall.args[0] as { fill: string; shape: string };
        assert.deepEqual([status.fill, status.shape], ['red', 'ring']);
    });
});

describe('messages at start-up', function () {
    this.timeout(20_000);
    let userDir: string;
    beforeEach(() => {
        userDir = mkdtempSync(join(tmpdir(), 'evcm-flow-'));
        helper.settings({ userDir });
    });
    afterEach(async () => {
        await helper.unload();
        helper.settings({ userDir: undefined });
        rmSync(userDir, { recursive: true, force: true });
    });

    it('wait until the manager has applied its store, as /cnf requests do', async () => {
        await helper.load([managerNode, overrideNode, rfidNode], flow());
        const manager = helper.getNode('m1') as unknown as ManagerNode;
        let applied = false;
        void manager.ready.then(() => (applied = true));
        await Promise.resolve();
        assert.equal(applied, false, 'the store is still being opened');
        const override = next('h1');
        const rfid = next('h2');
        helper.getNode('o1').receive({ payload: 'C' } as never);
        helper.getNode('r1').receive({ payload: { rfid: '4711', dev_id: 'E1' } } as never);
        assert.equal((await override).payload, 'ok');
        assert.ok(applied, 'the override was answered after the store was applied');
        assert.equal((await rfid).payload, 'ok');
    });
});

describe('users from the editor', function () {
    this.timeout(20_000);
    afterEach(() => helper.unload());

    it('a wallbox with an editor user waits for the card, then charges', async () => {
        const users = JSON.stringify([
            { id: '2167520770', name: 'Anna', dev_ids: ['E1'], rfids: [{ id: '4711' }] },
        ]);
        const nodes = (flow() as unknown as Record<string, unknown>[]).map((n) =>
            n.id === 'm1' ? { ...n, userTable: users } : n,
        );
        await helper.load([managerNode, overrideNode, rfidNode], nodes as unknown as Flow);
        const site = (helper.getNode('m1') as unknown as ManagerNode).site!;
        await site.manager.runCycle();
        await site.manager.runCycle();
        assert.equal(site.manager.lastCycle!.snapshot.limits?.get('E1'), 0, 'waiting for a card');
        const got = next('h2');
        helper.getNode('r1').receive({ payload: '4711' } as never);
        assert.equal((await got).payload, 'ok');
        await site.manager.runCycle();
        assert.equal(site.manager.lastCycle!.snapshot.limits?.get('E1'), undefined, 'authorised');
    });

    it('an unknown card from a reader neither ends an authorised charge nor locks out HTTP clients', async () => {
        const users = JSON.stringify([
            { id: '2167520770', name: 'Anna', dev_ids: ['E1'], rfids: [{ id: '4711' }] },
        ]);
        const nodes = (flow() as unknown as Record<string, unknown>[]).map((n) =>
            n.id === 'm1' ? { ...n, userTable: users } : n,
        );
        await helper.load([managerNode, overrideNode, rfidNode], nodes as unknown as Flow);
        const manager = helper.getNode('m1') as unknown as ManagerNode;
        const site = manager.site!;
        const ok = next('h2');
        helper.getNode('r1').receive({ payload: { rfid: '4711', dev_id: 'E1' } } as never);
        assert.equal((await ok).payload, 'ok');
        await site.manager.runCycle();
        assert.equal(site.manager.lastCycle!.snapshot.limits?.get('E1'), undefined, 'authorised');
        const refusals: string[] = [];
        for (let i = 0; i < 7; i++) {
            const err = nextError('r1');
            helper.getNode('r1').receive({ payload: { rfid: '9999', dev_id: 'E1' } } as never);
            refusals.push(await err);
        }
        await site.manager.runCycle();
        assert.equal(
            site.manager.lastCycle!.snapshot.limits?.get('E1'),
            undefined,
            'still charging',
        );
        assert.match(refusals[0]!, /unknown RFID\/PIN/);
        assert.match(refusals.at(-1)!, /too many failed logins/, 'the reader is throttled');
        // The reader's failures are its own: an HTTP client on this machine is not blocked.
        const ctx = cnfContextOf(manager, site);
        const res = await handleCnf(
            {
                method: 'GET',
                query: 'cmd=enter_rfid&rfid=4711&dev_id=E1',
                remoteAddress: '127.0.0.1',
            },
            ctx,
        );
        assert.equal(res.status, 200, res.body);
    });

    it('a flow that still names the table `users` keeps its users: the wallbox waits for the card', async () => {
        const users = JSON.stringify([
            { id: '2167520770', name: 'Anna', dev_ids: ['E1'], rfids: [{ id: '4711' }] },
        ]);
        const nodes = (flow() as unknown as Record<string, unknown>[]).map((n) =>
            n.id === 'm1' ? { ...n, users } : n,
        );
        await helper.load([managerNode, overrideNode, rfidNode], nodes as unknown as Flow);
        const manager = helper.getNode('m1') as unknown as ManagerNode;
        assert.equal(manager.configError, '');
        const site = manager.site!;
        await site.manager.runCycle();
        await site.manager.runCycle();
        assert.equal(site.manager.lastCycle!.snapshot.limits?.get('E1'), 0, 'waiting for a card');
        const got = next('h2');
        helper.getNode('r1').receive({ payload: '4711' } as never);
        assert.equal((await got).payload, 'ok');
    });

    it('names a bad users table as a configuration error', async () => {
        const nodes = (flow() as unknown as Record<string, unknown>[]).map((n) =>
            n.id === 'm1' ? { ...n, userTable: '[{"id":"12"}]' } : n,
        );
        await helper.load([managerNode, overrideNode, rfidNode], nodes as unknown as Flow);
        const manager = helper.getNode('m1') as unknown as ManagerNode;
        assert.equal(manager.site, null);
        assert.match(manager.configError, /users\[0\]\.id/);
    });
});
