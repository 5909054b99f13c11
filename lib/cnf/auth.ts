// Admin authentication for /cnf: user `admin`, HTTP Basic, the password kept only as an scrypt
// hash and compared in constant time; failed attempts are throttled per client address.
// While no admin password is set, protected commands are accepted from this machine only.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { CnfError } from './errors';

export const ADMIN_USER = 'admin';
export const REALM = 'Charging Manager';

export interface ScryptCost {
    N: number;
    r: number;
    p: number;
}

/** Interactive-login cost (about 16 MB and tens of ms per check). */
export const DEFAULT_SCRYPT: ScryptCost = { N: 16384, r: 8, p: 1 };

function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
    return new Promise((resolve, reject) =>
        scrypt(password, salt, 32, { ...cost, maxmem: 64 * 1024 * 1024 }, (err, key) =>
            err ? reject(err) : resolve(key),
        ),
    );
}

const STORED_PREFIX = 'scrypt$';
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

interface StoredHash {
    cost: ScryptCost;
    salt: Buffer;
    hash: Buffer;
}

function formatStored({ cost, salt, hash }: StoredHash): string {
    return `${STORED_PREFIX}${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** `scrypt$N$r$p$<salt>$<hash>` (base64) → its parts; throws on anything else. */
function parseStored(stored: string): StoredHash {
    const parts = stored.split('$');
    const [tag, n, r, p, salt, hash] = parts;
    const whole = (v: string | undefined, max: number) =>
        v !== undefined && /^[1-9][0-9]{0,9}$/.test(v) && Number(v) <= max ? Number(v) : NaN;
    const cost = { N: whole(n, 2 ** 24), r: whole(r, 64), p: whole(p, 16) };
    if (
        parts.length !== 6 ||
        tag !== 'scrypt' ||
        !Number.isInteger(cost.N) ||
        !Number.isInteger(cost.r) ||
        !Number.isInteger(cost.p) ||
        (cost.N & (cost.N - 1)) !== 0 ||
        128 * cost.N * cost.r > 32 * 1024 * 1024 || // within derive's memory limit
        !B64.test(salt ?? '') ||
        !B64.test(hash ?? '')
    ) {
        throw new Error('not a stored scrypt password hash');
    }
    return { cost, salt: Buffer.from(salt!, 'base64'), hash: Buffer.from(hash!, 'base64') };
}

/** A password as a self-describing scrypt hash string (cost and salt included), for storing. */
export async function hashPasswordForStore(
    password: string,
    cost: ScryptCost = DEFAULT_SCRYPT,
): Promise<string> {
    const salt = randomBytes(16);
    return formatStored({ cost, salt, hash: await derive(password, salt, cost) });
}

/** Whether `password` matches a hash string made by hashPasswordForStore (false if malformed). */
export async function verifyStoredPassword(password: string, stored: string): Promise<boolean> {
    let parsed: StoredHash;
    try {
        parsed = parseStored(stored);
    } catch {
        return false;
    }
    const candidate = await derive(password, parsed.salt, parsed.cost).catch(() => null);
    return (
        !!candidate &&
        candidate.length === parsed.hash.length &&
        timingSafeEqual(candidate, parsed.hash)
    );
}

/** The admin password as a salted scrypt hash; the clear text is never kept. */
export class AdminPassword {
    private salt: Buffer = Buffer.alloc(0);
    private hash: Buffer | null = null;
    /** Cost the current hash was made with (a stored hash keeps its own). */
    private hashCost: ScryptCost;
    /** sha256 of credential strings already checked against the current hash. */
    private readonly verified = new Set<string>();
    private pending: Promise<void> = Promise.resolve();

    constructor(private readonly cost: ScryptCost = DEFAULT_SCRYPT) {
        this.hashCost = cost;
    }

    get isSet(): boolean {
        return this.hash !== null;
    }

    /** Sets (or with '' removes) the password; changes apply in call order. */
    set(password: string): Promise<void> {
        return this.queue(async () => {
            if (!password) return null;
            const salt = randomBytes(16);
            return { cost: this.cost, salt, hash: await derive(password, salt, this.cost) };
        });
    }

    /** Takes a hash string made by `stored()` (null removes the password); throws if malformed. */
    setStored(stored: string | null): Promise<void> {
        const parsed = stored === null ? null : parseStored(stored);
        return this.queue(() => Promise.resolve(parsed));
    }

    /** The current hash as a self-describing string for the store, or null when none is set. */
    stored(): string | null {
        if (!this.hash) return null;
        return formatStored({ cost: this.hashCost, salt: this.salt, hash: this.hash });
    }

    private queue(next: () => Promise<StoredHash | null>): Promise<void> {
        this.pending = this.pending
            .catch(() => undefined)
            .then(async () => {
                const value = await next();
                this.verified.clear();
                this.hash = value?.hash ?? null;
                if (value) {
                    this.salt = value.salt;
                    this.hashCost = value.cost;
                }
            });
        return this.pending;
    }

    /** Resolves once a set() in progress is done. */
    ready(): Promise<void> {
        return this.pending.catch(() => undefined);
    }

    async verify(password: string): Promise<boolean> {
        await this.ready();
        const hash = this.hash;
        if (!hash) return password === '';
        const memo = createHash('sha256').update(this.salt).update(password).digest('hex');
        if (this.verified.has(memo)) return true;
        const candidate = await derive(password, this.salt, this.hashCost);
        if (this.hash !== hash) return false; // changed meanwhile
        const ok = candidate.length === hash.length && timingSafeEqual(candidate, hash);
        if (ok) {
            if (this.verified.size >= 16) this.verified.clear();
            this.verified.add(memo);
        }
        return ok;
    }
}

export interface ThrottleOptions {
    /** Failures allowed before the address is blocked. */
    freeFailures?: number;
    /** First block (ms), doubled per further failure up to maxBlockMs. */
    baseBlockMs?: number;
    maxBlockMs?: number;
    /** A quiet address is forgotten after this long (ms). */
    forgetAfterMs?: number;
    now?: () => number;
}

interface Attempts {
    failures: number;
    blockedUntil: number;
    lastAt: number;
}

/** Failed-login bookkeeping per client address. */
export class LoginThrottle {
    private readonly entries = new Map<string, Attempts>();
    private readonly o: Required<ThrottleOptions>;

    constructor(options: ThrottleOptions = {}) {
        this.o = {
            freeFailures: options.freeFailures ?? 5,
            baseBlockMs: options.baseBlockMs ?? 1000,
            maxBlockMs: options.maxBlockMs ?? 5 * 60_000,
            forgetAfterMs: options.forgetAfterMs ?? 15 * 60_000,
            now: options.now ?? Date.now,
        };
    }

    /** Milliseconds the address must still wait (0 = may try). */
    blockedFor(address: string): number {
        const e = this.entries.get(address);
        if (!e) return 0;
        return Math.max(0, e.blockedUntil - this.o.now());
    }

    fail(address: string): void {
        const now = this.o.now();
        let e = this.entries.get(address);
        if (!e || now - e.lastAt > this.o.forgetAfterMs) {
            e = { failures: 0, blockedUntil: 0, lastAt: now };
            this.entries.set(address, e);
        }
        e.failures++;
        e.lastAt = now;
        if (e.failures >= this.o.freeFailures) {
            const steps = Math.min(20, e.failures - this.o.freeFailures);
            e.blockedUntil = now + Math.min(this.o.maxBlockMs, this.o.baseBlockMs * 2 ** steps);
        }
        if (this.entries.size > 10_000) this.prune(now);
    }

    succeed(address: string): void {
        this.entries.delete(address);
    }

    private prune(now: number): void {
        for (const [k, e] of this.entries) {
            if (now - e.lastAt > this.o.forgetAfterMs && e.blockedUntil <= now)
                this.entries.delete(k);
        }
        // Still too many: forget the oldest half rather than grow without bound.
        if (this.entries.size > 10_000) {
            const keys = [...this.entries.keys()].slice(0, this.entries.size >> 1);
            for (const k of keys) this.entries.delete(k);
        }
    }
}

/** Whether a socket address is this machine. */
export function isLocalAddress(address: string | undefined): boolean {
    if (!address) return false;
    const a = address.toLowerCase();
    return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

export interface BasicCredentials {
    user: string;
    password: string;
}

/** `Authorization: Basic …` → user and password; null when absent or not Basic. */
export function parseBasic(header: string | undefined): BasicCredentials | null {
    if (!header) return null;
    const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) return null;
    const text = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) return null;
    return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

export const unauthorized = (message = 'admin password required'): CnfError =>
    new CnfError(401, message, { 'WWW-Authenticate': `Basic realm="${REALM}", charset="UTF-8"` });

export class CnfAuth {
    readonly password: AdminPassword;
    readonly throttle: LoginThrottle;

    constructor(options: { cost?: ScryptCost; throttle?: ThrottleOptions } = {}) {
        this.password = new AdminPassword(options.cost);
        this.throttle = new LoginThrottle(options.throttle);
    }

    /** Refuses (429) while the address is blocked after failed logins. */
    checkThrottle(remoteAddress: string): void {
        const wait = this.throttle.blockedFor(remoteAddress);
        if (wait > 0) {
            const s = Math.ceil(wait / 1000);
            throw new CnfError(429, `too many failed logins, retry in ${s} s`, {
                'Retry-After': String(s),
            });
        }
    }

    /**
     * Admin access or a CnfError: 403 from another machine while no password is set, 401 with
     * WWW-Authenticate for missing or wrong credentials, 429 while throttled.
     */
    /**
     * The credential of flow nodes in the same Node-RED (evcm-override, evcm-rfid): whoever may
     * edit the flows administers the manager anyway. Random per process, never sent anywhere.
     */
    readonly flowCredential = `Flow ${randomBytes(24).toString('hex')}`;

    async requireAdmin(authorization: string | undefined, remoteAddress: string): Promise<void> {
        if (
            authorization !== undefined &&
            authorization.length === this.flowCredential.length &&
            timingSafeEqual(Buffer.from(authorization), Buffer.from(this.flowCredential))
        ) {
            return;
        }
        await this.password.ready();
        if (!this.password.isSet) {
            if (isLocalAddress(remoteAddress)) return;
            throw new CnfError(
                403,
                'no admin password set: changes are accepted from this machine only',
            );
        }
        this.checkThrottle(remoteAddress);
        const creds = parseBasic(authorization);
        if (!creds) throw unauthorized();
        const ok = (await this.password.verify(creds.password)) && creds.user === ADMIN_USER;
        if (!ok) {
            this.throttle.fail(remoteAddress);
            throw unauthorized('wrong user or password');
        }
        this.throttle.succeed(remoteAddress);
    }

    /** Whether the request carries valid admin credentials (never throws). */
    async isAdmin(authorization: string | undefined, remoteAddress: string): Promise<boolean> {
        try {
            await this.requireAdmin(authorization, remoteAddress);
            return true;
        } catch {
            return false;
        }
    }
}
