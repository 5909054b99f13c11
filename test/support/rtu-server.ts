// A Modbus RTU server for tests and benchmarks, written independently of the bus's RTU code: it
// frames requests by function code (not by silence), checks their CRC, answers several unit ids
// on one line as scripted, and records when each frame starts and ends, so that a test can
// measure the silence the client keeps between frames on the server's side of the line.
//
// Pseudo-terminals and loopback sockets move bytes at memory speed, whatever baud rate is set.
// With `physical: true` the server therefore holds each reply until the moment its last byte
// would have left a real line: the request's wire time (it arrives at once here, but would
// still be arriving), the 3.5 characters of silence after which a device knows the request has
// ended, and the reply's wire time, 11 bits per byte at the line's baud rate. Timing measured
// against such a server is the line's, not the pty's.
import net from 'node:net';
import { SerialPort } from 'serialport';

/** `garbled`: answers with a wrong CRC, as a reply hit by noise on the line. */
export type RtuUnitBehaviour = 'ok' | 'silent' | 'exception' | 'garbled';

export interface RtuServerOptions {
    units: Record<number, RtuUnitBehaviour>;
    baudRate?: number;
    /** Hold each reply for its wire time (see above). */
    physical?: boolean;
    /** Word of register `address` of `unit` (default: a float32 230.0 per register pair). */
    word?: (unit: number, fc: number, address: number) => number;
}

export interface RtuFrameRecord {
    unit: number;
    fc: number;
    /** performance.now() when the request's first byte arrived. */
    start: number;
    /** When the line fell silent after it: the reply's end, or the request's own. */
    end: number;
    answered: boolean;
}

/** CRC-16/MODBUS, bit by bit (the bus uses a table: two implementations check each other). */
function crc(bytes: Uint8Array, length: number): number {
    let c = 0xffff;
    for (let i = 0; i < length; i++) {
        c ^= bytes[i]!;
        for (let b = 0; b < 8; b++) c = c & 1 ? (c >> 1) ^ 0xa001 : c >> 1;
    }
    return c;
}

function withCrc(bytes: number[]): Buffer {
    const frame = Buffer.alloc(bytes.length + 2);
    frame.set(bytes);
    const c = crc(frame, bytes.length);
    frame[bytes.length] = c & 0xff;
    frame[bytes.length + 1] = c >> 8;
    return frame;
}

const defaultWord = (_unit: number, _fc: number, address: number): number =>
    address % 2 === 0 ? 0x4366 : 0; // 230.0 as float32, big-endian words

/** Spins in immediates until performance.now() reaches `at`: timers alone are ms-coarse. */
function until(at: number): Promise<void> {
    return new Promise((resolve) => {
        const step = (): void => {
            const left = at - performance.now();
            if (left <= 0) resolve();
            else if (left > 2) setTimeout(step, Math.floor(left) - 1);
            else setImmediate(step);
        };
        step();
    });
}

export class RtuServer {
    readonly frames: RtuFrameRecord[] = [];
    /** Requests per unit id (answered or not). */
    readonly requests = new Map<number, number>();
    crcErrors = 0;
    private rx = Buffer.alloc(0);
    private rxStart = 0;
    private out: { write(b: Buffer): void } | undefined;
    private port: SerialPort | undefined;
    private server: net.Server | undefined;
    private sockets = new Set<net.Socket>();
    /** Replies are sent in order, one at a time. */
    private chain: Promise<void> = Promise.resolve();
    private readonly baudRate: number;
    private readonly word: NonNullable<RtuServerOptions['word']>;

    constructor(private readonly options: RtuServerOptions) {
        this.baudRate = options.baudRate ?? 9600;
        this.word = options.word ?? defaultWord;
    }

    /** Wire time of `bytes` bytes at the line's baud rate (ms). */
    wireMs(bytes: number): number {
        return (bytes * 11 * 1000) / this.baudRate;
    }

    /** The silence that ends a frame: 3.5 characters, 1.75 ms above 19,200 Bd (ms). */
    gapMs(): number {
        return this.baudRate > 19_200 ? 1.75 : this.wireMs(3.5);
    }

    /** Silences between consecutive frames as the server saw them (ms). */
    gaps(): number[] {
        const out: number[] = [];
        for (let i = 1; i < this.frames.length; i++) {
            out.push(this.frames[i]!.start - this.frames[i - 1]!.end);
        }
        return out;
    }

    /** Serves on a serial device, e.g. one end of a socat pty pair. */
    async listenSerial(path: string): Promise<void> {
        const port = new SerialPort({ path, baudRate: this.baudRate, autoOpen: false });
        await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
        this.port = port;
        this.out = port;
        port.on('data', (chunk: Buffer) => this.received(chunk));
        port.on('error', () => undefined);
    }

    /** Serves RTU frames over TCP (a gateway in transparent mode); resolves to the port. */
    async listenTcp(): Promise<number> {
        const server = net.createServer((socket) => {
            socket.setNoDelay(true);
            this.sockets.add(socket);
            this.out = socket;
            socket.on('data', (chunk: Buffer) => this.received(chunk));
            socket.on('error', () => undefined);
            socket.on('close', () => this.sockets.delete(socket));
        });
        this.server = server;
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return (server.address() as net.AddressInfo).port;
    }

    async close(): Promise<void> {
        const port = this.port;
        const server = this.server;
        this.port = undefined;
        this.server = undefined;
        if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
        for (const s of this.sockets) s.destroy();
        if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    }

    private received(chunk: Buffer): void {
        const now = performance.now();
        if (this.rx.length === 0) this.rxStart = now;
        this.rx = Buffer.concat([this.rx, chunk]);
        for (;;) {
            if (this.rx.length < 2) return;
            const fc = this.rx[1]!;
            const length =
                fc === 16
                    ? this.rx.length < 7
                        ? 0
                        : 9 + this.rx[6]!
                    : [3, 4, 6].includes(fc)
                      ? 8
                      : -1;
            if (length < 0) {
                this.rx = Buffer.alloc(0); // not a request we know: resynchronise
                return;
            }
            if (length === 0 || this.rx.length < length) return;
            const frame = this.rx.subarray(0, length);
            this.rx = Buffer.from(this.rx.subarray(length));
            const start = this.rxStart;
            this.rxStart = now;
            if (crc(frame, length - 2) !== frame.readUInt16LE(length - 2)) {
                this.crcErrors++;
                continue;
            }
            this.request(Buffer.from(frame), start);
        }
    }

    private request(frame: Buffer, start: number): void {
        const unit = frame[0]!;
        const fc = frame[1]!;
        this.requests.set(unit, (this.requests.get(unit) ?? 0) + 1);
        const physical = this.options.physical === true;
        const record: RtuFrameRecord = {
            unit,
            fc,
            start,
            end: start + (physical ? this.wireMs(frame.length) : 0),
            answered: false,
        };
        this.frames.push(record);
        const behaviour = this.options.units[unit] ?? 'silent';
        if (behaviour === 'silent') return;
        const address = frame.readUInt16BE(2);
        let reply: Buffer;
        if (behaviour === 'exception') reply = withCrc([unit, fc | 0x80, 2]);
        else if (fc === 3 || fc === 4) {
            const count = frame.readUInt16BE(4);
            const bytes = [unit, fc, 2 * count];
            for (let i = 0; i < count; i++) {
                const w = this.word(unit, fc, address + i) & 0xffff;
                bytes.push(w >> 8, w & 0xff);
            }
            reply = withCrc(bytes);
        } else reply = withCrc([...frame.subarray(0, 6)]);
        if (behaviour === 'garbled') reply[reply.length - 1]! ^= 0x5a;
        const due =
            start + (physical ? this.wireMs(frame.length + reply.length) + this.gapMs() : 0);
        this.chain = this.chain.then(async () => {
            if (physical) await until(due);
            this.out?.write(reply);
            record.end = performance.now();
            record.answered = true;
        });
    }
}
