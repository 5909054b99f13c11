// The editor fields of a node that serves on Node-RED's own port under a path and, optionally, on
// a listener of its own (host, port, TLS from a tls-config node): evcm-cnf and evcm-ocpp.
import { z } from 'zod';

/** The path under Node-RED's own port, with its default. */
export function servedPath(fallback: string) {
    return z
        .string()
        .regex(
            /^\/[A-Za-z0-9_\-./]{0,100}$/,
            'path must start with / and hold only A-Z a-z 0-9 _ - . /',
        )
        .default(fallback);
}

export const ownListenerFields = {
    /** Own listener: '' = none (only Node-RED's own port). */
    port: z
        .union([z.literal(''), z.coerce.number().int().min(1).max(65535)], {
            message: 'port must be empty or 1..65535',
        })
        .default(''),
    host: z
        .string()
        .regex(/^[A-Za-z0-9.:\-[\]%]{0,255}$/, 'host must be a host name or IP address')
        .default(''),
    usetls: z.boolean().default(false),
    tls: z.string().default(''),
};
