import type { Node, NodeAPI } from 'node-red';
import { statusOf, summarise } from '../lib/site/status';
import { siteFor, type FlowNodeDef } from './shared/flow-node';
import { showCycleFailures } from './shared/status';

const TYPE = 'evcm-status';

export = function (RED: NodeAPI) {
    function EvcmStatusNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        const everyCycle = def.output === 'cycle';
        const topic = typeof def.topic === 'string' && def.topic ? def.topic : 'evcm/status';
        let lastKey = '';
        const emit = () => {
            const report = site.manager.lastCycle;
            if (!report) return;
            const summary = summarise(site, report);
            this.status(statusOf(summary));
            this.send({ topic, payload: summary });
        };
        const off = site.manager.events.on('cycle', (report) => {
            const summary = summarise(site, report);
            // By default only on change: a dashboard or MQTT needs news, not a message every second.
            const key = JSON.stringify(summary.evses) + summary.failSafe;
            if (!everyCycle && key === lastKey) return;
            lastKey = key;
            this.status(statusOf(summary));
            this.send({ topic, payload: summary });
        });
        // Red while cycles fail; the next good cycle shows its summary again (sent or not).
        const offFailures = showCycleFailures(RED, this, TYPE, site, () => {
            lastKey = '';
        });
        // Any input asks for the current state at once (e.g. a dashboard that just connected).
        this.on('input', (_msg, _send, done) => {
            emit();
            done();
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            off();
            offFailures();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmStatusNode);
};
