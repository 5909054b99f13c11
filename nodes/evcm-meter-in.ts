import type { Node, NodeAPI } from 'node-red';
import { meterReadingFrom } from '../lib/nodes-support/ajax';
import { asError, badConfig, DevIdSchema, siteFor, type FlowNodeDef } from './shared/flow-node';
import { watchDevice } from './shared/status';

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
        const off = watchDevice(RED, this, TYPE, site, () => devId.data);
        this.on('input', (msg, send, done) => {
            try {
                site.push(devId.data, meterReadingFrom(msg.payload, Date.now()));
                done();
            } catch (e) {
                done(asError(e));
            }
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            off();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmMeterInNode);
};
