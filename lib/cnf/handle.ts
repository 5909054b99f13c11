// handleCnf: one /cnf request → {status, headers, body}. Pure with respect to HTTP: the evcm-cnf
// node only adapts Express to it. Order: parse → find the command → authorise → validate →
// handle → commit; every failure becomes a short vendor-style JSON string with a 4xx status (5xx
// only for a device that does not answer or a change that could not be saved), never a stack
// trace.
import { COMMANDS, type AuthLevel, type CommandDef } from './commands';
import type { CnfContext } from './context';
import { badRequest, CnfError, notFound, toCnfError } from './errors';
import { RawJson, RawText } from './registers';
import { parseBody, parseQuery, single, type RawQuery } from './query';
import { describeIssues } from '../site/schema';

export interface CnfRequest {
    method: string;
    /** The raw query string (`cmd=…&…`) or already split parameters (values may repeat). */
    query: RawQuery | undefined;
    /** The raw request body, JSON whatever the Content-Type. */
    body?: string | undefined;
    remoteAddress?: string | undefined;
    /** The Authorization header. */
    authorization?: string | undefined;
}

export interface CnfResponse {
    status: number;
    headers: Record<string, string>;
    body: string;
}

const JSON_HEADERS = {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
} as const;

function respond(
    status: number,
    value: unknown,
    extra: Readonly<Record<string, string>> = {},
): CnfResponse {
    return { status, headers: { ...JSON_HEADERS, ...extra }, body: JSON.stringify(value) };
}

export function errorResponse(err: unknown): CnfResponse {
    const e = toCnfError(err);
    return respond(e.status, e.message, e.headers);
}

interface CachedView {
    key: readonly unknown[];
    body: string;
}
const viewCache = new WeakMap<CnfContext, CachedView>();

/** get_dev_info changes with each cycle, each change and each second: answer repeats from cache. */
function cachedDevInfo(ctx: CnfContext, run: () => unknown): string {
    const key = [
        ctx.site.manager.lastCycle,
        ctx.site.params,
        ctx.site.devices,
        ctx.revision,
        Math.floor(ctx.now() / 1000),
    ];
    const hit = viewCache.get(ctx);
    if (hit && hit.key.every((k, i) => k === key[i])) return hit.body;
    const body = JSON.stringify(run());
    viewCache.set(ctx, { key, body });
    return body;
}

export async function handleCnf(request: CnfRequest, ctx: CnfContext): Promise<CnfResponse> {
    try {
        const method = request.method.toUpperCase();
        if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') {
            throw new CnfError(405, 'method not allowed', { Allow: 'GET, POST' });
        }
        const raw = parseQuery(request.query);
        const cmdValues = raw.get('cmd');
        if (!cmdValues) throw badRequest('missing cmd');
        if (cmdValues.length > 1) throw badRequest('repeated parameter cmd');
        const cmd = cmdValues[0]!;
        if (!Object.prototype.hasOwnProperty.call(COMMANDS, cmd)) throw notFound('unknown command');
        const def = COMMANDS[cmd] as unknown as CommandDef<Record<string, unknown>>;
        const flat = single(raw, def.repeatable);
        const body = def.body ? parseBody(request.body) : undefined;
        if (!def.body && request.body !== undefined && Buffer.byteLength(request.body) > 65536) {
            throw new CnfError(413, 'request body too large');
        }
        const parsed = def.query.safeParse(flat);
        if (!parsed.success) throw badRequest(describeIssues(parsed.error));
        const q = parsed.data;
        const remoteAddress = request.remoteAddress ?? '';
        const level: AuthLevel = typeof def.auth === 'function' ? def.auth(q) : def.auth;
        if (level === 'admin') await ctx.auth.requireAdmin(request.authorization, remoteAddress);
        if (cmd === 'get_dev_info') {
            const text = cachedDevInfo(ctx, () =>
                def.handler({
                    ctx,
                    q,
                    raw,
                    body,
                    authorization: request.authorization,
                    remoteAddress,
                }),
            );
            return { status: 200, headers: { ...JSON_HEADERS }, body: text };
        }
        const changes = ctx.changes;
        const value = await def.handler({
            ctx,
            q,
            raw,
            body,
            authorization: request.authorization,
            remoteAddress,
        });
        // A control command is answered once a decision has taken it in (at once, between
        // cycles): the very next get_dev_info shows its effect.
        if (def.decides) await ctx.site.manager.decideNow();
        // A change that is kept across restarts is answered once it is on disk. (A handler that
        // awaited may have seen another request's change too: it then waits for that commit.)
        if (ctx.changes !== changes) await ctx.committed();
        if (value instanceof RawJson)
            return { status: 200, headers: { ...JSON_HEADERS }, body: value.text };
        if (value instanceof RawText) {
            const headers: Record<string, string> = {
                'Content-Type': value.contentType,
                'Cache-Control': 'no-store',
            };
            if (value.filename)
                headers['Content-Disposition'] = `attachment; filename="${value.filename}"`;
            return { status: 200, headers, body: value.text };
        }
        return respond(200, value);
    } catch (err) {
        return errorResponse(err);
    }
}

/**
 * GET /ui/en/sim.htm: the page some clients fetch with Basic auth only to check the admin
 * credentials (2xx = valid).
 */
export async function handleSimPage(
    request: Pick<CnfRequest, 'remoteAddress' | 'authorization'>,
    ctx: CnfContext,
): Promise<CnfResponse> {
    try {
        await ctx.auth.requireAdmin(request.authorization, request.remoteAddress ?? '');
        return {
            status: 200,
            headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' },
            body: '<!doctype html><title>Simulation</title><p>Credentials accepted.</p>\n',
        };
    } catch (err) {
        return errorResponse(err);
    }
}
