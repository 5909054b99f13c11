// Runs a meter or inverter fixture against the driver of its dev_type: the fixture's simulator on
// loopback TCP (or one end of a socat pseudo-terminal pair), the driver on the other side, and
// every state's `expect` compared with what the driver reads; a cycle must take exactly the
// number of requests the spec computed by hand from the fixture's register layout.
import assert from 'node:assert/strict';
import { DefinedMeter } from '../../lib/devices/defined-device';
import { createModbusDriver } from '../../lib/devices/factory';
import type { MeterDriver, MeterReading } from '../../lib/core/types';
import { BusPool } from '../../lib/modbus/pool';
import type { DeviceFixture, FixtureExpectation } from '../../lib/sim/register-sim';
import { RegisterSim } from '../../lib/sim/register-sim';
import { hasCommand, PtyPair } from './modbus';

const BUS = { timeoutMs: 500, reconnectMinMs: 30, reconnectMaxMs: 60, deviceBackoffMs: 50 };

/** The driver for a dev_type as a device table gets it: from the factory, the definition driver. */
export async function meterDriver(
    type: string,
    address: string,
    pool: BusPool,
    unit?: number,
): Promise<DefinedMeter> {
    const d = createModbusDriver(
        { dev_type: type, dev_id: 'M1', address, ...(unit !== undefined ? { id: unit } : {}) },
        { pool, bus: BUS },
    );
    assert.ok(d instanceof DefinedMeter, `${type}: the factory made no definition meter`);
    return Promise.resolve(d);
}

/** Compares a reading with a fixture state's expectation (voltages: the driver gives whole V). */
export function checkReading(r: MeterReading, e: FixtureExpectation, what: string): void {
    assert.equal(r.powerW, e.powerW, `${what}: powerW`);
    if (e.currentsA) {
        assert.deepEqual(
            r.currents,
            e.currentsA.map((a) => Math.round(a * 1000)),
            `${what}: currents (mA)`,
        );
    }
    if (e.voltagesV) {
        assert.ok(r.voltages, `${what}: voltages`);
        r.voltages.forEach((v, i) =>
            assert.ok(
                Math.abs(v - e.voltagesV![i]!) <= 0.5,
                `${what}: voltage L${i + 1} ${v} V, expected ${e.voltagesV![i]} V`,
            ),
        );
    }
    if (e.importWh !== undefined) assert.equal(r.importWh, e.importWh, `${what}: importWh`);
    if (e.exportWh !== undefined) assert.equal(r.exportWh, e.exportWh, `${what}: exportWh`);
}

export interface MeterFixtureCase {
    fixture: DeviceFixture;
    /** Requests of one read cycle, counted by hand from the fixture's register layout. */
    requestsPerCycle: number;
    /** Serve RTU over a socat pseudo-terminal pair instead of TCP. */
    rtu?: boolean;
}

/** A mocha suite for one fixture: every state through the family's driver. */
export function describeMeterFixture(c: MeterFixtureCase): void {
    const f = c.fixture;
    describe(`${f.type}: ${f.title} (${c.rtu ? 'RTU over socat' : 'TCP'})`, function () {
        this.timeout(20000);
        let pool: BusPool;
        let sim: RegisterSim;
        let address = '';
        const pty = new PtyPair();

        before(async function () {
            sim = new RegisterSim(f, { strictUnit: true });
            if (c.rtu) {
                if (!hasCommand('socat')) {
                    console.warn('      socat is not installed: RTU fixture test skipped');
                    this.skip();
                }
                await pty.start();
                await sim.listenSerial(pty.a, 9600);
                address = `${pty.b},9600,8,N,1`;
            } else {
                address = `127.0.0.1:${await sim.listen()}`;
            }
        });
        beforeEach(() => {
            pool = new BusPool(BUS);
        });
        afterEach(async () => {
            await pool.close();
        });
        after(async () => {
            await sim?.close();
            await pty.stop();
        });

        it('reads every state as the document says, in the fewest requests', async () => {
            const meter: MeterDriver & DefinedMeter = await meterDriver(
                f.type,
                address,
                pool,
                f.unit,
            );
            const states = Object.entries(f.states);
            for (const [name, state] of states) {
                sim.setState(name);
                await meter.read(); // the first read also scans (SunSpec) and reads the identity
                const before = sim.requests;
                const r = await meter.read();
                checkReading(r, state.expect, `${f.type} ${name}`);
                assert.equal(
                    sim.requests - before,
                    c.requestsPerCycle,
                    `${f.type}: requests per cycle`,
                );
                assert.equal(meter.readPlan.length, c.requestsPerCycle, `${f.type}: read plan`);
                if (state.expect.model !== undefined)
                    assert.equal(meter.identity?.model, state.expect.model, `${f.type}: model`);
                if (state.expect.serial !== undefined)
                    assert.equal(meter.identity?.serial, state.expect.serial, `${f.type}: serial`);
            }
            assert.equal(sim.writes.length, 0, 'a meter is only read');
        });
    });
}
