import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import helper from 'node-red-node-test-helper';
import managerNode = require('../../nodes/evcm-manager');
import statusNode = require('../../nodes/evcm-status');
import cnfNode = require('../../nodes/evcm-cnf');
import { storeFileFor } from '../../lib/cnf/persistence';
import { Site } from '../../lib/site/site';
import type { SiteSummary } from '../../lib/site/status';
import { emptyDocument } from '../../lib/store/schema';
import { errors, statuses, type HelperNode } from '../support/node-red';
import type { ManagerNode } from '../../nodes/shared/types';
import { demoFlow } from '../support/demo';
import { allNodes } from '../support/node-red';

helper.init(require.resolve('node-red'));

type Flow = Parameters<typeof helper.load>[1];
const injectNode = require(require.resolve('@node-red/nodes/core/common/20-inject.js')) as never;

/** The demo flow on free ports, its debug nodes as helper nodes. */
const loadDemo = async () => {
    const flow = (await demoFlow()).flow
        .filter((n) => n.type !== 'comment')
        .map((n) => (n.type === 'debug' ? { id: n.id, type: 'helper', z: n.z } : n));
    await helper.load([...(allNodes() as never[]), injectNode], flow as unknown as Flow);
};

describe('evcm-manager and evcm-status nodes', function () {
    this.timeout(20_000);
    afterEach(() => helper.unload());

    it('runs the demo site and reports its state on change', async () => {
        await loadDemo();
        const manager = helper.getNode('evcm-demo-manager') as unknown as ManagerNode;
        assert.ok(manager.site, manager.configError);
        const out = helper.getNode('evcm-demo-debug') as unknown as NodeJS.EventEmitter;
        const summary = await new Promise<SiteSummary>((resolve) =>
            out.on('input', (msg: { payload: SiteSummary }) => resolve(msg.payload)),
        );
        assert.deepEqual(
            summary.evses.map((e) => e.dev_id),
            ['E1', 'E2', 'E3', 'E4'],
        );
        for (let p = 0; p < 3; p++) {
            assert.ok(
                summary.evseLoad[p]! + summary.nonEvseLoad[p]! <= summary.budget[p]!,
                `phase ${p + 1}`,
            );
        }
        const status = helper.getNode('evcm-demo-status');
        assert.ok((status.status as unknown as { called: boolean }).called, 'status ring set');
    });

    it('rejects a bad configuration with a message that names the field', async () => {
        const flow = [
            {
                id: 'm1',
                type: 'evcm-manager',
                max_total_current: '32000',
                devices: '[{"dev_type":"evse_sim","dev_id":"X1"}]',
            },
            { id: 's1', type: 'evcm-status', manager: 'm1', wires: [[]] },
        ];
        await helper.load([managerNode, statusNode], flow as unknown as Flow);
        const manager = helper.getNode('m1') as unknown as ManagerNode;
        assert.equal(manager.site, null);
        assert.match(manager.configError, /devices\[0\]\.dev_id/);
        const s1 = helper.getNode('s1');
        assert.ok((s1.error as unknown as { called: boolean }).called);
    });

    it('closes cleanly: the simulators detach, no subscription is left', async () => {
        await loadDemo();
        const manager = helper.getNode('evcm-demo-manager') as unknown as ManagerNode;
        const site = manager.site!;
        await site.manager.runCycle();
        assert.equal(site.world.attachedLoads, 3, 'the three simulated cars are measured');
        await helper.unload();
        assert.equal(site.world.attachedLoads, 0, 'the simulators detached');
        assert.equal(site.manager.events.count(), 0, 'no subscriptions left');
    });
});

describe('evcm-manager with a store (userDir set)', function () {
    this.timeout(20_000);
    let userDir: string;
    const flow = [
        {
            id: 'm1',
            type: 'evcm-manager',
            max_total_current: '32000',
            cycle_ms: '200',
            devices: '[{"dev_type":"evse_sim","dev_id":"E1"}]',
        },
        { id: 'c1', type: 'evcm-cnf', manager: 'm1', path: '/cnf-store' },
    ] as unknown as Flow;
    const originalStart = Site.prototype.start;
    let startedWith: (number | string)[];

    beforeEach(() => {
        userDir = mkdtempSync(join(tmpdir(), 'evcm-userdir-'));
        mkdirSync(dirname(storeFileFor(userDir, 'm1')), { recursive: true });
        helper.settings({ userDir });
        startedWith = [];
        Site.prototype.start = function (this: Site) {
            startedWith.push(this.params.max_total_current);
            originalStart.call(this);
        };
    });
    afterEach(async () => {
        Site.prototype.start = originalStart;
        await helper.unload();
        helper.settings({ userDir: undefined });
        rmSync(userDir, { recursive: true, force: true });
    });

    it('control starts only once the stored changes are applied', async () => {
        const stored = { ...emptyDocument(), params: { max_total_current: 20000 } };
        writeFileSync(storeFileFor(userDir, 'm1'), JSON.stringify(stored));
        await helper.load([managerNode, cnfNode], flow);
        const manager = helper.getNode('m1') as unknown as ManagerNode;
        await manager.ready;
        assert.deepEqual(startedWith, [20000], 'the first cycle already uses the stored value');
        assert.equal(manager.storeProblem, '');
    });

    it('a corrupt store: reported on the manager and the evcm-cnf status; editor config runs', async () => {
        writeFileSync(storeFileFor(userDir, 'm1'), 'not json');
        await helper.load([managerNode, cnfNode], flow);
        const manager = helper.getNode('m1') as unknown as ManagerNode;
        await manager.ready;
        assert.deepEqual(startedWith, [32000]);
        // (the test helper has no message catalogue: RED._ gives the message key)
        assert.match(manager.storeProblem, /store-corrupt|could not be read/);
        assert.deepEqual(errors(manager as unknown as HelperNode), [manager.storeProblem]);
        const cnf = helper.getNode('c1') as unknown as HelperNode;
        assert.equal(statuses(cnf).at(-1)?.fill, 'yellow');
        assert.equal(
            readdirSync(dirname(storeFileFor(userDir, 'm1'))).filter((n) => n.includes('.corrupt-'))
                .length,
            1,
        );
    });
});
