// Modbus RTU over TCP: the client for serial gateways in transparent mode, which pass RTU frames
// (unit id, PDU, CRC) between a TCP socket and their RS-485 line unchanged. The same surface as
// the Modbus TCP client (tcp-client.ts) so that the bus drives both alike: one request in flight,
// FC3/FC4 reads and FC6/FC16 writes, callbacks never called during the write that made the
// request, failures in the shapes normalise() maps.
//
// RTU frames carry no length and no transaction id, so a reply is delimited by its function
// code (exception 5 bytes, reads 5 + byte count, writes 8) and checked by CRC, unit id and
// function code. Bytes that arrive while no request waits (a late reply to a request that timed
// out) are dropped; so is whatever is buffered when a request times out or a reply fails its
// CRC, which puts the stream back in step at the next request.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { appendCrc, crc16, replyLength, requestBytes } from './rtu';
import { NotOpenError, type ReplyCallback, TimedOutError } from './tcp-client';

/** Largest RTU frame (Modbus over Serial Line, 2.5.1). */
const MAX_FRAME = 256;

/** A reply whose CRC, length or header does not fit: the device answered, garbled. */
export class BadReplyError extends Error {
    override readonly name = 'ModbusBadReply';
}

export class ModbusRtuTcpClient extends EventEmitter {
    private socket: net.Socket | undefined;
    private open = false;
    private destroyed = false;
    private timeoutMs = 1000;
    private timer: NodeJS.Timeout | undefined;
    private callback: ReplyCallback | undefined;
    private unit = 0;
    private fc = 0;
    private count = 0;
    private readonly frame = Buffer.alloc(8);
    private readonly rx = Buffer.alloc(MAX_FRAME * 2);
    private rxLength = 0;

    get isOpen(): boolean {
        return this.open;
    }

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
            const socket = net.connect({ host, port: options.port, noDelay: true });
            this.socket = socket;
            socket.once('connect', () => {
                if (this.destroyed) return;
                this.open = true;
                resolve();
            });
            socket.on('data', (chunk: Buffer) => this.received(chunk));
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
                this.callback = undefined;
                if (!wasOpen) reject(new Error('connection closed'));
                else if (!this.destroyed) this.emit('close');
            });
        });
    }

    setTimeout(ms: number): void {
        this.timeoutMs = ms;
    }

    writeFC3(unit: number, address: number, count: number, callback: ReplyCallback): void {
        this.short(3, unit, address, count, count, callback);
    }

    writeFC4(unit: number, address: number, count: number, callback: ReplyCallback): void {
        this.short(4, unit, address, count, count, callback);
    }

    /** One coil: ON is written as 0xFF00, OFF as 0 (the reply echoes the request, as FC 6). */
    writeFC5(unit: number, address: number, on: boolean, callback: ReplyCallback): void {
        this.short(5, unit, address, on ? 0xff00 : 0, 0, callback);
    }

    writeFC6(unit: number, address: number, value: number, callback: ReplyCallback): void {
        this.short(6, unit, address, value, 0, callback);
    }

    writeFC16(unit: number, address: number, values: number[], callback: ReplyCallback): void {
        if (!this.begin(16, unit, values.length, callback)) return;
        const frame = Buffer.allocUnsafe(requestBytes(16, values.length));
        frame[0] = unit;
        frame[1] = 16;
        frame.writeUInt16BE(address, 2);
        frame.writeUInt16BE(values.length, 4);
        frame[6] = 2 * values.length;
        for (let i = 0; i < values.length; i++) frame.writeUInt16BE(values[i]!, 7 + 2 * i);
        appendCrc(frame, frame.length - 2);
        this.send(frame);
    }

    close(callback?: () => void): void {
        this.destroy(callback);
    }

    destroy(callback?: () => void): void {
        this.destroyed = true;
        this.open = false;
        this.callback = undefined;
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        const socket = this.socket;
        if (socket && !socket.destroyed) socket.destroy();
        if (callback) queueMicrotask(callback);
    }

    // ---- requests ----

    /** A request of 8 bytes: unit, fc, address, and a count (reads) or value (FC 5, 6). */
    private short(
        fc: 3 | 4 | 5 | 6,
        unit: number,
        address: number,
        word: number,
        count: number,
        callback: ReplyCallback,
    ): void {
        if (!this.begin(fc, unit, count, callback)) return;
        const frame = this.frame;
        frame[0] = unit;
        frame[1] = fc;
        frame.writeUInt16BE(address, 2);
        frame.writeUInt16BE(word, 4);
        appendCrc(frame, 6);
        this.send(frame);
    }

    private begin(fc: number, unit: number, count: number, callback: ReplyCallback): boolean {
        if (!this.open || !this.socket || this.callback) {
            const error = this.callback
                ? new Error('a request is already in flight')
                : new NotOpenError();
            queueMicrotask(() => callback(error, undefined));
            return false;
        }
        this.callback = callback;
        this.unit = unit;
        this.fc = fc;
        this.count = count;
        // Whatever came in before this request belongs to an earlier one.
        this.rxLength = 0;
        return true;
    }

    private send(frame: Buffer): void {
        const socket = this.socket!;
        // The shared 8-byte frame is copied should the kernel still hold the previous one.
        socket.write(
            frame === this.frame && socket.writableLength > 0 ? Buffer.from(frame) : frame,
        );
        if (this.timer) clearTimeout(this.timer);
        this.timer =
            this.timeoutMs > 0 ? setTimeout(() => this.timedOut(), this.timeoutMs) : undefined;
    }

    private timedOut(): void {
        this.timer = undefined;
        if (!this.callback) return;
        this.rxLength = 0;
        this.finish(new TimedOutError(), undefined);
    }

    private finish(err: unknown, reply: unknown): void {
        const callback = this.callback!;
        this.callback = undefined;
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        try {
            callback(err, reply);
        } catch (e) {
            // Inside the socket's data handler an exception would end the process.
            this.emit('error', new Error(`reply handler failed: ${(e as Error).message}`));
        }
    }

    // ---- replies ----

    private received(chunk: Buffer): void {
        if (!this.callback) return; // nobody asked: a late reply, dropped
        const take = Math.min(chunk.length, this.rx.length - this.rxLength);
        chunk.copy(this.rx, this.rxLength, 0, take);
        this.rxLength += take;
        const length = replyLength(this.rx, 0, this.rxLength);
        if (length === 0 || this.rxLength < length) {
            if (this.rxLength >= this.rx.length) this.garbled('more bytes than any reply');
            return;
        }
        this.frameReceived(length);
    }

    /** A reply the client cannot use: report it for this request and drop what is buffered. */
    private garbled(why: string): void {
        this.rxLength = 0;
        this.finish(new BadReplyError(why), undefined);
    }

    private frameReceived(length: number): void {
        const rx = this.rx;
        const crc = rx[length - 2]! | (rx[length - 1]! << 8);
        if (crc !== crc16(rx, 0, length - 2)) {
            this.garbled('reply with a bad CRC');
            return;
        }
        const unit = rx[0]!;
        const fc = rx[1]!;
        // Bytes beyond the frame cannot belong to this request.
        this.rxLength = 0;
        if (unit !== this.unit) {
            this.garbled(`reply from unit ${unit} to a request for unit ${this.unit}`);
            return;
        }
        if (fc === (0x80 | this.fc)) {
            const code = rx[2]!;
            this.finish(
                Object.assign(new Error(`Modbus exception ${code}`), { modbusCode: code }),
                undefined,
            );
            return;
        }
        if (fc !== this.fc) {
            this.garbled(`reply with function code ${fc} to a request with ${this.fc}`);
            return;
        }
        if (fc === 3 || fc === 4) {
            const count = this.count;
            if (rx[2] !== 2 * count) {
                this.garbled(`reply of ${rx[2]! >> 1} registers to a read of ${count}`);
                return;
            }
            const data = new Array<number>(count);
            for (let i = 0; i < count; i++) data[i] = rx.readUInt16BE(3 + 2 * i);
            this.finish(null, data);
        } else {
            this.finish(null, null);
        }
    }
}
