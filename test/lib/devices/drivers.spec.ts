import assert from 'node:assert/strict';
import net from 'node:net';
import { ServerTCP } from 'modbus-serial';
import { createModbusDriver } from '../../../lib/devices/factory';
import { GenericModbusMeter } from '../../../lib/devices/generic-meter';
import { PowerBrainEvse, PowerBrainMeter } from '../../../lib/devices/powerbrain';
import type { EvseDriver, MeterDriver } from '../../../lib/core/types';
import { encode } from '../../../lib/modbus/codec';
import { ModbusError } from '../../../lib/modbus/errors';
import { BusPool } from '../../../lib/modbus/pool';
import { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import { freePort, independentClient, registers, sleep } from '../../support/modbus';

const BUS = { timeoutMs: 300, reconnectMinMs: 50, deviceBackoffMs: 200 };

/** An Eastron-like meter: float32 input registers. */
async function eastron(
    values: Record<number, number>,
): Promise<{ port: number; close: () => Promise<void> }> {
    const words = new Map<number, number>();
    for (const [address, v] of Object.entries(values))
        encode(v, 'float32').forEach((w, i) => words.set(Number(address) + i, w));
    const port = await freePort();
    const server = new ServerTCP(
        {
            getInputRegister: (addr: number) => words.get(addr) ?? 0,
            getMultipleInputRegisters: (addr: number, length: number) =>
                Array.from({ length }, (_, i) => words.get(addr + i) ?? 0),
        },
        { host: '127.0.0.1', port, unitID: 255 },
    );
    (server as unknown as { _server: net.Server })._server.on('connection', (s: net.Socket) =>
        s.setNoDelay(true),
    );
    await new Promise<void>((resolve) => server.once('initialized', () => resolve()));
    return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('devices (Modbus drivers)', function () {
    this.timeout(15000);
    let sim: PowerBrainSim;
    let pool: BusPool;

    beforeEach(async () => {
        sim = new PowerBrainSim({
            port: 0,
            plugged: true,
            car: { batteryWh: 60000, soc: 0.3, maxCurrent: 16000, phases: 3, followMs: 200 },
        });
        await sim.start();
        pool = new BusPool(BUS);
    });
    afterEach(async () => {
        await pool.close();
        await sim.close();
    });

    it('evse_powerbrain: programs the fail-safe once, reads state and meter, writes limit and enable', async () => {
        const evse = createModbusDriver(
            {
                dev_type: 'evse_powerbrain',
                dev_id: 'E1',
                address: `127.0.0.1:${sim.ports.evse}`,
                id: 1,
                failSafe: { current: 8000, timeoutMs: 120_000 },
            },
            { pool },
        ) as EvseDriver & PowerBrainEvse;
        assert.equal(evse.kind, 'evse');
        assert.equal(evse.keepAliveMs, 120_000);
        const first = await evse.read();
        assert.deepEqual(await registers(sim.ports.evse, 8083, 3), [0, 120, 80]);
        assert.equal(first.state, 3);
        assert.ok(first.currents && first.currents[0] > 0);
        assert.equal(evse.identity?.name, 'cFos Power Brain');
        assert.equal(evse.readPlan.length, 2, 'one request per contiguous block');
        const requests = sim.state.requests;
        await evse.read();
        assert.equal(
            sim.state.requests - requests,
            2,
            'a poll is two requests, the fail-safe is not rewritten',
        );

        await evse.apply({ current: 10_050, chargingEnabled: true, released: false });
        assert.equal(sim.state.currentLimit, 10_000, 'rounded down to 0.1 A');
        await sleep(700);
        const r = await evse.read();
        assert.deepEqual(r.currents, [10_000, 10_000, 10_000]);
        assert.equal(r.powerW, 6900);
        assert.ok((r.totalEnergyWh ?? -1) >= 0);

        await evse.apply({ current: 0, chargingEnabled: false, released: false });
        assert.equal(sim.state.chargingEnabled, false);
        assert.equal((await evse.read()).state, 2);
        // Released (disable_policy −1): the current the allocator counts it at, not a fixed one.
        await evse.apply({ current: 13_000, chargingEnabled: true, released: true });
        assert.equal(sim.state.chargingEnabled, true);
        assert.equal(sim.state.currentLimit, 13_000);

        sim.presentRfid('CAFE01');
        const card = await evse.read();
        assert.equal(card.rfid, 'CAFE01');
        sim.presentRfid('CAFE01');
        const again = await evse.read();
        assert.equal(again.rfid, 'CAFE01');
        assert.equal(again.rfidCount, card.rfidCount! + 1, 'the same card presented again');
        assert.equal(again.phases, 3, 'the contactor as read at start');
        await evse.setPhases(1);
        assert.equal(sim.state.phases, 1);
        assert.equal((await evse.read()).phases, 1);
        await evse.close();
        await evse.close();
        await assert.rejects(
            evse.read(),
            (e: unknown) => e instanceof ModbusError && e.code === 'MODBUS_CLOSED',
        );
    });

    it('evse_powerbrain: a second driver does not rewrite the fail-safe registers', async () => {
        const make = () =>
            new PowerBrainEvse({
                id: 'E1',
                address: `127.0.0.1:${sim.ports.evse}`,
                pool,
                failSafe: { current: 6000, timeoutMs: 180_000 },
            });
        const a = make();
        await a.read();
        await a.close();
        const writesBefore = sim.state.requests;
        const b = make();
        await b.read();
        // identity (1) + capabilities (1) + contactor 8087 (1) + fail-safe check (1) + poll (2):
        // no write
        assert.equal(sim.state.requests - writesBefore, 6);
        await b.close();
    });

    it('evse_powerbrain: the fail-safe follows the configuration, after a reconnect too, and never goes to flash periodically', async () => {
        const evse = new PowerBrainEvse({
            id: 'E1',
            address: `127.0.0.1:${sim.ports.evse}`,
            pool,
            failSafe: { current: 0, timeoutMs: 30_000 },
        });
        await evse.read();
        assert.deepEqual(await registers(sim.ports.evse, 8083, 3), [0, 30, 0]);
        const flash = sim.state.flashWrites;
        assert.equal(flash, 2, '8083 and 8085, once');
        for (let i = 0; i < 20; i++) {
            await evse.read();
            await evse.apply({ current: 6000 + i * 500, chargingEnabled: true, released: false });
        }
        assert.equal(
            sim.state.flashWrites,
            flash,
            'polls and setpoints write volatile registers only',
        );

        // A new configuration: written once, with the next read.
        evse.setFailSafe({ current: 10_000, timeoutMs: 70_000 });
        assert.equal(evse.keepAliveMs, 70_000);
        await evse.read();
        await evse.read();
        assert.deepEqual(await registers(sim.ports.evse, 8083, 3), [0, 70, 100]);
        assert.equal(sim.state.flashWrites, flash + 2);
        evse.setFailSafe({ current: 10_000, timeoutMs: 70_000 }); // unchanged: nothing to do
        await evse.read();
        assert.equal(sim.state.flashWrites, flash + 2);

        // Someone else sets the wallbox while the connection is down: restored on reconnect.
        sim.dropConnections();
        await independentClient(sim.ports.evse, 1, (c) => c.writeRegisters(8083, [0, 300, 60]));
        await sleep(100);
        for (let i = 0; i < 3; i++) await evse.read().catch(() => undefined);
        assert.deepEqual(await registers(sim.ports.evse, 8083, 3), [0, 70, 100]);

        // null (observe mode): the device keeps what it has, and nothing is written.
        evse.setFailSafe(null);
        assert.equal(evse.keepAliveMs, undefined);
        const before = sim.state.flashWrites;
        await independentClient(sim.ports.evse, 1, (c) => c.writeRegisters(8083, [0, 300, 60]));
        sim.dropConnections();
        for (let i = 0; i < 3; i++) await evse.read().catch(() => undefined);
        assert.deepEqual(await registers(sim.ports.evse, 8083, 3), [0, 300, 60]);
        assert.equal(sim.state.flashWrites, before + 2, 'only the other client wrote');
        assert.throws(
            () => evse.setFailSafe({ current: 3000, timeoutMs: 60_000 }),
            /0 or at least 6000 mA/,
        );
        await evse.close();
    });

    it('meter_powerbrain: S0 meters by name and by address', async () => {
        sim.setMeterPower(1, 4600);
        const m1 = createModbusDriver(
            {
                dev_type: 'meter_powerbrain',
                dev_id: 'M1',
                address: `127.0.0.1:${sim.ports.meter1}`,
                id: 2,
            },
            { pool },
        ) as MeterDriver;
        const r = await m1.read();
        assert.equal(r.powerW, 4600);
        assert.deepEqual(r.currents, [6700, 6700, 6700]);
        assert.deepEqual(r.voltages, [230, 230, 230]);
        // `meter2` names unit 3 of the Power Brain at powerBrainHost, on its port 4703
        const named = new PowerBrainMeter({ id: 'M2', address: 'meter2', pool });
        assert.equal(named.unit, 3);
        assert.match(named.label, /127\.0\.0\.1:4703 unit 3/);
        await named.close();
        const m2 = new PowerBrainMeter({
            id: 'M2',
            address: `127.0.0.1:${sim.ports.evse}`,
            unit: 3,
            pool,
        });
        assert.equal((await m2.read()).powerW, 0, '−1 (no pulses yet) reads as 0 W');
        await m1.close();
        await m2.close();
    });

    it('meter_sdm630 and meter_sdm72dm: float input registers, signed currents', async () => {
        const peer = await eastron({
            0: 231,
            2: 229,
            4: 230,
            6: 10.5,
            8: 2,
            0x0a: 0.5,
            0x0c: 2400,
            0x0e: -460,
            0x10: 115,
            0x34: 2055,
            0x48: 1234.5,
            0x4a: 12,
        });
        try {
            const sdm = createModbusDriver(
                {
                    dev_type: 'meter_sdm630',
                    dev_id: 'M3',
                    address: `127.0.0.1:${peer.port}`,
                    id: 1,
                },
                { pool },
            ) as MeterDriver;
            assert.deepEqual(await sdm.read(), {
                powerW: 2055,
                currents: [10500, -2000, 500],
                voltages: [231, 229, 230],
                importWh: 1234500,
                exportWh: 12000,
            });
            assert.equal((sdm as GenericModbusMeter).readPlan.length, 3);
            const v1 = createModbusDriver(
                {
                    dev_type: 'meter_sdm72dm',
                    dev_id: 'M4',
                    address: `127.0.0.1:${peer.port}`,
                    id: 1,
                },
                { pool },
            ) as MeterDriver;
            assert.deepEqual(await v1.read(), { powerW: 2055, importWh: 1234500, exportWh: 12000 });
        } finally {
            await peer.close();
        }
    });

    it('meter_modbus: a register map from configuration', async () => {
        sim.setMeterPower(2, 1000);
        const meter = createModbusDriver(
            {
                dev_type: 'meter_modbus',
                dev_id: 'M5',
                address: `127.0.0.1:${sim.ports.meter2}`,
                id: 3,
                registers: {
                    powerW: { address: 8062, type: 'int32' },
                    currentsA: [8064, 8066, 8068].map((address) => ({
                        address,
                        type: 'int32' as const,
                        scale: 0.1,
                    })) as never,
                },
            },
            { pool },
        ) as MeterDriver;
        const r = await meter.read();
        assert.equal(r.powerW, 1000);
        assert.deepEqual(r.currents, [1400, 1400, 1400]);
        assert.equal(r.soc, undefined, 'no soc register, no soc');
        // A storage meter's state of charge (%) from a register of its own; the simulator has
        // none, so the power register stands in for it: 1000 × 0.05 = 50 %.
        const storage = createModbusDriver(
            {
                dev_type: 'meter_modbus',
                dev_id: 'M7',
                address: `127.0.0.1:${sim.ports.meter2}`,
                id: 3,
                registers: {
                    powerW: { address: 8062, type: 'int32' },
                    soc: { address: 8062, type: 'int32', scale: 0.05 },
                },
            },
            { pool },
        ) as MeterDriver;
        assert.equal((await storage.read()).soc, 50);
        await storage.close();
        assert.throws(
            () =>
                createModbusDriver(
                    {
                        dev_type: 'meter_modbus',
                        dev_id: 'M6',
                        address: 'x:1',
                        registers: { powerW: { address: -1 } },
                    },
                    { pool },
                ),
            (e: unknown) => e instanceof ModbusError && e.code === 'MODBUS_BAD_REQUEST',
        );
        assert.throws(
            () =>
                createModbusDriver(
                    { dev_type: 'evse_unknown', dev_id: 'E9', address: 'x:1' },
                    { pool },
                ),
            /unknown Modbus device type/,
        );
    });

    it('names the device in every failure', async () => {
        const port = await freePort();
        const evse = new PowerBrainEvse({ id: 'E7', address: `127.0.0.1:${port}`, pool });
        await assert.rejects(
            evse.read(),
            (e: unknown) =>
                e instanceof ModbusError && e.message.startsWith(`E7 (127.0.0.1:${port} unit 1): `),
        );
        const notPb = new PowerBrainMeter({
            id: 'M7',
            address: `127.0.0.1:${sim.ports.evse}`,
            unit: 9,
            pool,
        });
        await assert.rejects(notPb.read(), /M7 .*exception 11/);
        await evse.close();
        await notPb.close();
        assert.equal(pool.size, 0, 'every bus closes with its last driver');
    });
});
