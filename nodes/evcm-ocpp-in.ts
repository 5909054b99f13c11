import type { Node, NodeAPI, NodeDef } from 'node-red';
import { getOcpp } from './shared/types';

const TYPE = 'evcm-ocpp-in';

interface OcppInDef extends NodeDef {
    ocpp?: string;
    /** One identity, or '' for all. */
    identity?: string;
    /** 'in' = only what the charge points send (default), 'both' = and the answers/calls sent to them. */
    direction?: string;
}

export = function (RED: NodeAPI) {
    function EvcmOcppInNode(this: Node, def: OcppInDef) {
        RED.nodes.createNode(this, def);
        const ocpp = getOcpp(RED, def.ocpp);
        if (!ocpp?.central) {
            this.error(RED._('evcm-ocpp-in.errors.missing-config'));
            this.status({ fill: 'red', shape: 'ring', text: 'evcm-ocpp-in.status.error' });
            return;
        }
        const only = typeof def.identity === 'string' ? def.identity.trim() : '';
        const both = def.direction === 'both';
        let count = 0;
        const off = ocpp.messages.on('message', ({ identity, payload }) => {
            if (only && identity !== only) return;
            if (!both && payload.direction !== 'in') return;
            count++;
            this.send({ topic: identity, payload });
            this.status({
                fill: 'green',
                shape: 'dot',
                text: `${identity} ${payload.action} (${count})`.slice(0, 40),
            });
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            off();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmOcppInNode);
};
