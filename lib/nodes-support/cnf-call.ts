// Flow nodes that act like /cnf commands (evcm-override, evcm-rfid) run them through the same
// command table as HTTP clients, with the flow credential in place of an admin password.
import type { CnfContext } from '../cnf/context';
import { handleCnf } from '../cnf/handle';

export class CnfCommandError extends Error {
    constructor(
        message: string,
        readonly status: number,
    ) {
        super(message);
        this.name = 'CnfCommandError';
    }
}

/**
 * Runs one /cnf command for a flow; resolves to its JSON answer, rejects with its error text.
 * `source` names the flow node: failed card and PIN attempts are throttled per node, apart from
 * the HTTP clients on this machine.
 */
export async function runCnfCommand(
    ctx: CnfContext,
    params: Record<string, string | number | undefined>,
    source = 'flow',
): Promise<unknown> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params))
        if (v !== undefined && v !== '') query.set(k, String(v));
    const res = await handleCnf(
        {
            method: 'GET',
            query: query.toString(),
            remoteAddress: source,
            authorization: ctx.auth.flowCredential,
        },
        ctx,
    );
    const body: unknown = JSON.parse(res.body || 'null');
    if (res.status >= 400) {
        throw new CnfCommandError(
            `${params.cmd}: ${typeof body === 'string' ? body : res.body}`,
            res.status,
        );
    }
    return body;
}
