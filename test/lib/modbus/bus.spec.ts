import assert from 'node:assert/strict';
import { Bus, type BusOptions } from '../../../lib/modbus/bus';
import { ModbusError, type ModbusErrorCode } from '../../../lib/modbus/errors';
import { BusPool } from '../../../lib/modbus/pool';
import { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import { FaultServer, freePort, sleep } from '../../support/modbus';

const FAST: BusOptions = {
    timeoutMs: 100,
    reconnectMinMs: 50,
    reconnectMaxMs: 400,
    deviceBackoffMs: 1000,
    random: () => 1,
};

function tcp(port: number) {
    return { kind: 'tcp' as const, host: '127.0.0.1', port };
}

async function rejectsWith(
    p: Promise<unknown>,
    codes: ModbusErrorCode[],
    device: string,
): Promise<ModbusError> {
    try {
        await p;
    } catch (e) {
        assert.ok(e instanceof Error, 'a real Error');
        assert.ok(e instanceof ModbusError, `a ModbusError, got ${String(e)}`);
        assert.ok(
            codes.includes(e.code),
            `code ${e.code} not in ${codes.join(', ')}: ${e.message}`,
        );
        assert.ok(e.message.startsWith(`${device}: `), `message names the device: ${e.message}`);
        return e;
    }
    assert.fail('expected a rejection');
}

/** Reads of one unit in a loop for `ms`; returns the number of successful reads. */
async function poll(bus: Bus, unit: number, ms: number): Promise<number> {
    const end = Date.now() + ms;
    let ok = 0;
    while (Date.now() < end) {
        try {
            await bus.read({ device: `unit ${unit}`, unit, address: 100, count: 4 });
            ok++;
        } catch {
            // counted by the caller through the rate
        }
        await sleep(10);
    }
    return ok;
}

describe('modbus/bus', function () {
    this.timeout(20000);

    describe('against the simulator', () => {
        let sim: PowerBrainSim;
        let bus: Bus;

        before(async () => {
            sim = new PowerBrainSim({ port: 0, plugged: true });
            await sim.start();
        });
        afterEach(async () => bus?.close());
        after(async () => sim.close());

        it('reads and writes, with the unit id of each request', async () => {
            bus = new Bus(tcp(sim.ports.evse), FAST);
            // interleaved units on one connection: every reply belongs to its own unit
            const ids = await Promise.all(
                [1, 2, 3, 1, 3, 2].map((unit) =>
                    bus.read({ device: `u${unit}`, unit, address: 8040, count: 1 }),
                ),
            );
            assert.deepEqual(ids, [[1], [2], [3], [1], [3], [2]]);
            await bus.write({ device: 'E1', unit: 1, address: 8093, values: [100, 1] });
            assert.deepEqual(
                await bus.read({ device: 'E1', unit: 1, address: 8093, count: 2 }),
                [100, 1],
            );
            await bus.write({ device: 'E1', unit: 1, address: 8093, values: [120] });
            assert.deepEqual(
                await bus.read({ device: 'E1', unit: 1, address: 8093, count: 1 }),
                [120],
            );
            assert.equal(bus.state, 'connected');
        });

        it('reports Modbus exceptions as coded Errors', async () => {
            bus = new Bus(tcp(sim.ports.evse), FAST);
            const e = await rejectsWith(
                bus.read({ device: 'E1', unit: 1, address: 9000, count: 1 }),
                ['MODBUS_EXCEPTION'],
                'E1',
            );
            assert.equal(e.modbusCode, 2);
            await rejectsWith(
                bus.write({ device: 'E1', unit: 1, address: 8092, values: [1] }),
                ['MODBUS_EXCEPTION'],
                'E1',
            );
            await rejectsWith(
                bus.read({ device: 'E1', unit: 1, address: 8000, count: 200 }),
                ['MODBUS_BAD_REQUEST'],
                'E1',
            );
            // the device answered, so it is not backed off
            assert.deepEqual(
                await bus.read({ device: 'E1', unit: 1, address: 8002, count: 1 }),
                [1],
            );
        });

        it('polls the blocks of a read plan in one place in the queue, failing with the first bad one', async () => {
            bus = new Bus(tcp(sim.ports.evse), FAST);
            await bus.write({ device: 'E1', unit: 1, address: 8093, values: [100, 1] });
            const blocks = [
                { fc: 3 as const, address: 8000, count: 3 },
                { fc: 3 as const, address: 8092, count: 3 },
            ];
            const before = sim.state.requests;
            // a read queued after the poll is answered after both of its blocks
            const order: string[] = [];
            const polled = bus.poll({ device: 'E1', unit: 1, blocks }).then((image) => {
                order.push('poll');
                return image;
            });
            const read = bus
                .read({ device: 'u2', unit: 2, address: 8040, count: 1 })
                .then((words) => {
                    order.push('read');
                    return words;
                });
            const image = await polled;
            assert.deepEqual(await read, [2]);
            assert.deepEqual(order, ['poll', 'read']);
            assert.equal(sim.state.requests - before, 3);
            assert.deepEqual(image.get(8000, 3), [0xcf05, 0, 1]);
            assert.deepEqual(image.get(8093, 2), [100, 1]);
            assert.equal(image.decode(8000, 'uint32'), 0xcf050000);
            assert.equal(bus.stats.requests, 4);

            await rejectsWith(
                bus.poll({
                    device: 'E1',
                    unit: 1,
                    blocks: [blocks[0]!, { fc: 3, address: 9000, count: 1 }, blocks[1]!],
                }),
                ['MODBUS_EXCEPTION'],
                'E1',
            );
            await rejectsWith(
                bus.poll({ device: 'E1', unit: 1, blocks: [] }),
                ['MODBUS_BAD_REQUEST'],
                'E1',
            );
            await rejectsWith(
                bus.poll({ device: 'E1', unit: 1, blocks: [{ fc: 3, address: 8000, count: 126 }] }),
                ['MODBUS_BAD_REQUEST'],
                'E1',
            );
            assert.equal(bus.state, 'connected');
        });

        it('merges identical pending reads into one request', async () => {
            bus = new Bus(tcp(sim.ports.evse), FAST);
            const before = sim.state.requests;
            const reads = await Promise.all(
                Array.from({ length: 5 }, () =>
                    bus.read({ device: 'E1', unit: 1, address: 8092, count: 4 }),
                ),
            );
            assert.equal(reads.length, 5);
            assert.ok(sim.state.requests - before <= 2, `${sim.state.requests - before} requests`);
        });

        it('survives a server restart and reconnects with a fresh client', async () => {
            const port = await freePort();
            const first = new PowerBrainSim({ port, meterPorts: false });
            await first.start();
            bus = new Bus(tcp(port), FAST);
            assert.deepEqual(
                await bus.read({ device: 'E1', unit: 1, address: 8002, count: 1 }),
                [1],
            );
            await first.close();
            await rejectsWith(
                bus.read({ device: 'E1', unit: 1, address: 8002, count: 1 }),
                [
                    'MODBUS_DISCONNECTED',
                    'MODBUS_NOT_CONNECTED',
                    'MODBUS_CONNECT_FAILED',
                    'MODBUS_TIMEOUT',
                ],
                'E1',
            );
            await sleep(300);
            const second = new PowerBrainSim({ port, meterPorts: false });
            await second.start();
            try {
                const end = Date.now() + 5000;
                let value: number[] | undefined;
                while (!value && Date.now() < end) {
                    value = await bus
                        .read({ device: 'E1', unit: 1, address: 8002, count: 1 })
                        .catch(() => undefined);
                    if (!value) await sleep(50);
                }
                assert.deepEqual(value, [1]);
                assert.ok(bus.stats.reconnects >= 1);
            } finally {
                await bus.close();
                await second.close();
            }
        });
    });

    describe('faults on a shared bus', () => {
        let server: FaultServer;
        let bus: Bus;

        beforeEach(async () => {
            server = new FaultServer({ 1: 'ok', 2: 'silent', 3: 'exception', 4: 'drop' });
            await server.start();
        });
        afterEach(async () => {
            await bus?.close();
            await server.close();
        });

        it('times out a device that never answers, then backs it off', async () => {
            bus = new Bus(tcp(server.port), FAST);
            await rejectsWith(
                bus.read({ device: 'M2', unit: 2, address: 0, count: 2 }),
                ['MODBUS_TIMEOUT'],
                'M2',
            );
            const t0 = Date.now();
            await rejectsWith(
                bus.read({ device: 'M2', unit: 2, address: 0, count: 2 }),
                ['MODBUS_BACKOFF'],
                'M2',
            );
            assert.ok(Date.now() - t0 < 50, 'a backed-off device fails at once');
            assert.deepEqual(
                await bus.read({ device: 'M1', unit: 1, address: 5, count: 2 }),
                [5, 6],
            );
            assert.equal(bus.stats.timeouts, 1);
        });

        it('rejects pending requests when the connection drops mid-request, then reconnects', async () => {
            bus = new Bus(tcp(server.port), FAST);
            await bus.read({ device: 'M1', unit: 1, address: 0, count: 1 });
            const dropped = bus.read({ device: 'M4', unit: 4, address: 0, count: 1 });
            const queued = bus.read({ device: 'M1', unit: 1, address: 1, count: 1 });
            await rejectsWith(dropped, ['MODBUS_DISCONNECTED'], 'M4');
            await rejectsWith(queued, ['MODBUS_DISCONNECTED'], 'M1');
            await sleep(150);
            assert.deepEqual(await bus.read({ device: 'M1', unit: 1, address: 7, count: 1 }), [7]);
        });

        it('leaves no settled request behind in its client (answers, exceptions, timeouts)', async () => {
            bus = new Bus(tcp(server.port), FAST);
            // The TCP client holds only the request in flight: none once each has settled.
            const filed = (): number =>
                (bus as unknown as { client: { busy: boolean } }).client.busy ? 1 : 0;
            for (let i = 0; i < 300; i++) {
                await bus.read({ device: 'M1', unit: 1, address: i % 100, count: 2 });
                await bus.write({ device: 'M1', unit: 1, address: 1, values: [i] });
            }
            assert.equal(filed(), 0);
            await rejectsWith(
                bus.read({ device: 'M3', unit: 3, address: 0, count: 1 }),
                ['MODBUS_EXCEPTION'],
                'M3',
            );
            await rejectsWith(
                bus.read({ device: 'M2', unit: 2, address: 0, count: 1 }),
                ['MODBUS_TIMEOUT'],
                'M2',
            );
            assert.equal(filed(), 0);
            // the connection goes on serving requests after all of that
            assert.deepEqual(await bus.read({ device: 'M1', unit: 1, address: 9, count: 1 }), [9]);
            assert.equal(bus.stats.requests, 603);
        });

        it('keeps the poll rate of healthy devices beside silent and failing ones', async () => {
            bus = new Bus(tcp(server.port), FAST);
            const alone = await poll(bus, 1, 2000);
            const [beside] = await Promise.all([
                poll(bus, 1, 2000),
                poll(bus, 2, 2000),
                poll(bus, 3, 2000),
            ]);
            assert.ok(
                beside >= 0.8 * alone,
                `${beside} reads beside faulty devices vs ${alone} alone`,
            );
            assert.ok((server.requests.get(2) ?? 0) <= 3, 'the silent device is tried rarely');
        });

        it('keeps the poll rate of healthy devices beside one that drops the connection', async () => {
            bus = new Bus(tcp(server.port), FAST);
            const alone = await poll(bus, 1, 2000);
            const [beside] = await Promise.all([poll(bus, 1, 2000), poll(bus, 4, 2000)]);
            assert.ok(
                beside >= 0.8 * alone,
                `${beside} reads beside a dropping device vs ${alone} alone`,
            );
        });

        it('bounds its queue and rejects everything pending on close', async () => {
            bus = new Bus(tcp(server.port), { ...FAST, timeoutMs: 5000, maxQueue: 2 });
            await bus.read({ device: 'M1', unit: 1, address: 0, count: 1 }); // connected
            const pending = [0, 1, 2].map((a) =>
                bus.read({ device: 'M2', unit: 2, address: a, count: 1 }),
            );
            await sleep(50); // the first one is in flight, two wait
            await rejectsWith(
                bus.read({ device: 'M1', unit: 1, address: 9, count: 1 }),
                ['MODBUS_QUEUE_FULL'],
                'M1',
            );
            await bus.close();
            for (const p of pending) await rejectsWith(p, ['MODBUS_CLOSED'], 'M2');
            await rejectsWith(
                bus.read({ device: 'M1', unit: 1, address: 0, count: 1 }),
                ['MODBUS_CLOSED'],
                'M1',
            );
        });
    });

    it('fails clearly when nothing listens, and retries in the background', async () => {
        const port = await freePort();
        const bus = new Bus(tcp(port), FAST);
        try {
            const e = await rejectsWith(
                bus.read({ device: 'E9', unit: 1, address: 0, count: 1 }),
                ['MODBUS_CONNECT_FAILED'],
                'E9',
            );
            assert.match(e.message, /ECONNREFUSED/);
            assert.equal(bus.state, 'backoff');
            await rejectsWith(
                bus.read({ device: 'E9', unit: 1, address: 0, count: 1 }),
                ['MODBUS_NOT_CONNECTED'],
                'E9',
            );
        } finally {
            await bus.close();
        }
        assert.equal(bus.state, 'closed');
    });
});

describe('modbus/pool', () => {
    it('shares one bus per physical connection and closes it with its last user', async () => {
        const port = await freePort();
        const pool = new BusPool({ ...FAST, reconnectMinMs: 10_000 });
        const a = pool.acquire(`127.0.0.1:${port}`, 'E1');
        const b = pool.acquire({ kind: 'tcp', host: '127.0.0.1', port }, 'E2');
        assert.equal(a, b);
        assert.equal(pool.acquire(`127.0.0.1:${port}`, 'E1'), a, 'the same user counts once');
        assert.deepEqual(pool.users(`127.0.0.1:${port}`).sort(), ['E1', 'E2']);
        await pool.release(a, 'E1');
        assert.notEqual(a.state, 'closed');
        await pool.release(`127.0.0.1:${port}`, 'E2');
        assert.equal(a.state, 'closed');
        assert.equal(pool.size, 0);
        const serial = pool.acquire('/dev/ttyEVCM0,9600,8,N,1', 'M1');
        assert.throws(
            () => pool.acquire('/dev/ttyEVCM0,19200,8,N,1', 'M2'),
            (e: unknown) => e instanceof ModbusError && e.code === 'MODBUS_BAD_REQUEST',
        );
        assert.equal(pool.acquire('/dev/ttyEVCM0,9600,8,N,1', 'M3'), serial);
        await pool.close();
        assert.equal(pool.size, 0);
        assert.throws(() => pool.acquire(`127.0.0.1:${port}`, 'E3'), ModbusError);
    });
});
