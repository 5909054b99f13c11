// Runs a wallbox fixture against the driver the factory makes for its dev_type: the fixture's
// RegisterSim on loopback TCP (or RTU over a socat pseudo-terminal pair), every state's
// expectations read through the driver, every write made through it and checked on the wire.
import assert from 'node:assert/strict';
import type { EvseCommand, EvseDriver, EvseReading } from '../../lib/core/types';
import { createModbusDriver } from '../../lib/devices/factory';
import { BusPool } from '../../lib/modbus/pool';
import type { DeviceFixture, FixtureWrite, RecordedWrite } from '../../lib/sim/register-sim';
import { RegisterSim } from '../../lib/sim/register-sim';
import { hasCommand, PtyPair } from './modbus';

const BUS = { timeoutMs: 500, reconnectMinMs: 50, deviceBackoffMs: 200 };

/** What the fixture tests need of a definition-driven wallbox beyond EvseDriver. */
export interface FixtureEvse extends EvseDriver {
    setPhases?(phases: 1 | 3): Promise<void>;
    readonly identity?: { model?: string; serial?: string };
    readonly readPlan?: readonly unknown[];
}

export interface Rig {
    sim: RegisterSim;
    address: string;
    pool: BusPool;
    close(): Promise<void>;
}

export type Transport = { kind: 'tcp' } | { kind: 'rtu'; baud: number };

/** The fixture served on a fresh simulator; `address` is what a device table would hold. */
export async function startRig(fixture: DeviceFixture, transport: Transport): Promise<Rig> {
    const sim = new RegisterSim(fixture);
    const pool = new BusPool(BUS);
    if (transport.kind === 'tcp') {
        const port = await sim.listen();
        return {
            sim,
            pool,
            address: `127.0.0.1:${port}`,
            close: async () => {
                await pool.close();
                await sim.close();
            },
        };
    }
    const pty = new PtyPair();
    await pty.start();
    await sim.listenSerial(pty.a, transport.baud);
    return {
        sim,
        pool,
        address: `${pty.b},${transport.baud},8,N,1`,
        close: async () => {
            await pool.close();
            await sim.close();
            await pty.stop();
        },
    };
}

export function driverFor(fixture: DeviceFixture, rig: Rig): FixtureEvse {
    const driver = createModbusDriver(
        { dev_type: fixture.type, dev_id: 'E1', address: rig.address, id: fixture.unit },
        { pool: rig.pool },
    );
    assert.equal(driver.kind, 'evse', `${fixture.type} is a wallbox`);
    return driver as FixtureEvse;
}

/** Compares a reading (and the identity) with what the document says a controller must see. */
export function checkReading(
    fixture: DeviceFixture,
    name: string,
    reading: EvseReading,
    driver: FixtureEvse,
): void {
    const e = fixture.states[name]!.expect;
    const where = `${fixture.type} in state "${name}"`;
    if (e.state !== undefined) assert.equal(reading.state, e.state, `${where}: state`);
    if (e.currentsA !== undefined) {
        assert.deepEqual(
            reading.currents,
            e.currentsA.map((a) => Math.round(a * 1000)),
            `${where}: currents (mA)`,
        );
    }
    if (e.powerW !== undefined) assert.equal(reading.powerW, e.powerW, `${where}: power`);
    const energy = e.energyWh ?? e.importWh;
    if (energy !== undefined) assert.equal(reading.totalEnergyWh, energy, `${where}: energy`);
    if (e.model !== undefined) assert.equal(driver.identity?.model, e.model, `${where}: model`);
    if (e.serial !== undefined) assert.equal(driver.identity?.serial, e.serial, `${where}: serial`);
}

const command = (current: number, chargingEnabled: boolean): EvseCommand => ({
    current: Math.round(current * 1000),
    chargingEnabled,
    released: false,
});

/**
 * Makes the write's request through the driver. Writes a controller makes on its own at the
 * first read (init, life bit, fail-safe) are part of that read; for the others the driver is
 * first brought to the opposite situation and the log cleared, so that what is checked is the
 * write the request itself causes.
 */
export async function makeRequest(driver: FixtureEvse, rig: Rig, w: FixtureWrite): Promise<void> {
    const r = w.request;
    if ('init' in r || 'keepAlive' in r) {
        await driver.read();
        return;
    }
    if ('failSafe' in r) {
        assert.ok(driver.setFailSafe, 'the driver takes a fail-safe');
        driver.setFailSafe({
            current: r.failSafe.current * 1000,
            timeoutMs: r.failSafe.timeoutS * 1000,
        });
        await driver.read();
        return;
    }
    await driver.read();
    if ('enable' in r) await driver.apply(command(16, !r.enable));
    rig.sim.writes.length = 0;
    if ('current' in r) await driver.apply(command(r.current, true));
    else if ('enable' in r) await driver.apply(command(16, r.enable));
    else {
        assert.ok(driver.setPhases, 'the driver switches phases');
        await driver.setPhases(r.phases);
    }
}

/** Every register of the write holds its words, each arrived in one request with the right fc. */
export function checkWrite(fixture: DeviceFixture, rig: Rig, w: FixtureWrite): void {
    const where = `${fixture.type} "${w.what}"`;
    const log = (): string => JSON.stringify(rig.sim.writes);
    for (const [a, words] of Object.entries(w.registers)) {
        const address = Number(a);
        const hit: RecordedWrite | undefined = [...rig.sim.writes]
            .reverse()
            .find((x) => x.address === address && x.values.length === words.length);
        assert.ok(
            hit,
            `${where}: a write of ${words.length} word(s) at ${address} (writes: ${log()})`,
        );
        assert.deepEqual(hit.values, [...words], `${where}: words at ${address}`);
        if (w.fc !== undefined) assert.equal(hit.fc, w.fc, `${where}: function code at ${address}`);
        else assert.ok(hit.fc === 6 || hit.fc === 16, `${where}: a register write at ${address}`);
        words.forEach((word, i) => {
            const now = hit.fc === 5 ? rig.sim.coil(address) : rig.sim.word(3, address + i);
            assert.equal(now, word, `${where}: register ${address + i} afterwards`);
        });
    }
}

/**
 * The fixture test of a wallbox family: each state read through the driver, each write made
 * through it, over TCP or (for RS-485-only families) RTU on a socat pseudo-terminal pair.
 */
export function describeFixture(
    fixture: DeviceFixture,
    transport: Transport = { kind: 'tcp' },
): void {
    describe(`${fixture.type}: ${fixture.title} (fixture over ${transport.kind.toUpperCase()})`, function () {
        this.timeout(20000);
        let rig: Rig | undefined;

        before(function () {
            if (transport.kind === 'rtu' && !hasCommand('socat')) {
                console.warn('      socat is not installed: RTU fixture tests skipped');
                this.skip();
            }
        });
        afterEach(async () => {
            await rig?.close();
            rig = undefined;
        });

        it('reads every state as the document says', async () => {
            rig = await startRig(fixture, transport);
            const driver = driverFor(fixture, rig);
            try {
                for (const name of Object.keys(fixture.states)) {
                    rig.sim.setState(name);
                    checkReading(fixture, name, await driver.read(), driver);
                }
            } finally {
                await driver.close();
            }
        });

        for (const w of fixture.writes ?? []) {
            it(`writes ${w.what}`, async () => {
                rig = await startRig(fixture, transport);
                const driver = driverFor(fixture, rig);
                try {
                    await makeRequest(driver, rig, w);
                    checkWrite(fixture, rig, w);
                } finally {
                    await driver.close();
                }
            });
        }
    });
}
