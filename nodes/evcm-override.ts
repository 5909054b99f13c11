import type { Node, NodeAPI } from 'node-red';
import { z } from 'zod';
import { runCnfCommand } from '../lib/nodes-support/cnf-call';
import { asError, badConfig, DevIdSchema, siteFor, type FlowNodeDef } from './shared/flow-node';
import { showCycleFailures } from './shared/status';
import { cnfContextOf } from './shared/cnf';
import { getManager } from './shared/types';

const TYPE = 'evcm-override';

/** msg.payload: flags as a string ("C", "ce"…), or an object with the override_device fields. */
const InputSchema = z.union([
    z.string().transform((flags) => ({ flags })),
    z.object({
        dev_id: z.string().optional(),
        flags: z.string().optional(),
        mamps: z.coerce.number().finite().optional(),
        rfid: z.string().optional(),
    }),
]);

export = function (RED: NodeAPI) {
    function EvcmOverrideNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const devId = DevIdSchema('E').safeParse(def.dev_id);
        if (!devId.success) return badConfig(RED, this, TYPE, devId.error.issues[0]!.message);
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
            const input = InputSchema.safeParse(msg.payload ?? '');
            if (!input.success) {
                done(new Error(`payload: ${input.error.issues[0]!.message}`));
                return;
            }
            const o = input.data as {
                dev_id?: string;
                flags?: string;
                mamps?: number;
                rfid?: string;
            };
            const dev = o.dev_id ?? devId.data;
            ready
                .then(() =>
                    runCnfCommand(
                        ctx,
                        {
                            cmd: 'override_device',
                            dev_id: dev,
                            flags: o.flags ?? (def.flags as string | undefined),
                            mamps:
                                o.mamps ??
                                (def.mamps === '' ? undefined : (def.mamps as string | undefined)),
                            rfid: o.rfid,
                        },
                        `flow:${this.id}`,
                    ),
                )
                .then(
                    (result) => {
                        this.status({
                            fill: 'blue',
                            shape: 'dot',
                            text: `${dev}: ${o.flags ?? def.flags ?? ''} ${o.mamps ?? ''}`.trim(),
                        });
                        send({ ...msg, topic: dev, payload: result });
                        done();
                    },
                    (e: unknown) => done(asError(e)),
                );
        });
    }
    RED.nodes.registerType(TYPE, EvcmOverrideNode);
};
