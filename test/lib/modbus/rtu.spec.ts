import assert from 'node:assert/strict';
import { ServerSerial } from 'modbus-serial';
import { Bus } from '../../../lib/modbus/bus';
import { parseBusAddress } from '../../../lib/modbus/address';
import { ModbusError } from '../../../lib/modbus/errors';
import { hasCommand, PtyPair } from '../../support/modbus';

describe('modbus/bus over RTU (socat pseudo-terminal pair)', function () {
    this.timeout(15000);
    const pty = new PtyPair();
    let server: ServerSerial | undefined;
    const registers = new Map<number, number>([
        [0, 4242],
        [1, 0xdead],
        [2, 0xbeef],
    ]);

    before(async function () {
        if (!hasCommand('socat')) {
            console.warn('      socat is not installed: RTU tests skipped (apt-get install socat)');
            this.skip();
        }
        await pty.start();
        server = new ServerSerial(
            {
                getHoldingRegister: (addr: number) => {
                    if (!registers.has(addr)) throw { modbusErrorCode: 2 };
                    return registers.get(addr)!;
                },
                setRegister: (addr: number, value: number) => {
                    registers.set(addr, value);
                },
            },
            { path: pty.a, baudRate: 9600, unitID: 5, interval: 5 } as never,
        );
        await new Promise<void>((resolve) => server!.once('initialized', () => resolve()));
    });

    after(async () => {
        if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
        await pty.stop();
    });

    it('reads, writes and reports exceptions and timeouts by device', async () => {
        const bus = new Bus(parseBusAddress(`${pty.b},9600,8,N,1`), {
            timeoutMs: 300,
            deviceBackoffMs: 100,
        });
        try {
            assert.deepEqual(
                await bus.read({ device: 'M1', unit: 5, address: 0, count: 3 }),
                [4242, 0xdead, 0xbeef],
            );
            await bus.write({ device: 'M1', unit: 5, address: 0, values: [7] });
            assert.deepEqual(await bus.read({ device: 'M1', unit: 5, address: 0, count: 1 }), [7]);
            await assert.rejects(
                bus.read({ device: 'M1', unit: 5, address: 50, count: 1 }),
                (e: unknown) =>
                    e instanceof ModbusError &&
                    e.code === 'MODBUS_EXCEPTION' &&
                    e.message.startsWith('M1: '),
            );
            // another unit on the same line that does not exist: a timeout naming it, the line stays usable
            await assert.rejects(
                bus.read({ device: 'M9', unit: 9, address: 0, count: 1 }),
                (e: unknown) =>
                    e instanceof ModbusError &&
                    e.code === 'MODBUS_TIMEOUT' &&
                    e.message.startsWith('M9: '),
            );
            assert.deepEqual(
                await bus.read({ device: 'M1', unit: 5, address: 1, count: 1 }),
                [0xdead],
            );
        } finally {
            await bus.close();
        }
    });
});
