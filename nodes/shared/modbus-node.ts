// Shared by evcm-modbus-read and -write: the request a message makes, from the node's config
// with msg.device / msg.register / msg.unit / msg.count taking precedence.
import { z } from 'zod';

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
