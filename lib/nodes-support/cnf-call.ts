// Flow nodes that act like /cnf commands (evcm-override, evcm-rfid, evcm-meter-in, evcm-evse-in)
// run them through the same command table as HTTP clients, with the flow credential in place of an
// admin password: one implementation, the same validation and the same errors.
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
 * With `body`, the command gets it as its JSON body (POST), as set_ajax_* clients send it.
 * `source` names the flow node: failed card and PIN attempts are throttled per node, apart from
 * the HTTP clients on this machine.
 */
export async function runCnfCommand(
    ctx: CnfContext,
    params: Record<string, string | number | undefined>,
    body?: unknown,
    source = 'flow',
): Promise<unknown> {
    let text: string | undefined;
    if (body !== undefined) {
        try {
            text = JSON.stringify(body);
        } catch (err) {
            throw new CnfCommandError(
                `${params.cmd}: payload is not JSON (${(err as Error).message})`,
                400,
            );
        }
    }
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params))
        if (v !== undefined && v !== '') query.set(k, String(v));
    const res = await handleCnf(
        {
            method: text === undefined ? 'GET' : 'POST',
            query: query.toString(),
            ...(text === undefined ? {} : { body: text }),
            remoteAddress: source,
            authorization: ctx.auth.flowCredential,
        },
        ctx,
    );
    const answer: unknown = JSON.parse(res.body || 'null');
    if (res.status >= 400) {
        throw new CnfCommandError(
            `${params.cmd}: ${typeof answer === 'string' ? answer : res.body}`,
            res.status,
        );
    }
    return answer;
}
