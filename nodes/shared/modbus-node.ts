// Shared by evcm-modbus-read and -write: the request a message makes, from the node's config
// with msg.device / msg.register / msg.unit / msg.count taking precedence, and the handling of
// one register access.
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { z } from 'zod';
import { sharedBusPool } from '../../lib/modbus/shared-pool';
import type { BusPool } from '../../lib/modbus/pool';
import { resolveTarget, type ModbusTarget } from '../../lib/nodes-support/modbus-access';
import type { Site } from '../../lib/site/site';
import { asError } from './flow-node';

const text = z.union([z.string(), z.number()]).transform((v) => String(v).trim());

export const ModbusMsgSchema = z
    .object({
        device: text.optional(),
        register: text.optional(),
        unit: z.union([z.string(), z.number()]).optional(),
        count: z.union([z.string(), z.number()]).optional(),
    })
    .loose();

export interface ModbusRequestDef {
    device: string;
    register: string;
    unit: string | number | undefined;
    count: string | number | undefined;
}

export function requestOf(def: Record<string, unknown>, msg: unknown): ModbusRequestDef {
    const r = ModbusMsgSchema.safeParse(msg);
    if (!r.success) {
        const i = r.error.issues[0]!;
        throw new Error(`msg.${i.path.join('.')}: ${i.message}`);
    }
    const pick = (k: 'device' | 'register' | 'unit' | 'count') => {
        const m = r.data[k];
        if (m !== undefined && m !== '') return m;
        const d = def[k];
        return typeof d === 'string' || typeof d === 'number' ? d : undefined;
    };
    return {
        device: String(pick('device') ?? ''),
        register: String(pick('register') ?? ''),
        unit: pick('unit'),
        count: pick('count'),
    };
}

/** Never wait past Node-RED's close limit for a bus to close. */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * The input and close handling both Modbus nodes share: the request from msg and config, the
 * target on the manager's shared buses, status rings, errors to done(err), and letting go of every
 * bus the node used when it closes. `access` does the read or write and returns the ring's ending.
 */
export function handleRegisterAccess(
    RED: NodeAPI,
    node: Node,
    type: string,
    def: Record<string, unknown>,
    site: Site,
    access: (
        pool: BusPool,
        target: ModbusTarget,
        req: ModbusRequestDef,
        msg: NodeMessage,
    ) => Promise<string>,
): void {
    const pool = sharedBusPool();
    const used = new Set<string>();
    node.on('input', (msg, send, done) => {
        let label = '';
        void Promise.resolve()
            .then(() => {
                const req = requestOf(def, msg);
                const target = resolveTarget(site, req.device, req.unit);
                label = `${target.name} ${req.register}`;
                used.add(JSON.stringify(target.bus));
                node.status({ fill: 'yellow', shape: 'dot', text: label });
                return access(pool, target, req, msg);
            })
            .then(
                (ending) => {
                    node.status({
                        fill: 'green',
                        shape: 'dot',
                        text: `${label}${ending}`.slice(0, 24),
                    });
                    send(msg);
                    done();
                },
                (e: unknown) => {
                    node.status({
                        fill: 'red',
                        shape: 'ring',
                        text: RED._(`${type}.status.error`),
                    });
                    done(asError(e));
                },
            );
    });
    node.on('close', (_removed: boolean, done: () => void) => {
        const timer = setTimeout(done, CLOSE_TIMEOUT_MS);
        void Promise.all(
            [...used].map((b) => pool.release(JSON.parse(b) as never, node.id)),
        ).finally(() => {
            clearTimeout(timer);
            done();
        });
    });
}
