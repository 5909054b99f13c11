// Real Modbus peers for tests on loopback: a free-port helper, a TCP server with scripted
// misbehaving units, and a socat pseudo-terminal pair for RTU.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ModbusRTU, { ServerTCP } from 'modbus-serial';

/** A TCP port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const address = server.address();
            const port = typeof address === 'object' && address ? address.port : 0;
            server.close(() => resolve(port));
        });
    });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One request from an independent client (modbus-serial's own TCP client, not our bus) on its own
 * connection: holding registers as a device shows them to anyone, or a write to them.
 */
export async function independentClient<T>(
    port: number,
    unit: number,
    use: (client: ModbusRTU) => Promise<T>,
): Promise<T> {
    const client = new ModbusRTU();
    await client.connectTCP('127.0.0.1', { port });
    client.setID(unit);
    client.setTimeout(2000);
    try {
        return await use(client);
    } finally {
        await new Promise<void>((resolve) => client.close(() => resolve()));
    }
}

/** Holding registers read by an independent client (unit 1: a Power Brain's EVSE). */
export function registers(port: number, address: number, count: number, unit = 1) {
    return independentClient(
        port,
        unit,
        async (c) => (await c.readHoldingRegisters(address, count)).data,
    );
}

/** How a unit of the fault server behaves. */
export type UnitBehaviour = 'ok' | 'silent' | 'exception' | 'drop';

/**
 * A Modbus TCP server whose units behave as scripted: `ok` answers register n with n & 0xffff,
 * `silent` never answers, `exception` answers with exception 2, `drop` closes every connection.
 */
export class FaultServer {
    private server: ServerTCP | undefined;
    port = 0;
    requests = new Map<number, number>();
    /** Requests of silent units that were never answered. */
    private held: (() => void)[] = [];

    constructor(private readonly units: Record<number, UnitBehaviour>) {}

    /** Listens on `port`, or on a free one (ServerTCP itself would take 0 as 502). */
    async start(port = 0): Promise<number> {
        if (port === 0) port = await freePort();
        // Callback style (the arity tells ServerTCP), so a unit can also never answer.
        type Done = (err: Error | null, values: number[]) => void;
        const handle = (addr: number, length: number, unitID: number, done: Done): void => {
            this.requests.set(unitID, (this.requests.get(unitID) ?? 0) + 1);
            const behaviour = this.units[unitID] ?? 'silent';
            if (behaviour === 'exception')
                return done(
                    Object.assign(new Error('illegal data address'), { modbusErrorCode: 2 }),
                    [],
                );
            if (behaviour === 'drop') {
                for (const sock of this.server!.socks.keys()) sock.destroy();
                return;
            }
            if (behaviour === 'silent') {
                this.held.push(() => undefined);
                return;
            }
            done(
                null,
                Array.from({ length }, (_, i) => (addr + i) & 0xffff),
            );
        };
        const vector = {
            getMultipleHoldingRegisters: (addr: number, length: number, unitID: number, cb: Done) =>
                handle(addr, length, unitID, cb),
            getHoldingRegister: (
                addr: number,
                unitID: number,
                cb: (err: Error | null, v: number) => void,
            ) => handle(addr, 1, unitID, (err, values) => cb(err, values[0] ?? 0)),
            setRegister: (
                addr: number,
                _value: number,
                unitID: number,
                cb: (err: Error | null) => void,
            ) => handle(addr, 1, unitID, (err) => cb(err)),
            setRegisterArray: (
                addr: number,
                values: number[],
                unitID: number,
                cb: (err: Error | null) => void,
            ) => handle(addr, values.length, unitID, (err) => cb(err)),
        };
        const server = new ServerTCP(vector, { host: '127.0.0.1', port, unitID: 255 });
        this.server = server;
        const internal = server as unknown as { _server: net.Server };
        internal._server.on('connection', (s: net.Socket) => s.setNoDelay(true));
        server.on('socketError', () => undefined);
        await new Promise<void>((resolve, reject) => {
            server.once('initialized', () => resolve());
            server.once('serverError', reject);
        });
        const address = internal._server.address();
        this.port = typeof address === 'object' && address ? address.port : port;
        return this.port;
    }

    async close(): Promise<void> {
        const server = this.server;
        this.server = undefined;
        for (const release of this.held.splice(0)) release();
        if (!server) return;
        await new Promise<void>((resolve) => server.close(() => resolve()));
    }
}

export function hasCommand(name: string): boolean {
    return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Resolves once socat's log says `ready` (it logs to stderr with -d -d); rejects if it exits. */
async function socatReady(proc: ChildProcess, ready: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
        let text = '';
        const timer = setTimeout(() => reject(new Error(`socat did not start: ${text}`)), 5000);
        proc.stderr!.on('data', (chunk: Buffer) => {
            text += chunk.toString();
            if (text.includes(ready)) {
                clearTimeout(timer);
                resolve();
            }
        });
        proc.once('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`socat exited with ${code}: ${text}`));
        });
    });
    proc.stderr!.resume();
}

/** Stops exactly this socat by its PID and removes its directory. */
async function stopSocat(proc: ChildProcess | undefined, dir: string): Promise<void> {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.kill('SIGTERM');
        await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Two linked pseudo-terminals from socat; stop() kills exactly that socat by its PID. */
export class PtyPair {
    private proc: ChildProcess | undefined;
    private dir = '';
    a = '';
    b = '';

    async start(): Promise<void> {
        this.dir = mkdtempSync(join(tmpdir(), 'evcm-pty-'));
        this.a = join(this.dir, 'ttyA');
        this.b = join(this.dir, 'ttyB');
        const proc = spawn(
            'socat',
            ['-d', '-d', `pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`],
            {
                stdio: ['ignore', 'ignore', 'pipe'],
            },
        );
        this.proc = proc;
        await socatReady(proc, 'starting data transfer loop');
    }

    async stop(): Promise<void> {
        const proc = this.proc;
        this.proc = undefined;
        await stopSocat(proc, this.dir);
    }
}

/**
 * A serial gateway in transparent mode, played by socat: a pseudo-terminal (where an RTU server
 * answers) bridged to a TCP port on loopback, bytes passed unchanged. It serves one connection;
 * stop() kills exactly that socat by its PID.
 */
export class PtyTcpBridge {
    private proc: ChildProcess | undefined;
    private dir = '';
    path = '';
    port = 0;

    async start(): Promise<void> {
        this.dir = mkdtempSync(join(tmpdir(), 'evcm-gw-'));
        this.path = join(this.dir, 'tty');
        this.port = await freePort();
        // socat opens its first address (the pty) before it listens on the second.
        const proc = spawn(
            'socat',
            [
                '-d',
                '-d',
                `pty,raw,echo=0,link=${this.path}`,
                `tcp-listen:${this.port},bind=127.0.0.1,reuseaddr`,
            ],
            { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        this.proc = proc;
        await socatReady(proc, 'listening on');
    }

    async stop(): Promise<void> {
        const proc = this.proc;
        this.proc = undefined;
        await stopSocat(proc, this.dir);
    }
}
