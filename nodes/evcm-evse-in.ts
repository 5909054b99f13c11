import type { Node, NodeAPI } from 'node-red';
import { controlOf } from '../lib/cnf/ajax';
import { runCnfCommand } from '../lib/nodes-support/cnf-call';
import { cnfContextOf } from './shared/cnf';
import { asError, badConfig, DevIdSchema, siteFor, type FlowNodeDef } from './shared/flow-node';
import { watchDevice } from './shared/status';
import { getManager } from './shared/types';

const TYPE = 'evcm-evse-in';

export = function (RED: NodeAPI) {
    function EvcmEvseInNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const parsed = DevIdSchema('E').safeParse(def.dev_id);
        if (!parsed.success) return badConfig(RED, this, TYPE, parsed.error.issues[0]!.message);
        const devId = parsed.data;
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        const entry = site.device(devId);
        if (entry?.dev_type !== 'evse_ajax') {
            const what = entry ? `a ${entry.dev_type}` : 'not in the device table';
            return badConfig(RED, this, TYPE, `${devId} is ${what}; it must be an evse_ajax`);
        }
        const manager = getManager(RED, def.manager)!;
        const ctx = cnfContextOf(manager, site);
        const watch = watchDevice(RED, this, TYPE, site, () => devId);
        // The control object goes out whenever the manager changes what this wallbox may draw.
        const offSetpoint = site.manager.events.on('setpoint', ({ id, setpoint }) => {
            if (id !== devId) return;
            const enabled = site.device(devId)?.device_enabled ?? true;
            this.send({ topic: devId, payload: controlOf(setpoint, enabled) });
        });
        // Optionally every input is answered too, as set_ajax_evse answers every request.
        const answerEveryInput = def.output === 'input';
        // Readings go in the order they arrived, after the manager has applied its store.
        let queue: Promise<unknown> = manager.ready ?? Promise.resolve();
        this.on('input', (msg, send, done) => {
            queue = queue
                .then(() =>
                    runCnfCommand(ctx, { cmd: 'set_ajax_evse', dev_id: devId }, msg.payload),
                )
                .then(
                    (control) => {
                        watch.problem(null);
                        if (answerEveryInput) send({ ...msg, topic: devId, payload: control });
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
            offSetpoint();
            watch.off();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmEvseInNode);
};
