// /cnf over HTTP, for the evcm-cnf node: which paths belong to the API, reading and decoding a
// request body, answering, and an own listener (HTTP or HTTPS) beside Node-RED's. Every answer on
// the API's paths is the API's JSON — never a framework's HTML page or a stack trace.
import {
    createServer as createHttpServer,
    type IncomingMessage,
    type Server,
    type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { CnfContext } from '../cnf/context';
import { CnfError } from '../cnf/errors';
import { errorResponse, handleCnf, handleSimPage, type CnfResponse } from '../cnf/handle';
import { decodeBody, MAX_BODY_BYTES } from '../cnf/query';

/** The page some clients fetch with Basic auth only to check the admin credentials. */
export const SIM_PAGE = '/ui/en/sim.htm';

export type CnfRoute = 'cnf' | 'sim';

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A path as clients write it: any letter case (as Express routes), repeated slashes
 * (`http://host//cnf` from a base URL that ends in a slash) and a trailing slash.
 */
export function pathPattern(path: string): RegExp {
    const parts = path.split('/').filter(Boolean).map(escape);
    return new RegExp(`^/+${parts.join('/+')}/*$`, 'i');
}

/** Which part of the API a request path (without query) is, if any. */
export function routeOf(pathname: string, cnf: RegExp, sim: RegExp): CnfRoute | null {
    if (cnf.test(pathname)) return 'cnf';
    if (sim.test(pathname)) return 'sim';
    return null;
}

/** The path of a request URL, without its query. */
export function pathnameOf(url: string | undefined): string {
    const u = url ?? '';
    const q = u.indexOf('?');
    return q >= 0 ? u.slice(0, q) : u;
}

type BodyRequest = IncomingMessage & { body?: unknown };

/** The raw body bytes: at most MAX_BODY_BYTES + 1 are kept (enough to see it is too large). */
function readBytes(req: BodyRequest): Promise<Buffer | undefined> {
    const parsed = req.body;
    if (Buffer.isBuffer(parsed)) return Promise.resolve(parsed);
    if (typeof parsed === 'string') return Promise.resolve(Buffer.from(parsed, 'utf8'));
    if (parsed && typeof parsed === 'object' && Object.keys(parsed).length) {
        // Parsed by a body parser of the host application: as JSON again.
        let text: string;
        try {
            text = JSON.stringify(parsed);
        } catch {
            return Promise.reject(new CnfError(400, 'body is nested too deeply'));
        }
        return Promise.resolve(Buffer.from(text, 'utf8'));
    }
    if (req.readableEnded) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (c: Buffer) => {
            if (size <= MAX_BODY_BYTES) chunks.push(c);
            size += c.length;
        });
        req.on('end', () => resolve(size ? Buffer.concat(chunks) : undefined));
        req.on('error', reject);
    });
}

/** The answer to one request on an API path; never rejects. */
export async function answer(
    req: BodyRequest,
    route: CnfRoute,
    ctx: CnfContext,
    ready: Promise<unknown>,
    url: string,
): Promise<CnfResponse> {
    try {
        const method = (req.method ?? 'GET').toUpperCase();
        if (route === 'sim') {
            if (method !== 'GET' && method !== 'HEAD') {
                throw new CnfError(405, 'method not allowed', { Allow: 'GET' });
            }
            await ready;
            return await handleSimPage(
                {
                    remoteAddress: req.socket.remoteAddress,
                    authorization: req.headers.authorization,
                },
                ctx,
            );
        }
        if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') {
            throw new CnfError(405, 'method not allowed', { Allow: 'GET, POST' });
        }
        const bytes = await readBytes(req);
        if (bytes && bytes.length > MAX_BODY_BYTES)
            throw new CnfError(413, 'request body too large');
        const body = bytes ? decodeBody(bytes, req.headers['content-type']) : undefined;
        await ready;
        const q = url.indexOf('?');
        return await handleCnf(
            {
                method,
                query: q >= 0 ? url.slice(q + 1) : '',
                body,
                remoteAddress: req.socket.remoteAddress,
                authorization: req.headers.authorization,
            },
            ctx,
        );
    } catch (err) {
        return errorResponse(err);
    }
}

export function send(res: ServerResponse, r: CnfResponse, head: boolean): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(r.status, { ...r.headers, 'Content-Length': Buffer.byteLength(r.body) });
    res.end(head ? undefined : r.body);
}

export interface ListenOptions {
    host: string;
    port: number;
    /** PEM certificate and key (and optionally CA and passphrase): HTTPS instead of HTTP. */
    tls?: {
        cert: string | Buffer;
        key: string | Buffer;
        ca?: string | Buffer;
        passphrase?: string;
    };
}

/**
 * An own HTTP(S) listener for the API (for clients that assume the device's address and port,
 * such as port 80). Everything outside the API's paths is a JSON 404.
 */
export class CnfListener {
    private readonly sockets = new Set<Socket>();
    private closing: Promise<void> | undefined;

    private constructor(private readonly server: Server) {
        server.on('connection', (s: Socket) => {
            this.sockets.add(s);
            s.once('close', () => this.sockets.delete(s));
        });
        // A request Node's parser cannot read (bad headers): a JSON 400, then close.
        server.on('clientError', (_err: Error, socket: Socket) => {
            if (!socket.writable) {
                socket.destroy();
                return;
            }
            const body = '"bad request"';
            socket.end(
                'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n' +
                    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
            );
        });
    }

    /** Starts listening; rejects with the listen error (EADDRINUSE, EACCES, a bad key …). */
    static start(
        options: ListenOptions,
        serve: (req: IncomingMessage, res: ServerResponse) => void,
    ): Promise<CnfListener> {
        let server: Server;
        try {
            server = options.tls
                ? createHttpsServer({ ...options.tls }, serve)
                : createHttpServer(serve);
        } catch (err) {
            return Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        const listener = new CnfListener(server);
        return new Promise((resolve, reject) => {
            const failed = (err: Error) => {
                server.off('listening', listening);
                reject(err);
            };
            const listening = () => {
                server.off('error', failed);
                // Later errors (none expected once listening) must not crash Node-RED.
                server.on('error', () => undefined);
                resolve(listener);
            };
            server.once('error', failed);
            server.once('listening', listening);
            server.listen({ port: options.port, ...(options.host ? { host: options.host } : {}) });
        });
    }

    /** The port it listens on (the one asked for, or the one given for port 0). */
    get port(): number {
        const a = this.server.address();
        return typeof a === 'object' && a ? a.port : 0;
    }

    /** Stops listening and ends open connections; resolves once the port is free. */
    close(): Promise<void> {
        this.closing ??= new Promise<void>((resolve) => {
            this.server.close(() => resolve());
            for (const s of this.sockets) s.destroy();
        });
        return this.closing;
    }
}
