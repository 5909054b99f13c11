import type { Node, NodeAPI } from 'node-red';
import { z } from 'zod';
import type { SessionRecord } from '../lib/sessions/record';
import { asError, siteFor, type FlowNodeDef } from './shared/flow-node';
import { cnfContextOf } from './shared/cnf';
import { showCycleFailures } from './shared/status';
import { getManager } from './shared/types';

const TYPE = 'evcm-sessions';

/** msg.payload of a query: which recorded sessions to send (all fields optional). */
const QuerySchema = z
    .object({
        from: z.union([z.number(), z.string()]).optional(),
        to: z.union([z.number(), z.string()]).optional(),
        user: z.string().min(1).optional(),
        dev_id: z.string().min(1).optional(),
        max: z.number().int().positive().optional(),
    })
    .strict();

/** A time as ms since 1970 or an ISO 8601 date. */
function timeOf(v: number | string | undefined, what: string): number | undefined {
    if (v === undefined) return undefined;
    const t = typeof v === 'number' ? v : Date.parse(v);
    if (!Number.isFinite(t))
        throw new Error(`payload.${what}: must be ms since 1970 or an ISO date`);
    return t;
}

export = function (RED: NodeAPI) {
    function EvcmSessionsNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        const book = cnfContextOf(getManager(RED, def.manager)!, site).sessions;
        const topic = typeof def.topic === 'string' && def.topic ? def.topic : 'evcm/session';
        let count = 0;
        const show = (r: SessionRecord): void => {
            const kwh = (r.energy_wh / 1000).toFixed(2);
            this.status({ fill: 'green', shape: 'dot', text: `${count}: ${r.dev_id} ${kwh} kWh` });
        };
        // Each session once it has ended and its record is written: bill it, store it, post it.
        const off = book.events.on('recorded', ({ record, error }) => {
            count++;
            show(record);
            if (error) this.warn(RED._(`${TYPE}.errors.not-written`, { error: error.message }));
            this.send({ topic, payload: record });
        });
        const offFailures = showCycleFailures(RED, this, TYPE, site, () => this.status({}));
        // A message asks for recorded sessions: msg.payload filters them (from, to, user, dev_id, max).
        this.on('input', (msg, send, done) => {
            const q = QuerySchema.safeParse(msg.payload ?? {});
            if (!q.success) {
                const issue = q.error.issues[0]!;
                done(
                    new Error(
                        `payload${issue.path.length ? '.' + issue.path.join('.') : ''}: ${issue.message}`,
                    ),
                );
                return;
            }
            let filter;
            try {
                filter = {
                    from: timeOf(q.data.from, 'from'),
                    to: timeOf(q.data.to, 'to'),
                    user: q.data.user,
                    dev_id: q.data.dev_id?.toUpperCase(),
                    limit: q.data.max,
                };
            } catch (err) {
                done(asError(err));
                return;
            }
            book.query(filter).then(
                (records) => {
                    send({ ...msg, topic, payload: records });
                    done();
                },
                (err: unknown) => done(asError(err)),
            );
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            off();
            offFailures();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmSessionsNode);
};
