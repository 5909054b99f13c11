// One Modbus bus = one physical connection (a serial line or a TCP host:port) with one FIFO.
// Requests run strictly one at a time, each sent with its own unit id, so devices sharing the
// bus never see each other's id. The connection is a small state machine:
//
//   idle → connecting → connected → (lost) → backoff → connecting → …      close() → closed
//
// with one stored timer handle (connect guard or reconnect delay), cleared on every transition.
// Every attempt uses a fresh client: reusing one after a failure is unreliable in modbus-serial.
// Serial lines use modbus-serial; TCP uses the lean client of tcp-client.ts, RTU over TCP the one
// of rtu-tcp-client.ts; both report failures in modbus-serial's shapes, so all are driven and
// mapped the same way.
//
// An RS-485 line (a serial port, or the line behind an RTU-over-TCP gateway) keeps the line's
// timing: after every frame on the wire the line stays silent for the inter-frame gap (3.5
// characters, 1.75 ms above 19,200 Bd) before the next request goes out, or the devices would
// read two frames as one. Each device has its own timeout and back-off, so a dead device costs
// one timeout per back-off period and the others keep their cycle.
import type { EventEmitter } from 'node:events';
import ModbusRTU from 'modbus-serial';
import { type BusAddress, busKey, formatBusAddress } from './address';
import { ModbusError, normalise } from './errors';
import { type ReadBlock, type ReadFunction, RegisterImage } from './planner';
import { interFrameGapMs } from './rtu';
import { ModbusRtuTcpClient } from './rtu-tcp-client';
import { ModbusTcpClient, type ReplyCallback } from './tcp-client';

/** The client of one connection: modbus-serial's for a serial line, ours for TCP. */
type Client = ModbusRTU | ModbusTcpClient | ModbusRtuTcpClient;
type OwnClient = ModbusTcpClient | ModbusRtuTcpClient;

/** Our socket clients: their own timer settles every request, and they answer once. */
function isOwn(client: Client): client is OwnClient {
    return client instanceof ModbusTcpClient || client instanceof ModbusRtuTcpClient;
}

/** Gap when a gateway's serial side has no baud rate given: the one of 9,600 Bd, the slowest
 *  common rate, so that no line is too fast for it. */
const GATEWAY_BAUD = 9600;

export type BusState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

export interface BusOptions {
    /** Time a device has to answer one request (ms). */
    timeoutMs?: number;
    /** Requests waiting beyond this are refused with MODBUS_QUEUE_FULL. */
    maxQueue?: number;
    /** Time allowed to open the connection (ms). */
    connectTimeoutMs?: number;
    /** Reconnect delay: first wait, doubled per failed attempt up to the cap (ms), ±jitter. */
    reconnectMinMs?: number;
    reconnectMaxMs?: number;
    /** A device that does not answer is skipped for this long, doubled per failure up to the cap. */
    deviceBackoffMs?: number;
    deviceBackoffMaxMs?: number;
    /**
     * Silence kept between frames on an RS-485 line (ms). Default: 3.5 characters at the line's
     * baud rate (1.75 ms above 19,200 Bd); for RTU over TCP that of the gateway's baud rate
     * (`host:port,rtu,19200`), else of 9,600 Bd; none for Modbus TCP.
     */
    interFrameGapMs?: number;
    /** Injected for tests. */
    random?: () => number;
    now?: () => number;
}

/** A device's own timing on a shared line; the bus's options where absent. */
export interface DeviceTiming {
    /** Time this device has to answer one request (ms). */
    timeoutMs?: number;
    /** First back-off after this device failed to answer (ms), doubled per failure. */
    backoffMs?: number;
}

export interface ReadRequest extends DeviceTiming {
    /** Name of the device for errors, e.g. `E1` or `SDM630 grid`. */
    device: string;
    unit: number;
    fc?: ReadFunction;
    address: number;
    count: number;
}

export interface WriteRequest extends DeviceTiming {
    device: string;
    unit: number;
    address: number;
    values: readonly number[];
    /** 16 writes a single register with "write multiple" (devices that accept nothing else);
     *  default: 6 for one register, 16 for more. 5 writes one coil: a value ≠ 0 switches it ON. */
    fc?: 5 | 6 | 16;
}

export interface BusStats {
    /** Requests sent on the wire. */
    requests: number;
    /** Requests that failed (any reason, including ones refused before sending). */
    failures: number;
    timeouts: number;
    /** Successful connects after the first one. */
    reconnects: number;
}

export interface PollRequest extends DeviceTiming {
    device: string;
    unit: number;
    /** A read plan (planReads): one request per block. */
    blocks: readonly ReadBlock[];
}

/**
 * One request, queued or in flight: a read, a write, or a poll (the blocks of a read plan, read
 * one after another). A class rather than an object literal: V8 moves objects made by a literal
 * straight to the old generation once a burst of them outlived a scavenge (as at start-up, with
 * every wallbox's first reads in flight at once), and from then on every request would leave
 * garbage there until the next full collection.
 */
class Job {
    readonly promise: Promise<unknown>;
    resolve!: (result: unknown) => void;
    reject!: (e: ModbusError) => void;
    settled = false;
    guard: NodeJS.Timeout | undefined = undefined;
    /** modbus-serial's record of this request while it is in flight (see filedTransaction);
     *  serial lines only. */
    transactionId = -1;
    transaction: unknown = undefined;
    /** A poll's block on the wire (its fc, address and count are the job's), and its image. */
    step = 0;
    readonly image: RegisterImage | undefined;
    /** The device's own timeout and back-off (0: the bus's). */
    timeoutMs = 0;
    backoffMs = 0;

    constructor(
        readonly kind: 'read' | 'write' | 'poll',
        readonly device: string,
        readonly unit: number,
        public fc: ReadFunction,
        public address: number,
        public count: number,
        readonly values: readonly number[] | undefined,
        readonly blocks: readonly ReadBlock[] | undefined,
        /** A write's function code where the device needs one (5 coil, 16 for one register). */
        readonly writeFc: 5 | 6 | 16 | undefined = undefined,
    ) {
        this.image = blocks ? new RegisterImage(blocks.length) : undefined;
        this.promise = new Promise<unknown>((resolve, reject) => {
            this.resolve = resolve;
            this.reject = reject;
        });
    }

    /** Moves a poll on to its next block; false when every block has been read. */
    nextBlock(): boolean {
        const block = this.blocks?.[++this.step];
        if (!block) return false;
        this.fc = block.fc;
        this.address = block.address;
        this.count = block.count;
        return true;
    }
}

interface DeviceHealth {
    failures: number;
    skipUntil: number;
}

/**
 * A reply's register words: the boundary check against whatever the peer sent — an array of
 * exactly `count` integers 0..65535. Checked by hand rather than with a schema because it runs
 * for every reply (hundreds per second with many wallboxes) and a schema parse copies the array
 * and allocates per word. The array is the client's own, made for this reply alone: the TCP
 * client passes it as the reply, modbus-serial as the reply's `data`.
 */
function replyWords(reply: unknown, count: number): number[] | undefined {
    const data = Array.isArray(reply)
        ? reply
        : typeof reply === 'object' && reply !== null
          ? (reply as { data?: unknown }).data
          : undefined;
    if (!Array.isArray(data) || data.length !== count) return undefined;
    for (let i = 0; i < count; i++) {
        const w: unknown = data[i];
        if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 0xffff) return undefined;
    }
    return data as number[];
}

const PARITY = { none: 'none', even: 'even', odd: 'odd', mark: 'mark', space: 'space' } as const;

export class Bus {
    readonly key: string;
    readonly name: string;
    readonly stats: BusStats = { requests: 0, failures: 0, timeouts: 0, reconnects: 0 };
    private current: BusState = 'idle';
    private client: Client | undefined;
    /** The reply handler of `client`'s connection, when it is our TCP client. */
    private onTcpReply: ReplyCallback | undefined;
    private timer: NodeJS.Timeout | undefined;
    private attempts = 0;
    private connectedOnce = false;
    private lastError = '';
    private readonly queue: Job[] = [];
    private active: Job | undefined;
    private readonly health = new Map<number, DeviceHealth>();
    private readonly listeners = new Set<(state: BusState, error?: string) => void>();
    private closing: Promise<void> | undefined;
    private readonly opts: Required<BusOptions>;
    /** Silence kept between frames (ms; 0 on Modbus TCP) and when the line is free again
     *  (performance.now() clock). */
    private readonly gapMs: number;
    private lineFreeAt = 0;
    private gapTimer: NodeJS.Timeout | undefined;
    private gapImmediate: NodeJS.Immediate | undefined;

    constructor(
        readonly address: BusAddress,
        options: BusOptions = {},
    ) {
        this.key = busKey(address);
        this.name = formatBusAddress(address);
        this.opts = {
            timeoutMs: options.timeoutMs ?? 1000,
            maxQueue: options.maxQueue ?? 64,
            connectTimeoutMs: options.connectTimeoutMs ?? 5000,
            reconnectMinMs: options.reconnectMinMs ?? 500,
            reconnectMaxMs: options.reconnectMaxMs ?? 30_000,
            deviceBackoffMs: options.deviceBackoffMs ?? 2000,
            deviceBackoffMaxMs: options.deviceBackoffMaxMs ?? 60_000,
            interFrameGapMs: options.interFrameGapMs ?? -1,
            random: options.random ?? Math.random,
            now: options.now ?? Date.now,
        };
        this.gapMs =
            options.interFrameGapMs !== undefined
                ? Math.max(0, options.interFrameGapMs)
                : lineGapMs(address);
    }

    /** Silence kept between two frames on this bus (ms). */
    get interFrameGapMs(): number {
        return this.gapMs;
    }

    get state(): BusState {
        return this.current;
    }

    get queueLength(): number {
        return this.queue.length;
    }

    get timeoutMs(): number {
        return this.opts.timeoutMs;
    }

    /** Subscribes to state changes; returns the unsubscribe function. */
    onState(listener: (state: BusState, error?: string) => void): () => void {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
    }

    /** Starts connecting (requests do this on their own). */
    open(): void {
        if (this.current === 'idle') this.connect();
    }

    read(request: ReadRequest): Promise<number[]> {
        if (!(request.count >= 1 && request.count <= 125)) {
            return Promise.reject(
                this.badRequest(request.device, `cannot read ${request.count} registers`),
            );
        }
        return this.enqueue(
            'read',
            request.device,
            request.unit,
            request.fc ?? 3,
            request.address,
            request.count,
            undefined,
            undefined,
            request,
        ) as Promise<number[]>;
    }

    /**
     * Reads every block of a read plan, one request each and one after another, into one
     * register image. The blocks take one place in the queue and settle one promise: a device's
     * poll costs no more than that, however many blocks it has. It fails with the first block
     * that fails.
     */
    poll(request: PollRequest): Promise<RegisterImage> {
        const blocks = request.blocks;
        const first = blocks[0];
        let valid = first !== undefined;
        // A loop, not .some(): a closure per poll is garbage on the hot path.
        for (let i = 0; i < blocks.length && valid; i++) {
            valid = blocks[i]!.count >= 1 && blocks[i]!.count <= 125;
        }
        if (!first || !valid) {
            return Promise.reject(
                this.badRequest(request.device, 'a poll needs blocks of 1..125 registers'),
            );
        }
        return this.enqueue(
            'poll',
            request.device,
            request.unit,
            first.fc,
            first.address,
            first.count,
            undefined,
            blocks,
            request,
        ) as Promise<RegisterImage>;
    }

    write(request: WriteRequest): Promise<void> {
        const values = request.values;
        if (!(values.length >= 1 && values.length <= 123)) {
            return Promise.reject(
                this.badRequest(request.device, `cannot write ${values.length} registers`),
            );
        }
        for (let i = 0; i < values.length; i++) {
            const v = values[i]!;
            if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
                return Promise.reject(
                    this.badRequest(request.device, 'register values must be 0..65535'),
                );
            }
        }
        return this.enqueue(
            'write',
            request.device,
            request.unit,
            3,
            request.address,
            values.length,
            [...values],
            undefined,
            request,
            request.fc,
        ) as Promise<void>;
    }

    /** Rejects everything pending, stops reconnecting and closes the connection. Never rejects. */
    close(): Promise<void> {
        if (this.closing) return this.closing;
        this.setState('closed');
        this.clearGapTimer();
        this.failAll('MODBUS_CLOSED', 'bus closed');
        const client = this.client;
        this.client = undefined;
        this.closing = closeClient(client, this.address.kind);
        return this.closing;
    }

    // ---- queue ----

    private badRequest(device: string, message: string): ModbusError {
        return new ModbusError('MODBUS_BAD_REQUEST', device, message);
    }

    private enqueue(
        kind: Job['kind'],
        device: string,
        unit: number,
        fc: ReadFunction,
        address: number,
        count: number,
        values: readonly number[] | undefined,
        blocks: readonly ReadBlock[] | undefined,
        timing: DeviceTiming,
        writeFc?: 5 | 6 | 16,
    ): Promise<unknown> {
        if (!Number.isInteger(unit) || unit < 0 || unit > 255) {
            return Promise.reject(this.badRequest(device, `bad unit id ${unit}`));
        }
        const { timeoutMs = 0, backoffMs = 0 } = timing;
        if (!(timeoutMs >= 0 && timeoutMs <= 600_000 && backoffMs >= 0 && backoffMs <= 3_600_000)) {
            return Promise.reject(this.badRequest(device, 'bad timeout or back-off'));
        }
        if (this.current === 'closed') return this.refuse(device, 'MODBUS_CLOSED', 'bus closed');
        if (this.current === 'idle') this.connect();
        if (this.current === 'backoff') {
            return this.refuse(
                device,
                'MODBUS_NOT_CONNECTED',
                `not connected to ${this.name}${this.lastError ? ` (${this.lastError})` : ''}`,
            );
        }
        const skip = this.skipping(unit);
        if (skip > 0) {
            return this.refuse(
                device,
                'MODBUS_BACKOFF',
                `not answering; next try in ${Math.ceil(skip)} ms`,
            );
        }
        // Identical reads waiting in the queue share one request.
        if (kind === 'read') {
            for (const j of this.queue) {
                if (
                    j.kind === 'read' &&
                    j.unit === unit &&
                    j.fc === fc &&
                    j.address === address &&
                    j.count === count
                ) {
                    return j.promise;
                }
            }
        }
        if (this.queue.length >= this.opts.maxQueue) {
            return this.refuse(
                device,
                'MODBUS_QUEUE_FULL',
                `queue of ${this.name} is full (${this.opts.maxQueue})`,
            );
        }
        const job = new Job(kind, device, unit, fc, address, count, values, blocks, writeFc);
        job.timeoutMs = timeoutMs;
        job.backoffMs = backoffMs;
        this.queue.push(job);
        this.pump();
        return job.promise;
    }

    private refuse(
        device: string,
        code: ConstructorParameters<typeof ModbusError>[0],
        message: string,
    ): Promise<never> {
        this.stats.failures++;
        return Promise.reject(new ModbusError(code, device, message));
    }

    /** ms until a failing device may be tried again; 0 = now. */
    private skipping(unit: number): number {
        const h = this.health.get(unit);
        return h ? Math.max(0, h.skipUntil - this.opts.now()) : 0;
    }

    private deviceFailed(unit: number, backoffMs = 0): void {
        const h = this.health.get(unit) ?? { failures: 0, skipUntil: 0 };
        h.failures++;
        const wait = Math.min(
            this.opts.deviceBackoffMaxMs,
            (backoffMs || this.opts.deviceBackoffMs) * 2 ** (h.failures - 1),
        );
        h.skipUntil = this.opts.now() + wait;
        this.health.set(unit, h);
    }

    private settle(job: Job, error?: ModbusError, result?: unknown): void {
        if (job.settled) return;
        job.settled = true;
        if (job.guard) clearTimeout(job.guard);
        if (this.active === job) this.active = undefined;
        if (error) {
            this.stats.failures++;
            job.reject(error);
        } else {
            job.resolve(result);
        }
    }

    private failAll(
        code: 'MODBUS_CLOSED' | 'MODBUS_DISCONNECTED' | 'MODBUS_CONNECT_FAILED',
        message: string,
    ): void {
        const jobs = this.active ? [this.active, ...this.queue] : [...this.queue];
        this.queue.length = 0;
        for (const job of jobs) this.settle(job, new ModbusError(code, job.device, message));
    }

    private pump(): void {
        while (this.current === 'connected' && !this.active && this.queue.length > 0) {
            const job = this.queue.shift()!;
            const skip = this.skipping(job.unit);
            if (skip > 0) {
                this.settle(
                    job,
                    new ModbusError(
                        'MODBUS_BACKOFF',
                        job.device,
                        `not answering; next try in ${Math.ceil(skip)} ms`,
                    ),
                );
                continue;
            }
            this.active = job;
            this.dispatch(job, this.client!);
        }
    }

    /** Sends the active job once the line has been silent for the inter-frame gap. */
    private dispatch(job: Job, client: Client): void {
        const wait = this.gapMs > 0 ? this.lineFreeAt - performance.now() : 0;
        if (wait <= 0) {
            this.send(job, client);
            return;
        }
        // setTimeout truncates to whole ms and may fire up to 1 ms early against the clock
        // (libuv's loop time is cached in ms), so the rest of a gap is waited out in immediates:
        // never early, and at most a fraction of a millisecond late.
        const resume = (): void => {
            this.gapTimer = undefined;
            this.gapImmediate = undefined;
            if (job.settled || this.active !== job || this.client !== client) return;
            this.dispatch(job, client);
        };
        const ms = Math.floor(wait);
        if (ms >= 1) this.gapTimer = setTimeout(resume, ms);
        else this.gapImmediate = setImmediate(resume);
    }

    /** A frame ended on the wire (a reply, or the silence of a timeout): the gap starts now. */
    private frameEnded(): void {
        if (this.gapMs > 0) this.lineFreeAt = performance.now() + this.gapMs;
    }

    private clearGapTimer(): void {
        if (this.gapTimer) clearTimeout(this.gapTimer);
        if (this.gapImmediate) clearImmediate(this.gapImmediate);
        this.gapTimer = undefined;
        this.gapImmediate = undefined;
    }

    private send(job: Job, client: Client): void {
        const timeoutMs = job.timeoutMs || this.opts.timeoutMs;
        this.stats.requests++;
        // The critical section: nothing else uses the client until this job settles.
        client.setTimeout(timeoutMs);
        if (!isOwn(client)) {
            // modbus-serial enforces the timeout itself; this guard only catches a request it
            // never settles, which means the connection is unusable. Our TCP client's own timer
            // always settles the request, so it needs no timer per request.
            if (job.guard) clearTimeout(job.guard); // a poll's previous block
            job.guard = setTimeout(() => {
                if (job.settled || this.client !== client) return;
                this.stats.timeouts++;
                this.deviceFailed(job.unit, job.backoffMs);
                this.settle(
                    job,
                    new ModbusError(
                        'MODBUS_TIMEOUT',
                        job.device,
                        `no answer within ${timeoutMs} ms`,
                    ),
                );
                this.lost(client, 'request never completed');
            }, timeoutMs + 1000);
            job.transactionId = nextTransactionId(client);
        }
        // Our TCP client: one reply handler per connection, not a closure per request; it never
        // answers during the write call and guards its callbacks, so the answer is handled at
        // once. modbus-serial: a handler bound to this job, so that no stray callback can be
        // taken for a later job's answer, run in a microtask as its promise API would: never
        // inside its receive handler (which would take an exception of ours for a parse error)
        // nor while the request is still being sent.
        const onReply: ReplyCallback = isOwn(client)
            ? this.onTcpReply!
            : (err, reply) => queueMicrotask(() => this.replied(client, err, reply, job));
        try {
            if (job.kind !== 'write') {
                if (job.fc === 4) client.writeFC4(job.unit, job.address, job.count, onReply);
                else client.writeFC3(job.unit, job.address, job.count, onReply);
            } else if (job.writeFc === 5) {
                client.writeFC5(job.unit, job.address, job.values![0] !== 0, onReply);
            } else if (job.values!.length === 1 && job.writeFc !== 16) {
                client.writeFC6(job.unit, job.address, job.values![0]!, onReply);
            } else {
                client.writeFC16(job.unit, job.address, [...job.values!], onReply);
            }
        } catch (e) {
            queueMicrotask(() => this.replied(client, e, undefined, job));
        }
        job.transaction = filedTransaction(client, job.transactionId);
    }

    /** The client has answered the active job (or given up on it). */
    private replied(client: Client, err: unknown, reply: unknown, job = this.active): void {
        // Only the active job is ever in flight; an answer from a client already dropped, or for
        // a job already settled, is stale.
        if (!job || job !== this.active || this.client !== client) return;
        forgetTransaction(client, job);
        this.frameEnded();
        if (err) {
            const error = normalise(err, job.device, job.timeoutMs || this.opts.timeoutMs);
            if (error.code === 'MODBUS_TIMEOUT') {
                this.stats.timeouts++;
                this.deviceFailed(job.unit, job.backoffMs);
            } else if (error.code === 'MODBUS_EXCEPTION') {
                this.health.delete(job.unit); // it answered: alive
            }
            this.settle(job, error);
            if (error.code === 'MODBUS_NOT_CONNECTED' || error.code === 'MODBUS_DISCONNECTED') {
                this.lost(client, error.message);
            } else {
                this.pump();
            }
            return;
        }
        this.health.delete(job.unit);
        if (job.kind === 'write') {
            this.settle(job, undefined, undefined);
            this.pump();
            return;
        }
        const words = replyWords(reply, job.count);
        if (!words) {
            this.settle(
                job,
                new ModbusError(
                    'MODBUS_BAD_REPLY',
                    job.device,
                    `reply to a read of ${job.count} registers at ${job.address} is malformed`,
                ),
            );
        } else if (job.kind === 'read') {
            this.settle(job, undefined, words);
        } else {
            job.image!.set(job.fc, job.address, words);
            if (job.nextBlock()) {
                this.dispatch(job, client); // the poll keeps the bus
                return;
            }
            this.settle(job, undefined, job.image);
        }
        this.pump();
    }

    // ---- connection ----

    private setState(state: BusState, error?: string): void {
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        if (this.current === state) return;
        this.current = state;
        for (const listener of [...this.listeners]) {
            try {
                listener(state, error);
            } catch {
                // a listener's failure is its own business
            }
        }
    }

    private connect(): void {
        this.setState('connecting');
        const address = this.address;
        const client =
            address.kind === 'rtu'
                ? new ModbusRTU()
                : address.framing === 'rtu'
                  ? new ModbusRtuTcpClient()
                  : new ModbusTcpClient();
        this.client = client;
        this.onTcpReply = isOwn(client)
            ? (err, reply) => this.replied(client, err, reply)
            : undefined;
        // Both clients emit 'error' for port errors; without a listener that would throw.
        client.on('error', (e: unknown) => this.lost(client, normalise(e, '').message));
        this.timer = setTimeout(
            () => failed(new Error(`no connection within ${this.opts.connectTimeoutMs} ms`)),
            this.opts.connectTimeoutMs,
        );
        const failed = (e: unknown): void => {
            if (this.client !== client) return;
            this.client = undefined;
            void closeClient(client, address.kind);
            const reason = normalise(e, '').message;
            this.lastError = reason;
            this.failAll('MODBUS_CONNECT_FAILED', `cannot connect to ${this.name}: ${reason}`);
            this.scheduleReconnect(reason);
        };
        const opening =
            address.kind === 'tcp'
                ? (client as OwnClient).connectTCP(address.host, { port: address.port })
                : (client as ModbusRTU).connectRTUBuffered(address.path, {
                      baudRate: address.baudRate,
                      dataBits: address.dataBits,
                      parity: PARITY[address.parity],
                      stopBits: address.stopBits,
                  });
        opening.then(
            () => {
                if (this.client !== client) {
                    void closeClient(client, address.kind);
                    return;
                }
                client.on('close', () => this.lost(client, 'connection closed'));
                this.attempts = 0;
                this.lastError = '';
                if (this.connectedOnce) this.stats.reconnects++;
                this.connectedOnce = true;
                this.setState('connected');
                this.pump();
            },
            (e: unknown) => failed(e),
        );
    }

    /** The connection broke: reject what is pending, drop the client, reconnect later. */
    private lost(client: Client, reason: string): void {
        if (this.client !== client || this.current === 'closed') return;
        this.client = undefined;
        void closeClient(client, this.address.kind);
        this.clearGapTimer();
        if (this.active) this.deviceFailed(this.active.unit, this.active.backoffMs);
        this.lastError = reason;
        this.failAll('MODBUS_DISCONNECTED', `connection to ${this.name} lost: ${reason}`);
        this.scheduleReconnect(reason);
    }

    private scheduleReconnect(reason: string): void {
        const base = Math.min(
            this.opts.reconnectMaxMs,
            this.opts.reconnectMinMs * 2 ** this.attempts,
        );
        const delay = Math.round(base * (0.5 + 0.5 * this.opts.random()));
        this.attempts++;
        this.setState('backoff', reason);
        this.timer = setTimeout(() => {
            this.timer = undefined;
            if (this.current === 'backoff') this.connect();
        }, delay);
    }
}

/** The inter-frame gap a bus address needs by default (ms). */
function lineGapMs(address: BusAddress): number {
    if (address.kind === 'rtu') return interFrameGapMs(address.baudRate);
    if (address.framing === 'rtu') return interFrameGapMs(address.baudRate ?? GATEWAY_BAUD);
    return 0;
}

/** The parts of modbus-serial's client that its public API does not expose. */
interface ClientInternals {
    _transactions?: Record<number, unknown>;
    _port?: { _transactionIdWrite?: number };
}

/** The id modbus-serial will give the next transaction of this client (-1: none). */
function nextTransactionId(client: Client): number {
    return (client as unknown as ClientInternals)._port?._transactionIdWrite ?? -1;
}

/**
 * The entry modbus-serial filed for the request just sent under `id`. It keeps every transaction
 * in a table keyed by the Modbus TCP transaction id (0..255) and never removes one, so without
 * cleaning each TCP client would hold the callback, reply words and reply buffer of its last 256
 * requests (≈300 KB per connection).
 */
function filedTransaction(client: Client, id: number): unknown {
    return id < 0 ? undefined : (client as unknown as ClientInternals)._transactions?.[id];
}

/**
 * Drops a settled request from modbus-serial's table. Only one request is ever in flight per
 * client, so once it has settled nothing can need the entry: a late reply to it finds no
 * transaction and is ignored, exactly as a reply after a timeout already is.
 */
function forgetTransaction(client: Client, job: Job): void {
    const table = (client as unknown as ClientInternals)._transactions;
    if (job.transaction !== undefined && table && table[job.transactionId] === job.transaction) {
        delete table[job.transactionId];
    }
    job.transaction = undefined;
}

/** Closes a client and its port completely; never rejects. */
function closeClient(client: Client | undefined, kind: BusAddress['kind']): Promise<void> {
    if (!client) return Promise.resolve();
    // Stop modbus-serial's own transaction timers so that nothing outlives the bus.
    const internal = client as unknown as EventEmitter & {
        _cancelPendingTransactions?: () => void;
    };
    internal._cancelPendingTransactions?.();
    internal.removeAllListeners('close');
    // Keep a listener: a late port error must not become an uncaught 'error' event.
    internal.removeAllListeners('error');
    internal.on('error', () => undefined);
    return new Promise<void>((resolve) => {
        const done = (): void => resolve();
        try {
            if (kind === 'tcp') {
                // destroy() ends the socket at once; close() would wait for the peer's FIN.
                client.destroy(done);
            } else if (client.isOpen) {
                client.close(done);
            } else {
                resolve();
            }
        } catch {
            resolve();
        }
    });
}
