import type { Node, NodeAPI } from 'node-red';
import { sharedBusPool } from '../lib/modbus/shared-pool';
import { parseReadRef, readRegister, resolveTarget } from '../lib/nodes-support/modbus-access';
import { asError, siteFor, type FlowNodeDef } from './shared/flow-node';
import { requestOf } from './shared/modbus-node';

const TYPE = 'evcm-modbus-read';
/** Never wait past Node-RED's close limit for a bus to close. */
const CLOSE_TIMEOUT_MS = 5000;

export = function (RED: NodeAPI) {
    function EvcmModbusReadNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        const pool = sharedBusPool();
        const fc = String(def.fc) === '4' ? 4 : 3;
        const used = new Set<string>();
        this.on('input', (msg, send, done) => {
            let label = '';
            void Promise.resolve()
                .then(() => {
                    const req = requestOf(def, msg);
                    const target = resolveTarget(site, req.device, req.unit);
                    const ref = parseReadRef(req.register);
                    label = `${target.name} ${req.register}`;
                    used.add(JSON.stringify(target.bus));
                    this.status({ fill: 'yellow', shape: 'dot', text: label });
                    return readRegister(pool, this.id, target, ref, req.count, fc).then((value) => {
                        Object.assign(msg, {
                            payload: value,
                            device: req.device,
                            register: req.register,
                        });
                        return value;
                    });
                })
                .then(
                    (value) => {
                        const shown = typeof value === 'object' ? '…' : String(value);
                        this.status({
                            fill: 'green',
                            shape: 'dot',
                            text: `${label} = ${shown}`.slice(0, 24),
                        });
                        send(msg);
                        done();
                    },
                    (e: unknown) => {
                        const err = asError(e);
                        this.status({
                            fill: 'red',
                            shape: 'ring',
                            text: RED._(`${TYPE}.status.error`),
                        });
                        done(err);
                    },
                );
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            const timer = setTimeout(done, CLOSE_TIMEOUT_MS);
            void Promise.all(
                [...used].map((b) => pool.release(JSON.parse(b) as never, this.id)),
            ).finally(() => {
                clearTimeout(timer);
                done();
            });
        });
    }
    RED.nodes.registerType(TYPE, EvcmModbusReadNode);
};
