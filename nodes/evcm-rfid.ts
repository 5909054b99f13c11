import type { Node, NodeAPI } from 'node-red';
import { z } from 'zod';
import { runCnfCommand } from '../lib/nodes-support/cnf-call';
import { asError, siteFor, type FlowNodeDef } from './shared/flow-node';
import { showCycleFailures } from './shared/status';
import { cnfContextOf } from './shared/cnf';
import { getManager } from './shared/types';

const TYPE = 'evcm-rfid';

/** msg.payload: the RFID or PIN (digits), or {rfid, dev_id}. */
const InputSchema = z.union([
    z
        .union([z.string(), z.number()])
        .transform((rfid) => ({ rfid: String(rfid), dev_id: undefined })),
    z.object({
        rfid: z.union([z.string(), z.number()]).transform(String),
        dev_id: z.string().optional(),
    }),
]);

export = function (RED: NodeAPI) {
    function EvcmRfidNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        // Red while the manager's cycles fail; the node's own status returns with the next good one.
        const offFailures = showCycleFailures(RED, this, TYPE, site, () => this.status({}));
        this.on('close', offFailures);
        const manager = getManager(RED, def.manager)!;
        const ctx = cnfContextOf(manager, site);
        // Messages wait until the manager has applied its stored settings, as /cnf requests do:
        // a card sent at start-up must find the users the store holds.
        const ready = manager.ready ?? Promise.resolve();
        this.on('input', (msg, send, done) => {
            const input = InputSchema.safeParse(msg.payload);
            if (!input.success) {
                done(new Error(`payload: ${input.error.issues[0]!.message}`));
                return;
            }
            const devId = input.data.dev_id ?? ((def.dev_id as string | undefined) || undefined);
            ready
                .then(() =>
                    runCnfCommand(
                        ctx,
                        { cmd: 'enter_rfid', rfid: input.data.rfid, dev_id: devId },
                        `flow:${this.id}`,
                    ),
                )
                .then(
                    (result) => {
                        this.status({
                            fill: 'green',
                            shape: 'dot',
                            text: devId ? `entered at ${devId}` : 'entered',
                        });
                        send({ ...msg, payload: result });
                        done();
                    },
                    (e: unknown) => {
                        // An unknown card or one refused here: shown until the next card.
                        const err = asError(e);
                        this.status({ fill: 'red', shape: 'ring', text: err.message.slice(0, 40) });
                        done(err);
                    },
                );
        });
    }
    RED.nodes.registerType(TYPE, EvcmRfidNode);
};
