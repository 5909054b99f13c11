// The request as /cnf sees it: query parameters (possibly repeated) and an optional raw body that
// is JSON whatever its Content-Type.
import { badRequest, CnfError } from './errors';

/** Longest value of one query parameter (characters). */
export const MAX_PARAM_LENGTH = 4096;
/** Largest request body (bytes). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Most query parameters in one request. */
export const MAX_PARAMS = 64;

export type RawQuery = string | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Query parameters by name, every value kept in order. */
export type Params = ReadonlyMap<string, readonly string[]>;

export function parseQuery(query: RawQuery | undefined): Params {
    const out = new Map<string, string[]>();
    const add = (k: string, v: string): void => {
        const list = out.get(k);
        if (list) list.push(v);
        else out.set(k, [v]);
    };
    if (typeof query === 'string') {
        const text = query.startsWith('?') ? query.slice(1) : query;
        let params: URLSearchParams;
        try {
            params = new URLSearchParams(text);
        } catch {
            throw badRequest('bad query string');
        }
        for (const [k, v] of params) add(k, v);
    } else if (query) {
        for (const [k, v] of Object.entries(query)) {
            if (v === undefined) continue;
            if (typeof v === 'string') add(k, v);
            else if (Array.isArray(v)) for (const x of v) add(k, String(x));
            else throw badRequest(`bad parameter ${k}`);
        }
    }
    let count = 0;
    for (const [k, vs] of out) {
        count += vs.length;
        if (k.length > 64) throw badRequest('parameter name too long');
        for (const v of vs) {
            if (v.length > MAX_PARAM_LENGTH) throw badRequest(`parameter ${k} too long`);
        }
    }
    if (count > MAX_PARAMS) throw badRequest('too many parameters');
    return out;
}

/** One value per name; a repeated name is refused unless listed in `repeatable`. */
export function single(params: Params, repeatable: readonly string[] = []): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, vs] of params) {
        if (vs.length > 1 && !repeatable.includes(k)) throw badRequest(`repeated parameter ${k}`);
        out[k] = vs[vs.length - 1]!;
    }
    return out;
}

/** The body as JSON: undefined when absent or blank. */
export function parseBody(body: string | undefined): unknown {
    if (body === undefined) return undefined;
    if (Buffer.byteLength(body) > MAX_BODY_BYTES) {
        throw new CnfError(413, 'request body too large');
    }
    const text = body.trim();
    if (!text) return undefined;
    try {
        return JSON.parse(text) as unknown;
    } catch {
        throw badRequest('body is not valid JSON');
    }
}

/** A JSON object body, or a 400 naming what was sent instead. */
export function objectBody(body: unknown): Record<string, unknown> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw badRequest('body must be a JSON object');
    }
    return body as Record<string, unknown>;
}
