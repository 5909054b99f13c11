import type { Node, NodeAPI } from 'node-red';
import { parseReadRef, readRegister } from '../lib/nodes-support/modbus-access';
import { siteFor, type FlowNodeDef } from './shared/flow-node';
import { showCycleFailures } from './shared/status';
import { handleRegisterAccess } from './shared/modbus-node';

const TYPE = 'evcm-modbus-read';

export = function (RED: NodeAPI) {
    function EvcmModbusReadNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        // Red while the manager's cycles fail; the node's own status returns with the next good one.
        const offFailures = showCycleFailures(RED, this, TYPE, site, () => this.status({}));
        this.on('close', offFailures);
        const fc = String(def.fc) === '4' ? 4 : 3;
        handleRegisterAccess(RED, this, TYPE, def, site, async (pool, target, req, msg) => {
            const ref = parseReadRef(req.register);
            const value = await readRegister(pool, this.id, target, ref, req.count, fc);
            Object.assign(msg, { payload: value, device: req.device, register: req.register });
            return ` = ${typeof value === 'object' ? '…' : String(value)}`;
        });
    }
    RED.nodes.registerType(TYPE, EvcmModbusReadNode);
};
