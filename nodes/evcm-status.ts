import type { Node, NodeAPI, NodeDef } from 'node-red';
import { statusOf, summarise } from '../lib/site/status';
import { getManager } from './shared/types';

interface StatusNodeDef extends NodeDef {
    manager: string;
}

export = function (RED: NodeAPI) {
    function EvcmStatusNode(this: Node, def: StatusNodeDef) {
        RED.nodes.createNode(this, def);
        const manager = getManager(RED, def.manager);
        if (!manager?.site) {
            this.error(RED._('evcm-status.errors.missing-config'));
            this.status({ fill: 'red', shape: 'ring', text: 'evcm-status.status.no-manager' });
            return;
        }
        const site = manager.site;
        let lastKey = '';
        const off = site.manager.events.on('cycle', (report) => {
            const summary = summarise(site, report);
            // Only on change: a dashboard or MQTT needs news, not a message every second.
            const key = JSON.stringify(summary.evses) + summary.failSafe;
            if (key === lastKey) return;
            lastKey = key;
            this.status(statusOf(summary));
            this.send({ topic: 'evcm/status', payload: summary });
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            off();
            done();
        });
    }
    RED.nodes.registerType('evcm-status', EvcmStatusNode);
};
