// The OCPP-J central system: a WebSocket server (ocpp-rpc, strict schema validation) that charge
// points connect to, either on an HTTP server that exists (Node-RED's, under a path prefix) or on
// a listener of its own (evcc's convention: port 8887), with TLS for security profile 2. Each
// charge point is a ChargePoint session; nothing one charge point sends can reach another.
import type { IncomingMessage, Server } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { RPCServer } from 'ocpp-rpc';
import { Events } from '../core/events';
import { ChargePoint, type ChargePointOptions, type OcppConnection } from './charge-point';
import { hashPassword, isPasswordHash, verifyPassword } from './credentials';

export interface OcppCentralSystemOptions {
    /** Path prefix under an existing HTTP server (default `/ocpp/`); identity = last segment. */
    path?: string;
    /** Unknown identities are let in and listed as pending (to be adopted) instead of refused. */
    acceptNew?: boolean;
    /** WebSocket ping interval (ms): a half-open connection is dropped after two (default 30 s). */
    pingIntervalMs?: number;
    /** Bad frames in a row before the connection is closed (default 10). */
    maxBadMessages?: number;
    /** Calls to one charge point in flight at a time (default 1, as OCPP-J prescribes). */
    callConcurrency?: number;
    callTimeoutMs?: number;
    meterValueSampleInterval?: number;
    heartbeatInterval?: number;
    rateLimit?: { perSecond: number; burst: number };
    now?: () => number;
}

export interface ListenOptions {
    host?: string;
    /** Default 8887; 0 picks a free port. */
    port?: number;
    /** Security profile 2: PEM certificate and key. */
    tls?: { cert: string | Buffer; key: string | Buffer };
}

export interface PendingChargePoint {
    identity: string;
    remoteAddress?: string;
    since: number;
}

export class OcppCentralSystem {
    readonly path: string;
    acceptNew: boolean;
    private readonly rpc: RPCServer;
    private readonly sessions = new Map<string, ChargePoint>();
    /** Identities added explicitly (not only through an attached device). */
    private readonly explicit = new Set<string>();
    private readonly pendingList = new Map<string, PendingChargePoint>();
    private readonly servers = new Set<Server>();
    private readonly cpOptions: ChargePointOptions;
    private closed = false;
    /** `session`: a charge point session was made (flows subscribe to its messages). */
    readonly events = new Events<{ session: ChargePoint }>();

    constructor(opts: OcppCentralSystemOptions = {}) {
        this.path = normalisePath(opts.path ?? '/ocpp/');
        this.acceptNew = opts.acceptNew ?? false;
        const now = opts.now ?? Date.now;
        this.cpOptions = {
            meterValueSampleInterval: opts.meterValueSampleInterval ?? 10,
            heartbeatInterval: opts.heartbeatInterval ?? 300,
            callTimeoutMs: opts.callTimeoutMs ?? 10_000,
            rateLimit: opts.rateLimit ?? { perSecond: 20, burst: 100 },
            now,
        };
        this.rpc = new RPCServer({
            protocols: ['ocpp1.6', 'ocpp2.0.1'],
            strictMode: true,
            pingIntervalMs: opts.pingIntervalMs ?? 30_000,
            maxBadMessages: opts.maxBadMessages ?? 10,
            callConcurrency: opts.callConcurrency ?? 1,
            callTimeoutMs: this.cpOptions.callTimeoutMs,
            respondWithDetailedErrors: false,
        });
        this.rpc.auth((accept, reject, handshake) => {
            this.authenticate(handshake.identity, handshake.password, handshake.protocols).then(
                (code) =>
                    code === 0
                        ? accept({})
                        : reject(code, code === 401 ? 'Unauthorized' : 'Not found'),
                () => reject(500, 'Internal error'),
            );
        });
        this.rpc.on('client', (client: OcppConnection) => this.onClient(client));
        // An upgrade that fails (socket error, refused) must never throw out of the server.
        this.rpc.on('upgradeAborted', () => undefined);
        this.rpc.on('error', () => undefined);
    }

    /** Adds (or updates) a known charge point; the password is hashed unless it is a hash. */
    addChargePoint(identity: string, opts: { password?: string | null } = {}): ChargePoint {
        this.explicit.add(identity);
        const cp = this.chargePoint(identity);
        if (opts.password !== undefined) this.setPassword(identity, opts.password);
        return cp;
    }

    /** Forgets a charge point that was added explicitly; its devices keep it while attached. */
    async removeChargePoint(identity: string): Promise<void> {
        this.explicit.delete(identity);
        const cp = this.sessions.get(identity);
        if (cp && !cp.attached) {
            this.sessions.delete(identity);
            await cp.disconnect('Removed');
        }
    }

    /** The session of an identity, made if needed (a device that drives it attaches to it). */
    chargePoint(identity: string): ChargePoint {
        let cp = this.sessions.get(identity);
        if (!cp) {
            cp = new ChargePoint(identity, this.cpOptions);
            this.sessions.set(identity, cp);
            this.events.emit('session', cp);
        }
        this.pendingList.delete(identity);
        return cp;
    }

    /** The session, if the identity is known. */
    find(identity: string): ChargePoint | undefined {
        return this.sessions.get(identity);
    }

    get chargePoints(): readonly ChargePoint[] {
        return [...this.sessions.values()];
    }

    /** Identities that connected while unknown (acceptNew): the user may adopt them. */
    get pending(): readonly PendingChargePoint[] {
        return [...this.pendingList.values()];
    }

    /** Password (plain text or an scrypt hash; null = none) for security profile 1/2. */
    setPassword(identity: string, password: string | null): void {
        const cp = this.chargePoint(identity);
        if (password === null || password === '') cp.passwordHash = undefined;
        else cp.passwordHash = isPasswordHash(password) ? password : hashPassword(password);
    }

    /**
     * For an HTTP server's 'upgrade' event: takes requests under the path prefix and returns
     * true; anything else is left to the server's other handlers (false).
     */
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
        const path = (req.url ?? '/').split('?')[0] ?? '/';
        if (!path.startsWith(this.path) || path.length <= this.path.length) return false;
        this.rpc.handleUpgrade(req, socket as Socket, head).catch(() => socket.destroy());
        return true;
    }

    /** Listens on a port of its own (TLS when given); any path, identity = last segment. */
    async listen(opts: ListenOptions = {}): Promise<{ host: string; port: number }> {
        if (this.closed) throw new Error('OCPP central system is closed');
        const server = opts.tls
            ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key })
            : createHttpServer();
        server.on('request', (_req, res) => {
            res.statusCode = 404;
            res.end();
        });
        server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
            this.rpc.handleUpgrade(req, socket as Socket, head).catch(() => socket.destroy());
        });
        server.on('tlsClientError', (_err: Error, socket: Duplex) => socket.destroy());
        server.on('clientError', (_err: Error, socket: Duplex) => socket.destroy());
        await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(opts.port ?? 8887, opts.host ?? '0.0.0.0', () => {
                server.off('error', reject);
                resolve();
            });
        });
        this.servers.add(server);
        const addr = server.address();
        return {
            host: typeof addr === 'object' && addr ? addr.address : (opts.host ?? ''),
            port: typeof addr === 'object' && addr ? addr.port : (opts.port ?? 8887),
        };
    }

    /** Closes every connection and listener. */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        await Promise.all([...this.sessions.values()].map((cp) => cp.disconnect('Shutting down')));
        await this.rpc.close({ code: 1001, force: true }).catch(() => undefined);
        await Promise.all(
            [...this.servers].map(
                (s) =>
                    new Promise<void>((resolve) => {
                        s.close(() => resolve());
                        s.closeAllConnections?.();
                    }),
            ),
        );
        this.servers.clear();
    }

    /** 0 = let in; else the HTTP status it is refused with. */
    private async authenticate(
        identity: string,
        password: Buffer | undefined,
        protocols: Set<string>,
    ): Promise<number> {
        if (this.closed || !identity) return 404;
        if (![...protocols].some((p) => p === 'ocpp1.6' || p === 'ocpp2.0.1')) return 400;
        const cp = this.sessions.get(identity);
        if (!cp || (!cp.attached && !this.explicit.has(identity))) {
            // Bounded, so that a scanner trying names cannot fill memory.
            if (!this.acceptNew || (!cp && this.pendingList.size >= MAX_PENDING)) return 404;
            return 0;
        }
        if (cp.passwordHash === undefined) return 0;
        if (!password) return 401;
        return (await verifyPassword(password, cp.passwordHash)) ? 0 : 401;
    }

    private onClient(client: OcppConnection): void {
        const identity = client.identity ?? '';
        let cp = this.sessions.get(identity);
        if (!cp || (!cp.attached && !this.explicit.has(identity))) {
            // Let in by acceptNew: listed as pending, with a session of its own so that its
            // boot is answered Pending until a device adopts it.
            this.pendingList.set(identity, { identity, since: this.cpOptions.now() });
            if (!cp) {
                cp = new ChargePoint(identity, this.cpOptions);
                this.sessions.set(identity, cp);
                this.events.emit('session', cp);
            }
        }
        cp.connect(client);
    }
}

/** Unknown identities kept as pending at most; more are refused until some are adopted. */
export const MAX_PENDING = 100;

function normalisePath(p: string): string {
    let out = p.startsWith('/') ? p : `/${p}`;
    if (!out.endsWith('/')) out += '/';
    return out;
}
