import type { Node, NodeAPI } from 'node-red';
import { runCnfCommand } from '../lib/nodes-support/cnf-call';
import { cnfContextOf } from './shared/cnf';
import { asError, badConfig, DevIdSchema, siteFor, type FlowNodeDef } from './shared/flow-node';
import { watchDevice } from './shared/status';
import { getManager } from './shared/types';

const TYPE = 'evcm-meter-in';

export = function (RED: NodeAPI) {
    function EvcmMeterInNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const devId = DevIdSchema('M').safeParse(def.dev_id);
        if (!devId.success) return badConfig(RED, this, TYPE, devId.error.issues[0]!.message);
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        const entry = site.device(devId.data);
        if (entry?.dev_type !== 'meter_ajax') {
            const what = entry ? `a ${entry.dev_type}` : 'not in the device table';
            return badConfig(RED, this, TYPE, `${devId.data} is ${what}; it must be a meter_ajax`);
        }
        const manager = getManager(RED, def.manager)!;
        const ctx = cnfContextOf(manager, site);
        const watch = watchDevice(RED, this, TYPE, site, () => devId.data);
        // Readings go in the order they arrived, after the manager has applied its store.
        let queue: Promise<unknown> = manager.ready ?? Promise.resolve();
        this.on('input', (msg, _send, done) => {
            queue = queue
                .then(() =>
                    runCnfCommand(ctx, { cmd: 'set_ajax_meter', dev_id: devId.data }, msg.payload),
                )
                .then(
                    () => {
                        watch.problem(null);
                        done();
                    },
                    (e: unknown) => {
                        const err = asError(e);
                        watch.problem(err.message);
                        done(err);
                    },
                );
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            watch.off();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmMeterInNode);
};
