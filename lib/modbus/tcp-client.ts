// A minimal Modbus TCP client for the bus: one connection, one request in flight at a time,
// FC3/FC4 reads and FC6/FC16 writes, callbacks only (never called during the write call that made
// the request). It exists because modbus-serial's TCP client allocates about 2 KB per request (a
// Buffer per read, a concatenated receive buffer, a CRC-framed copy, a promise chain per write, a
// transaction record); with hundreds of wallboxes that allocation rate alone keeps V8's young
// generation at its full size. Here every read lands in one reused Buffer (net's `onread`), every
// request is framed in one reused Buffer, and a reply costs only the array of its words.
//
// Failures are reported in the shapes modbus-serial uses, so that normalise() maps them exactly
// as before: { name: 'TransactionTimedOutError', errno: 'ETIMEDOUT' } for a request timeout, an
// Error with `modbusCode` for an exception reply, { name: 'PortNotOpenError' } for a request on a
// closed connection, a plain Error for a reply that does not fit its request.
import { EventEmitter } from 'node:events';
import net from 'node:net';

export type ReplyCallback = (err: unknown, reply: unknown) => void;

/** MBAP header: transaction id, protocol id, length (2 bytes each), then the unit id. */
const MBAP = 7;
/** Largest frame: MBAP 6 + the length field's maximum of 254 (unit + PDU of 253). */
const MAX_FRAME = 260;
const READ_CHUNK = 1024;

export class TimedOutError extends Error {
    override readonly name = 'TransactionTimedOutError';
    readonly errno = 'ETIMEDOUT';
    constructor() {
        super('Timed out');
    }
}

export class NotOpenError extends Error {
    override readonly name = 'PortNotOpenError';
    readonly errno = 'ECONNREFUSED';
    constructor() {
        super('Port Not Open');
    }
}

export class ModbusTcpClient extends EventEmitter {
    private socket: net.Socket | undefined;
    private open = false;
    private destroyed = false;
    private timeoutMs = 1000;
    private timer: NodeJS.Timeout | undefined;
    private timerMs = 0;
    /** The request in flight. */
    private callback: ReplyCallback | undefined;
    private transactionId = 0;
    private unit = 0;
    private fc = 0;
    private count = 0;
    /** Reused for every read and FC6 request (all 12 bytes long). */
    private readonly frame = Buffer.alloc(12);
    /** Receive buffer: the socket reads into `chunk`; partial frames wait in `rx`. */
    private readonly chunk = Buffer.alloc(READ_CHUNK);
    private readonly rx = Buffer.alloc(MAX_FRAME * 2);
    private rxLength = 0;
    private readonly onTimer = (): void => this.timedOut();

    get isOpen(): boolean {
        return this.open;
    }

    /** True while a request waits for its reply. */
    get busy(): boolean {
        return this.callback !== undefined;
    }

    /** Opens the connection; the bus guards it with its own connect timeout. */
    connectTCP(host: string, options: { port: number }): Promise<void> {
        return new Promise<void>((resolve, reject) => {
            if (this.socket || this.destroyed) {
                reject(new Error('client already used'));
                return;
            }
            const socket = net.connect({
                host,
                port: options.port,
                noDelay: true,
                onread: {
                    buffer: this.chunk,
                    callback: (bytes: number): boolean => {
                        this.received(bytes);
                        return true;
                    },
                },
            });
            this.socket = socket;
            socket.once('connect', () => {
                if (this.destroyed) return;
                this.open = true;
                resolve();
            });
            socket.on('error', (e: Error) => {
                if (!this.open) {
                    reject(e);
                    return;
                }
                this.open = false;
                this.emit('error', e);
            });
            socket.on('close', () => {
                const wasOpen = this.open;
                this.open = false;
                this.dropRequest();
                if (!wasOpen) reject(new Error('connection closed'));
                else if (!this.destroyed) this.emit('close');
            });
        });
    }

    /** Request timeout in ms (0: none). */
    setTimeout(ms: number): void {
        this.timeoutMs = ms;
    }

    writeFC3(unit: number, address: number, count: number, callback: ReplyCallback): void {
        this.read(3, unit, address, count, callback);
    }

    writeFC4(unit: number, address: number, count: number, callback: ReplyCallback): void {
        this.read(4, unit, address, count, callback);
    }

    /** Writes one coil: ON is 0xFF00 on the wire, OFF 0x0000. */
    writeFC5(unit: number, address: number, on: boolean, callback: ReplyCallback): void {
        if (!this.begin(5, unit, 0, callback)) return;
        this.send(this.header(this.frame, 6, unit, 5, address, on ? 0xff00 : 0));
    }

    writeFC6(unit: number, address: number, value: number, callback: ReplyCallback): void {
        if (!this.begin(6, unit, 0, callback)) return;
        this.send(this.header(this.frame, 6, unit, 6, address, value));
    }

    writeFC16(unit: number, address: number, values: number[], callback: ReplyCallback): void {
        if (!this.begin(16, unit, 0, callback)) return;
        const frame = Buffer.allocUnsafe(MBAP + 6 + 2 * values.length);
        this.header(frame, 7 + 2 * values.length, unit, 16, address, values.length);
        frame[12] = 2 * values.length;
        for (let i = 0; i < values.length; i++) frame.writeUInt16BE(values[i]!, 13 + 2 * i);
        this.send(frame);
    }

    /** Same as destroy(): a Modbus TCP connection has nothing to flush. */
    close(callback?: () => void): void {
        this.destroy(callback);
    }

    /** Ends the connection at once; a request in flight gets no answer. */
    destroy(callback?: () => void): void {
        this.destroyed = true;
        this.open = false;
        this.dropRequest();
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        const socket = this.socket;
        if (!socket || socket.destroyed) {
            if (callback) queueMicrotask(callback);
            return;
        }
        socket.destroy();
        // As modbus-serial's destroy: done once the socket is destroyed, not at its 'close'.
        if (callback) queueMicrotask(callback);
    }

    // ---- requests ----

    private read(
        fc: 3 | 4,
        unit: number,
        address: number,
        count: number,
        callback: ReplyCallback,
    ): void {
        if (!this.begin(fc, unit, count, callback)) return;
        this.send(this.header(this.frame, 6, unit, fc, address, count));
    }

    /**
     * Takes the request as the one in flight; false if impossible, and the callback is told in
     * a microtask: a callback never runs inside the write call that made its request.
     */
    private begin(fc: number, unit: number, count: number, callback: ReplyCallback): boolean {
        if (!this.open || !this.socket || this.callback) {
            const error = this.callback
                ? new Error('a request is already in flight')
                : new NotOpenError();
            queueMicrotask(() => callback(error, undefined));
            return false;
        }
        this.transactionId = (this.transactionId + 1) & 0xffff;
        this.callback = callback;
        this.unit = unit;
        this.fc = fc;
        this.count = count;
        return true;
    }

    /** Writes the MBAP header and the first two PDU words (address, count or value). */
    private header(
        frame: Buffer,
        length: number,
        unit: number,
        fc: number,
        address: number,
        word: number,
    ): Buffer {
        frame.writeUInt16BE(this.transactionId, 0);
        frame.writeUInt16BE(0, 2);
        frame.writeUInt16BE(length, 4);
        frame[6] = unit;
        frame[7] = fc;
        frame.writeUInt16BE(address, 8);
        frame.writeUInt16BE(word, 10);
        return frame;
    }

    private send(frame: Buffer): void {
        const socket = this.socket!;
        // The shared frame is only rewritten once the previous one has left: one request at a
        // time, and its reply (or timeout) comes after the write. Should the kernel ever still
        // hold an earlier frame, this one goes out as a copy.
        socket.write(
            frame === this.frame && socket.writableLength > 0 ? Buffer.from(frame) : frame,
        );
        this.armTimer();
    }

    /** One timer per connection, re-armed per request: no timer object per request. */
    private armTimer(): void {
        if (!(this.timeoutMs > 0)) return;
        if (this.timer && this.timerMs === this.timeoutMs) {
            this.timer.refresh();
            return;
        }
        if (this.timer) clearTimeout(this.timer);
        this.timerMs = this.timeoutMs;
        this.timer = setTimeout(this.onTimer, this.timeoutMs);
    }

    private timedOut(): void {
        // The timer is not cleared on a reply; firing when nothing waits is harmless.
        if (this.callback) this.finish(new TimedOutError(), undefined);
    }

    private finish(err: unknown, reply: unknown): void {
        const callback = this.callback!;
        this.callback = undefined;
        try {
            callback(err, reply);
        } catch (e) {
            // The callback runs inside the socket's read handler or a timer, where an exception
            // would take the process down: report it as a broken connection instead.
            this.corrupt(`a reply its handler failed on (${(e as Error).message})`);
        }
    }

    private dropRequest(): void {
        this.callback = undefined;
    }

    // ---- replies ----

    private received(bytes: number): void {
        let offset = 0;
        while (offset < bytes) {
            const take = Math.min(bytes - offset, this.rx.length - this.rxLength);
            this.chunk.copy(this.rx, this.rxLength, offset, offset + take);
            this.rxLength += take;
            offset += take;
            if (!this.parse()) return;
        }
    }

    /** Handles every complete frame in `rx`; false when the stream is not Modbus TCP. */
    private parse(): boolean {
        const rx = this.rx;
        let start = 0;
        while (this.rxLength - start >= 6) {
            const length = rx.readUInt16BE(start + 4);
            if (rx.readUInt16BE(start + 2) !== 0 || length < 2 || length > MAX_FRAME - 6) {
                this.corrupt('a frame that is not Modbus TCP');
                return false;
            }
            if (this.rxLength - start < 6 + length) break;
            this.frameReceived(start, length);
            // Ended by the reply's handler (destroyed, or found corrupt): nothing more to read.
            if (this.destroyed || !this.open) return false;
            start += 6 + length;
        }
        if (start > 0) {
            rx.copyWithin(0, start, this.rxLength);
            this.rxLength -= start;
        }
        return true;
    }

    /** The stream cannot be followed any more: report it like a socket error and end it. */
    private corrupt(reason: string): void {
        this.rxLength = 0;
        const socket = this.socket;
        const wasOpen = this.open;
        this.open = false;
        this.dropRequest();
        socket?.destroy();
        if (wasOpen) this.emit('error', new Error(`received ${reason}`));
    }

    /** One frame at `start`: MBAP (6) + `length` bytes (unit, function code, data). */
    private frameReceived(start: number, length: number): void {
        const rx = this.rx;
        // A reply to a request that timed out (or was never sent) is ignored.
        if (!this.callback || rx.readUInt16BE(start) !== this.transactionId) return;
        const unit = rx[start + 6]!;
        const fc = rx[start + 7]!;
        if (fc === (0x80 | this.fc) && length >= 3) {
            const code = rx[start + 8]!;
            this.finish(
                Object.assign(new Error(`Modbus exception ${code}`), { modbusCode: code }),
                undefined,
            );
            return;
        }
        const isRead = this.fc === 3 || this.fc === 4;
        const expected = isRead ? 3 + 2 * this.count : 6;
        if (length !== expected || (isRead && rx[start + 8] !== 2 * this.count)) {
            this.finish(
                new Error(`Data length error, expected ${expected + 6} got ${length + 6}`),
                undefined,
            );
            return;
        }
        if (unit !== this.unit) {
            this.finish(
                new Error(`Unexpected data error, expected address ${this.unit} got ${unit}`),
                undefined,
            );
            return;
        }
        if (fc !== this.fc) {
            this.finish(
                new Error(`Unexpected data error, expected code ${this.fc} got ${fc}`),
                undefined,
            );
            return;
        }
        if (isRead) {
            const count = this.count;
            const data = new Array<number>(count);
            for (let i = 0; i < count; i++) data[i] = rx.readUInt16BE(start + 9 + 2 * i);
            this.finish(null, data);
        } else {
            this.finish(null, null);
        }
    }
}
