import type { Node, NodeAPI } from 'node-red';
import { parseRegisterRef } from '../lib/modbus/codec';
import { writeRegister } from '../lib/nodes-support/modbus-access';
import { siteFor, type FlowNodeDef } from './shared/flow-node';
import { showCycleFailures } from './shared/status';
import { handleRegisterAccess } from './shared/modbus-node';

const TYPE = 'evcm-modbus-write';

export = function (RED: NodeAPI) {
    function EvcmModbusWriteNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        // Red while the manager's cycles fail; the node's own status returns with the next good one.
        const offFailures = showCycleFailures(RED, this, TYPE, site, () => this.status({}));
        this.on('close', offFailures);
        handleRegisterAccess(RED, this, TYPE, def, site, async (pool, target, req, msg) => {
            await writeRegister(pool, this.id, target, parseRegisterRef(req.register), msg.payload);
            return ' ok';
        });
    }
    RED.nodes.registerType(TYPE, EvcmModbusWriteNode);
};
