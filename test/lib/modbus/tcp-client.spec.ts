import assert from 'node:assert/strict';
import net from 'node:net';
import { normalise } from '../../../lib/modbus/errors';
import { ModbusTcpClient } from '../../../lib/modbus/tcp-client';

/** A raw TCP peer: the test decides byte by byte what the client receives. */
class RawPeer {
    readonly requests: Buffer[] = [];
    private socket: net.Socket | undefined;
    private readonly server = net.createServer((s) => {
        this.socket = s;
        s.on('data', (d) => {
            this.requests.push(d);
            this.onRequest(d);
        });
        s.on('error', () => undefined);
    });
    onRequest: (frame: Buffer) => void = () => undefined;

    async start(): Promise<number> {
        await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
        return (this.server.address() as net.AddressInfo).port;
    }

    send(bytes: Buffer): void {
        this.socket!.write(bytes);
    }

    drop(): void {
        this.socket?.destroy();
    }

    async stop(): Promise<void> {
        this.socket?.destroy();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
}

/** A Modbus TCP reply frame: MBAP with the given transaction id, then unit and PDU bytes. */
function reply(tid: number, unit: number, pdu: number[]): Buffer {
    const b = Buffer.alloc(7 + pdu.length);
    b.writeUInt16BE(tid, 0);
    b.writeUInt16BE(0, 2);
    b.writeUInt16BE(1 + pdu.length, 4);
    b[6] = unit;
    Buffer.from(pdu).copy(b, 7);
    return b;
}

function call(
    start: (cb: (err: unknown, reply: unknown) => void) => void,
): Promise<{ err: unknown; reply: unknown }> {
    return new Promise((resolve) => start((err, reply) => resolve({ err, reply })));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('modbus/tcp-client', () => {
    let peer: RawPeer;
    let client: ModbusTcpClient;

    beforeEach(async () => {
        peer = new RawPeer();
        const port = await peer.start();
        client = new ModbusTcpClient();
        client.on('error', () => undefined);
        client.setTimeout(300);
        await client.connectTCP('127.0.0.1', { port });
    });

    afterEach(async () => {
        await new Promise<void>((resolve) => client.destroy(resolve));
        await peer.stop();
    });

    it('frames FC3, FC4, FC6 and FC16 requests with a new transaction id each', async () => {
        peer.onRequest = (f) => {
            const tid = f.readUInt16BE(0);
            const fc = f[7]!;
            if (fc === 3 || fc === 4) peer.send(reply(tid, f[6]!, [fc, 4, 0, 1, 0xff, 0xfe]));
            else peer.send(reply(tid, f[6]!, [...f.subarray(7, 12)]));
        };
        const r3 = await call((cb) => client.writeFC3(7, 8093, 2, cb));
        assert.deepEqual(r3, { err: null, reply: [1, 0xfffe] });
        const r4 = await call((cb) => client.writeFC4(8, 1000, 2, cb));
        assert.deepEqual(r4.reply, [1, 0xfffe]);
        assert.equal((await call((cb) => client.writeFC6(9, 8093, 16, cb))).err, null);
        assert.equal((await call((cb) => client.writeFC16(9, 8100, [1, 2], cb))).err, null);
        const hex = peer.requests.map((b) => b.toString('hex'));
        assert.deepEqual(hex, [
            '000100000006' + '07' + '03' + '1f9d0002',
            '000200000006' + '08' + '04' + '03e80002',
            '000300000006' + '09' + '06' + '1f9d0010',
            '00040000000b' + '09' + '10' + '1fa40002' + '04' + '00010002',
        ]);
    });

    it('assembles a reply split across reads and ignores one with another transaction id', async () => {
        peer.onRequest = (f) => {
            const tid = f.readUInt16BE(0);
            const stale = reply((tid - 1) & 0xffff, 1, [3, 2, 0, 9]);
            const right = reply(tid, 1, [3, 2, 0, 42]);
            // a stale reply and the first bytes of the right one, then the rest later
            peer.send(Buffer.concat([stale, right.subarray(0, 5)]));
            setTimeout(() => peer.send(right.subarray(5)), 30);
        };
        assert.deepEqual(await call((cb) => client.writeFC3(1, 0, 1, cb)), {
            err: null,
            reply: [42],
        });
    });

    it('turns exceptions, timeouts and mismatched replies into the errors the bus maps', async () => {
        peer.onRequest = (f) => {
            const tid = f.readUInt16BE(0);
            const unit = f[6]!;
            if (unit === 1) peer.send(reply(tid, 1, [0x83, 2]));
            if (unit === 3) peer.send(reply(tid, 4, [3, 2, 0, 1]));
            // unit 2 stays silent
        };
        const exception = normalise((await call((cb) => client.writeFC3(1, 0, 1, cb))).err, 'E');
        assert.equal(exception.code, 'MODBUS_EXCEPTION');
        assert.equal(exception.modbusCode, 2);
        const timeout = normalise((await call((cb) => client.writeFC3(2, 0, 1, cb))).err, 'E');
        assert.equal(timeout.code, 'MODBUS_TIMEOUT');
        const wrongUnit = normalise((await call((cb) => client.writeFC3(3, 0, 1, cb))).err, 'E');
        assert.equal(wrongUnit.code, 'MODBUS_DISCONNECTED');
        assert.match(wrongUnit.message, /expected address 3 got 4/);
    });

    it('ends the connection with an error when a reply handler throws, instead of letting it escape', async () => {
        peer.onRequest = (f) => peer.send(reply(f.readUInt16BE(0), 1, [3, 2, 0, 42]));
        const failed = new Promise<Error>((resolve) => client.once('error', resolve));
        client.writeFC3(1, 0, 1, () => {
            throw new Error('handler bug');
        });
        assert.match((await failed).message, /handler bug/);
        assert.equal(client.isOpen, false);
    });

    it('reports a dropped connection and refuses requests after it', async () => {
        const closed = new Promise<void>((resolve) => client.once('close', resolve));
        peer.drop();
        await closed;
        assert.equal(client.isOpen, false);
        // refused, and told after the call that made the request, never inside it
        let told = false;
        const refused = call((cb) => {
            client.writeFC3(1, 0, 1, (err, reply) => {
                told = true;
                cb(err, reply);
            });
            assert.equal(told, false);
        });
        const after = normalise((await refused).err, 'E');
        assert.equal(after.code, 'MODBUS_NOT_CONNECTED');
        await sleep(10);
    });
});
