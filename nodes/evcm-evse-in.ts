import type { Node, NodeAPI } from 'node-red';
import { evseReadingFrom } from '../lib/nodes-support/ajax';
import { controlOf } from '../lib/nodes-support/control';
import { asError, badConfig, DevIdSchema, siteFor, type FlowNodeDef } from './shared/flow-node';
import { watchDevice } from './shared/status';

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
        const offRing = watchDevice(RED, this, TYPE, site, () => devId);
        // The control object goes out whenever the manager changes what this wallbox may draw.
        const offSetpoint = site.manager.events.on('setpoint', ({ id, setpoint }) => {
            if (id !== devId) return;
            const enabled = site.device(devId)?.device_enabled ?? true;
            this.send({ topic: devId, payload: controlOf(setpoint, enabled) });
        });
        // Optionally every input is answered too, as set_ajax_evse answers every request.
        const answerEveryInput = def.output === 'input';
        this.on('input', (msg, send, done) => {
            try {
                site.push(devId, evseReadingFrom(msg.payload, Date.now()));
                if (answerEveryInput) {
                    const setpoint = site.manager.lastCycle?.result.setpoints.get(devId);
                    const enabled = site.device(devId)?.device_enabled ?? true;
                    send({ ...msg, topic: devId, payload: controlOf(setpoint, enabled) });
                }
                done();
            } catch (e) {
                done(asError(e));
            }
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            offSetpoint();
            offRing();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmEvseInNode);
};
