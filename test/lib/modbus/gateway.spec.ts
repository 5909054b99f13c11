import assert from 'node:assert/strict';
import type net from 'node:net';
import { ServerSerial, ServerTCP } from 'modbus-serial';
import { DefinedMeter } from '../../../lib/devices/defined-device';
import { EASTRON_SDM630 } from '../../../lib/devices/definitions/eastron-sdm630';
import { formatBusAddress, parseBusAddress } from '../../../lib/modbus/address';
import { Bus } from '../../../lib/modbus/bus';
import { ModbusError, type ModbusErrorCode } from '../../../lib/modbus/errors';
import { BusPool } from '../../../lib/modbus/pool';
import { freePort, hasCommand, PtyTcpBridge, sleep } from '../../support/modbus';
import { RtuServer } from '../../support/rtu-server';

async function rejectsWith(p: Promise<unknown>, code: ModbusErrorCode): Promise<ModbusError> {
    try {
        await p;
    } catch (e) {
        assert.ok(e instanceof ModbusError, String(e));
        assert.equal(e.code, code, e.message);
        return e;
    }
    assert.fail(`expected ${code}`);
}

describe('modbus/address of gateways', () => {
    it('reads RTU over TCP as host:port,rtu with the gateway line baud rate', () => {
        assert.deepEqual(parseBusAddress('192.0.2.7:8899,rtu'), {
            kind: 'tcp',
            host: '192.0.2.7',
            port: 8899,
            framing: 'rtu',
        });
        assert.deepEqual(parseBusAddress(' gw.local:502 , RTU , 19200 '), {
            kind: 'tcp',
            host: 'gw.local',
            port: 502,
            framing: 'rtu',
            baudRate: 19200,
        });
        assert.deepEqual(parseBusAddress('gw.local,rtu'), {
            kind: 'tcp',
            host: 'gw.local',
            port: 502,
            framing: 'rtu',
        });
        assert.deepEqual(parseBusAddress('[fd00::7]:4196,rtu'), {
            kind: 'tcp',
            host: 'fd00::7',
            port: 4196,
            framing: 'rtu',
        });
        for (const a of ['192.0.2.7:8899,rtu', 'gw:1,rtu,9600', '[fd00::7]:4196,rtu']) {
            assert.equal(formatBusAddress(parseBusAddress(a)), a);
        }
        for (const bad of ['COM1,rtu', '/dev/ttyUSB0,rtu', 'gw:0,rtu', 'gw:502,rtu,fast', ',rtu']) {
            assert.throws(
                () => parseBusAddress(bad),
                (e: unknown) => e instanceof ModbusError && e.code === 'MODBUS_BAD_REQUEST',
                bad,
            );
        }
        // unchanged: serial lines and Modbus TCP
        assert.equal(parseBusAddress('/dev/ttyUSB0,9600,8,N,1').kind, 'rtu');
        assert.deepEqual(parseBusAddress('192.0.2.7:502'), {
            kind: 'tcp',
            host: '192.0.2.7',
            port: 502,
        });
    });

    it('keeps the gap of the gateway line: its baud rate, else 9600 Bd; none on Modbus TCP', async () => {
        const pool = new BusPool({ reconnectMinMs: 60_000, connectTimeoutMs: 100 });
        try {
            const port = await freePort();
            assert.equal(pool.acquire(`127.0.0.1:${port}`, 'a').interFrameGapMs, 0);
            const p2 = await freePort();
            assert.ok(
                Math.abs(pool.acquire(`127.0.0.1:${p2},rtu`, 'a').interFrameGapMs - 4.01) < 0.01,
            );
            const p3 = await freePort();
            assert.equal(pool.acquire(`127.0.0.1:${p3},rtu,57600`, 'a').interFrameGapMs, 1.75);
            // one host:port is either a Modbus TCP or an RTU-over-TCP peer, not both
            assert.throws(
                () => pool.acquire(`127.0.0.1:${port},rtu`, 'b'),
                (e: unknown) => e instanceof ModbusError && e.code === 'MODBUS_BAD_REQUEST',
            );
        } finally {
            await pool.close();
        }
    });
});

describe('modbus/bus through a Modbus TCP gateway', function () {
    this.timeout(15000);

    it('reaches several unit ids behind one host:port over one connection and one queue', async () => {
        // A gateway to an RS-485 line: one answer at a time, each from the unit it was asked.
        let connections = 0;
        let inFlight = 0;
        let maxInFlight = 0;
        const asked: number[] = [];
        type Done = (err: Error | null, values: number[]) => void;
        const vector = {
            getMultipleHoldingRegisters: (addr: number, n: number, unit: number, done: Done) => {
                asked.push(unit);
                inFlight++;
                maxInFlight = Math.max(maxInFlight, inFlight);
                setTimeout(() => {
                    inFlight--;
                    if (unit === 9) {
                        done(Object.assign(new Error('no answer'), { modbusErrorCode: 11 }), []);
                        return;
                    }
                    done(
                        null,
                        Array.from({ length: n }, (_, i) => unit * 100 + addr + i),
                    );
                }, 3);
            },
        };
        const port = await freePort();
        const server = new ServerTCP(vector, { host: '127.0.0.1', port, unitID: 255 });
        (server as unknown as { _server: net.Server })._server.on('connection', () => {
            connections++;
        });
        await new Promise<void>((resolve) => server.once('initialized', () => resolve()));
        const pool = new BusPool({ timeoutMs: 1000 });
        try {
            const address = `127.0.0.1:${port}`;
            const buses = [1, 2, 3].map((unit) => pool.acquire(address, `meter ${unit}`));
            assert.equal(buses[0], buses[1]);
            assert.equal(buses[1], buses[2]);
            const reads = await Promise.all(
                Array.from({ length: 30 }, (_, i) => {
                    const unit = (i % 3) + 1;
                    return buses[unit - 1]!.read({
                        device: `meter ${unit}`,
                        unit,
                        address: i,
                        count: 2,
                    });
                }),
            );
            reads.forEach((words, i) => {
                const unit = (i % 3) + 1;
                assert.deepEqual(words, [unit * 100 + i, unit * 100 + i + 1]);
            });
            // the gateway's own "target device failed to respond" names the device
            const e = await rejectsWith(
                buses[0]!.read({ device: 'meter 9', unit: 9, address: 0, count: 2 }),
                'MODBUS_EXCEPTION',
            );
            assert.equal(e.modbusCode, 11);
            assert.match(e.message, /^meter 9: /);
            assert.equal(connections, 1, 'one connection for every unit');
            assert.equal(maxInFlight, 1, 'one request at a time');
            assert.deepEqual(asked.slice(0, 6), [1, 2, 3, 1, 2, 3], 'in queue order');
        } finally {
            await pool.close();
            await new Promise<void>((resolve) => server.close(() => resolve()));
        }
    });
});

describe('modbus/bus over RTU over TCP', function () {
    this.timeout(20000);

    before(function () {
        if (!hasCommand('socat')) {
            console.warn('      socat is not installed: RTU tests skipped (apt-get install socat)');
            this.skip();
        }
    });

    it('reads, writes and reports exceptions and timeouts through a transparent gateway', async () => {
        // socat bridges a TCP port to a pty where modbus-serial's RTU server answers units 1
        // and 2: an independent peer that frames, checks and answers RTU with its own CRC code.
        const bridge = new PtyTcpBridge();
        await bridge.start();
        const holding = new Map<number, number>();
        const unitOf = (unit: number): void => {
            if (unit !== 1 && unit !== 2) throw new Error('not on this line');
        };
        type Done = (err: Error | null, values: number[]) => void;
        type Ack = (err: Error | null) => void;
        const fault = (code: number): Error =>
            Object.assign(new Error(`exception ${code}`), { modbusErrorCode: code });
        const server = new ServerSerial(
            {
                getMultipleHoldingRegisters: (a: number, n: number, unit: number, done: Done) => {
                    if (unit === 3) return; // on the line, but dead
                    unitOf(unit);
                    if (a >= 1000) return done(fault(2), []);
                    done(
                        null,
                        Array.from(
                            { length: n },
                            (_, i) => holding.get(a + i) ?? unit * 10 + a + i,
                        ),
                    );
                },
                getMultipleInputRegisters: (a: number, n: number, unit: number, done: Done) => {
                    unitOf(unit);
                    done(
                        null,
                        Array.from({ length: n }, (_, i) => 0xf000 + a + i),
                    );
                },
                setRegister: (a: number, v: number, unit: number, done: Ack) => {
                    unitOf(unit);
                    holding.set(a, v);
                    done(null);
                },
                setRegisterArray: (a: number, values: number[], unit: number, done: Ack) => {
                    unitOf(unit);
                    values.forEach((v, i) => holding.set(a + i, v));
                    done(null);
                },
            },
            { path: bridge.path, baudRate: 9600, unitID: 255, interval: 2 } as never,
        );
        await new Promise<void>((resolve) => server.once('initialized', () => resolve()));
        const bus = new Bus(parseBusAddress(`127.0.0.1:${bridge.port},rtu,9600`), {
            timeoutMs: 500,
            deviceBackoffMs: 100,
        });
        try {
            assert.deepEqual(
                await bus.read({ device: 'M1', unit: 1, address: 0, count: 3 }),
                [10, 11, 12],
            );
            assert.deepEqual(
                await bus.read({ device: 'M2', unit: 2, address: 0, count: 2 }),
                [20, 21],
            );
            assert.deepEqual(
                await bus.read({ device: 'M2', unit: 2, fc: 4, address: 0x10, count: 125 }),
                Array.from({ length: 125 }, (_, i) => 0xf010 + i),
            );
            await bus.write({ device: 'M1', unit: 1, address: 40, values: [0xbeef] });
            await bus.write({ device: 'M1', unit: 1, address: 41, values: [1, 2, 3] });
            assert.deepEqual(
                await bus.read({ device: 'M1', unit: 1, address: 40, count: 4 }),
                [0xbeef, 1, 2, 3],
            );
            const e = await rejectsWith(
                bus.read({ device: 'M1', unit: 1, address: 1000, count: 2 }),
                'MODBUS_EXCEPTION',
            );
            assert.equal(e.modbusCode, 2);
            const t0 = performance.now();
            await rejectsWith(
                bus.read({ device: 'M3', unit: 3, address: 0, count: 2, timeoutMs: 150 }),
                'MODBUS_TIMEOUT',
            );
            assert.ok(performance.now() - t0 < 450, 'the device timeout, not the bus timeout');
            await rejectsWith(
                bus.read({ device: 'M3', unit: 3, address: 0, count: 2 }),
                'MODBUS_BACKOFF',
            );
            // the line goes on after the dead unit
            assert.deepEqual(
                await bus.read({ device: 'M2', unit: 2, address: 1, count: 2 }),
                [21, 22],
            );
            assert.equal(bus.state, 'connected');
            assert.equal(bus.stats.reconnects, 0);
        } finally {
            await bus.close();
            await new Promise<void>((resolve) => server.close(() => resolve()));
            await bridge.stop();
        }
    });

    it('drives a meter of the device table at a host:port,rtu address', async () => {
        // every register pair of the server holds 230.0 as float32
        const server = new RtuServer({ units: { 7: 'ok' } });
        const port = await server.listenTcp();
        const pool = new BusPool();
        try {
            const meter = new DefinedMeter({
                id: 'M1',
                address: `127.0.0.1:${port},rtu`,
                unit: 7,
                pool,
                definition: EASTRON_SDM630,
            });
            const reading = await meter.read();
            assert.equal(reading.powerW, 230);
            assert.deepEqual(reading.voltages, [230, 230, 230]);
            assert.equal(reading.importWh, 230_000);
            assert.deepEqual(
                server.frames.map((f) => [f.unit, f.fc]),
                meter.readPlan.map((b) => [7, b.fc]),
            );
        } finally {
            await pool.close();
            await server.close();
        }
    });

    it('reports a garbled reply as a bad reply and keeps the connection', async () => {
        const server = new RtuServer({ units: { 1: 'ok', 2: 'garbled', 4: 'exception' } });
        const port = await server.listenTcp();
        const bus = new Bus(parseBusAddress(`127.0.0.1:${port},rtu,115200`), { timeoutMs: 300 });
        try {
            assert.deepEqual(
                await bus.read({ device: 'M1', unit: 1, fc: 4, address: 0, count: 2 }),
                [0x4366, 0],
            );
            await rejectsWith(
                bus.read({ device: 'M2', unit: 2, address: 0, count: 2 }),
                'MODBUS_BAD_REPLY',
            );
            await rejectsWith(
                bus.write({ device: 'M2', unit: 2, address: 0, values: [1] }),
                'MODBUS_BAD_REPLY',
            );
            const e = await rejectsWith(
                bus.read({ device: 'M4', unit: 4, address: 0, count: 2 }),
                'MODBUS_EXCEPTION',
            );
            assert.equal(e.modbusCode, 2);
            await bus.write({ device: 'M1', unit: 1, address: 7, values: [1, 2] });
            assert.deepEqual(
                await bus.read({ device: 'M1', unit: 1, address: 2, count: 3 }),
                [0x4366, 0, 0x4366],
            );
            assert.equal(bus.stats.reconnects, 0);
            assert.equal(server.crcErrors, 0, 'every request the client framed had a good CRC');
            assert.deepEqual(
                server.frames.map((f) => [f.unit, f.fc]),
                [
                    [1, 4],
                    [2, 3],
                    [2, 6],
                    [4, 3],
                    [1, 16],
                    [1, 3],
                ],
            );
            assert.ok(Math.min(...server.gaps()) >= 1.75, 'the gap of the 115200 Bd line');
        } finally {
            await bus.close();
            await server.close();
        }
        await sleep(0);
    });
});
