// The request as /cnf sees it: query parameters (possibly repeated) and an optional raw body that
// is JSON whatever its Content-Type.
import { badRequest, CnfError } from './errors';

/** Longest value of one query parameter (characters). */
export const MAX_PARAM_LENGTH = 4096;
/** Largest request body (bytes). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Most query parameters in one request. */
export const MAX_PARAMS = 64;
/** Deepest nesting of arrays and objects in a JSON body: every real body is far shallower. */
export const MAX_JSON_DEPTH = 32;

/**
 * A number as clients write it in a query: "8000", "8000.0" (Home Assistant sends floats),
 * " 8e3 ", "+5", ".5". Not hex, not Infinity or NaN, not empty.
 */
const DECIMAL_RE = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** The number in decimal text, or undefined when the text is not one (or not finite). */
export function parseDecimal(text: string): number | undefined {
    if (!DECIMAL_RE.test(text)) return undefined;
    const n = Number(text);
    return Number.isFinite(n) ? n : undefined;
}

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
    if (jsonDepth(text) > MAX_JSON_DEPTH) {
        throw badRequest(`body is nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    try {
        return JSON.parse(text) as unknown;
    } catch {
        throw badRequest('body is not valid JSON');
    }
}

/**
 * How deeply arrays and objects nest in JSON text, counted without parsing: brackets inside
 * strings do not count. Deep nesting is refused before anything recurses over it.
 */
export function jsonDepth(text: string): number {
    let depth = 0;
    let deepest = 0;
    let inString = false;
    for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (inString) {
            if (c === 0x5c)
                i++; // backslash: skip the escaped character
            else if (c === 0x22) inString = false;
        } else if (c === 0x22) inString = true;
        else if (c === 0x5b || c === 0x7b) {
            if (++depth > deepest) deepest = depth;
        } else if (c === 0x5d || c === 0x7d) depth--;
    }
    return deepest;
}

/** The charset named in a Content-Type header ('' when none). */
function charsetOf(contentType: string | undefined): string {
    const m = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType ?? '');
    return m ? m[1]!.toLowerCase() : '';
}

/**
 * A raw request body as text, decoded in the charset its Content-Type names (UTF-8 when none:
 * the body is JSON whatever the type). An unknown charset is a 415, never a parser's error page.
 */
export function decodeBody(bytes: Uint8Array, contentType: string | undefined): string {
    const charset = charsetOf(contentType) || 'utf-8';
    let decoder: TextDecoder;
    try {
        decoder = new TextDecoder(charset);
    } catch {
        throw new CnfError(415, `unsupported charset ${charset.slice(0, 40)}`);
    }
    return decoder.decode(bytes);
}

/** A JSON object body, or a 400 naming what was sent instead. */
export function objectBody(body: unknown): Record<string, unknown> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw badRequest('body must be a JSON object');
    }
    return body as Record<string, unknown>;
}
