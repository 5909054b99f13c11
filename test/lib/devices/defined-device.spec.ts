// The driver that runs a definition, against RegisterSim over loopback TCP. The fixtures here are
// small made-up devices, hand-encoded word by word, that exercise each part of the driver; the
// real families have their own fixtures written from the manufacturers' documents.
import assert from 'node:assert/strict';
import {
    DefinedEvse,
    DefinedMeter,
    DefinitionError,
    parseDefinition,
} from '../../../lib/devices/defined-device';
import type { DeviceDefinition } from '../../../lib/devices/definition';
import { ModbusError } from '../../../lib/modbus/errors';
import { BusPool } from '../../../lib/modbus/pool';
import { at, type DeviceFixture, RegisterSim, stringWords } from '../../../lib/sim/register-sim';

const BUS = { timeoutMs: 300, reconnectMinMs: 30, reconnectMaxMs: 60, deviceBackoffMs: 50 };

// ---- a wallbox: charge state in holding 100, meter in input 200.., control in 400.. ----

const BOX_DEF: DeviceDefinition = {
    type: 'evse_test_box',
    kind: 'evse',
    title: 'Test wallbox',
    status: { cp: { address: 100 } },
    states: [
        { when: { cp: [0] }, state: 1 },
        { when: { cp: [1] }, state: 2 },
        { when: { cp: [2] }, state: 3 },
        { when: { cp: { min: 3, max: 9 } }, state: 5 },
    ],
    readings: {
        currentsA: [
            { fc: 4, address: 200, scale: 0.1 },
            { fc: 4, address: 201, scale: 0.1 },
            { fc: 4, address: 202, scale: 0.1 },
        ],
        // low word first, in one field only
        powerW: { fc: 4, address: 203, type: 'uint32', wordOrder: 'little' },
        energyWh: { fc: 4, address: 205, type: 'uint64' },
        model: { address: 300, type: 'string', words: 8 },
        serial: { address: 310, type: 'uint32' },
    },
    control: {
        current: { address: 400, scale: 0.1, min: 6, max: 32, zeroStops: false },
        enable: { address: 401, on: 1, off: 0 },
        phases: { address: 402, fc: 16, one: 1, three: 3 },
        failSafe: { current: { address: 410, scale: 0.1 }, timeout: { address: 411 } },
        keepAlive: { address: 420, value: 1, everyMs: 1000 },
        init: [{ address: 430, value: 1 }],
    },
};

const BOX: DeviceFixture = {
    type: 'evse_test_box',
    title: 'Test wallbox',
    source: 'made up for the driver test',
    unit: 1,
    holding: {
        100: 0,
        ...at(300, stringWords('TB-22', 8)),
        ...at(310, [0x0001, 0xe240]), // 123456
        400: 0,
        401: 0,
        402: 3,
        410: 0,
        411: 0,
        420: 0,
        430: 0,
    },
    input: {
        ...at(200, [0, 0, 0]),
        ...at(203, [0, 0]),
        ...at(205, [0, 0, 0x0001, 0x86a0]), // 100000 Wh
    },
    writable: [400, 401, 402, 410, 411, 420, 430],
    states: {
        idle: { holding: { 100: 0 }, expect: { state: 1 } },
        plugged: { holding: { 100: 1 }, expect: { state: 2 } },
        charging: {
            holding: { 100: 2 },
            // 16.0, 15.9, 16.1 A; 11,040 W as low word 0x2B20, high word 0
            input: { 200: 160, 201: 159, 202: 161, 203: 0x2b20, 204: 0 },
            expect: { state: 3, currentsA: [16, 15.9, 16.1], powerW: 11040, energyWh: 100000 },
        },
        error: { holding: { 100: 7 }, expect: { state: 5 } },
        unknown: { holding: { 100: 12 }, expect: { state: 6 } },
    },
};

// ---- a meter: float32 with the low word first, a byte-swapped voltage, a "missing" export ----

const METER_DEF: DeviceDefinition = {
    type: 'meter_test_float',
    kind: 'meter',
    title: 'Test meter',
    unit: 3,
    fc: 4,
    wordOrder: 'little',
    readings: {
        currentsA: [
            { address: 0, type: 'float32' },
            { address: 2, type: 'float32' },
            { address: 4, type: 'float32' },
        ],
        phasePowersW: [
            { address: 6, type: 'float32' },
            { address: 8, type: 'float32' },
            { address: 10, type: 'float32' },
        ],
        powerW: { address: 12, type: 'float32' },
        voltagesV: [
            { address: 20, byteSwap: true, scale: 0.1 },
            { address: 21, byteSwap: true, scale: 0.1 },
            { address: 22, byteSwap: true, scale: 0.1 },
        ],
        importWh: { address: 30, type: 'uint32', scale: 10 },
        exportWh: { address: 32, type: 'uint32', missing: [0xffffffff] },
    },
};

/** float32 words, low word first (as this meter sends them). */
function floatLittle(v: number): number[] {
    const b = Buffer.alloc(4);
    b.writeFloatBE(v);
    return [b.readUInt16BE(2), b.readUInt16BE(0)];
}

const METER: DeviceFixture = {
    type: 'meter_test_float',
    title: 'Test meter',
    source: 'made up for the driver test',
    unit: 3,
    input: {
        ...at(0, [...floatLittle(10), ...floatLittle(5), ...floatLittle(2.5)]),
        ...at(6, [...floatLittle(2300), ...floatLittle(-1150), ...floatLittle(575)]),
        ...at(12, floatLittle(1725)),
        // 230.1 V = 2301 = 0x08FD, sent as 0xFD08; 229.8 V = 0x08FA; 231.0 V = 0x0906
        ...at(20, [0xfd08, 0xfa08, 0x0609]),
        ...at(30, [0x0000, 0x0001, 0xffff, 0xffff]), // 65536 × 10 Wh, low word first; no export
    },
    states: {
        import: {
            expect: {
                currentsA: [10, -5, 2.5],
                powerW: 1725,
                voltagesV: [230.1, 229.8, 231],
                importWh: 655360,
            },
        },
    },
};

// ---- SunSpec: marker at 40000, common model, a model to skip, meter model 203 with scale factors ----

const SUNSPEC_DEF: DeviceDefinition = {
    type: 'meter_test_sunspec',
    kind: 'meter',
    title: 'Test SunSpec meter',
    sunspec: { models: [201, 202, 203, 204], bases: [50000, 40000] },
    readings: {
        currentsA: [
            { address: 3, type: 'int16', scaleFactor: { address: 6 }, missing: [0x8000] },
            { address: 4, type: 'int16', scaleFactor: { address: 6 }, missing: [0x8000] },
            { address: 5, type: 'int16', scaleFactor: { address: 6 }, missing: [0x8000] },
        ],
        powerW: { address: 18, type: 'int16', scaleFactor: { address: 22 } },
        importWh: { address: 46, type: 'uint32', scaleFactor: { address: 54 } },
        exportWh: { address: 38, type: 'uint32', scaleFactor: { address: 54 } },
    },
};

const COMMON_AT = 40002;
const SKIP_AT = COMMON_AT + 2 + 66;
const METER_AT = SKIP_AT + 2 + 4;

function sunspecWords(): Record<number, number> {
    const meter = new Array<number>(2 + 105).fill(0);
    meter[0] = 203;
    meter[1] = 105;
    meter[3] = 125; // 12.5 A with A_SF −1
    meter[4] = 0x8000; // phase B not available
    meter[5] = 0xfffb; // −0.5 A
    meter[6] = 0xffff; // A_SF −1
    meter[18] = 0xf830; // −2000 W …
    meter[22] = 0; // … W_SF 0
    meter[38] = 0;
    meter[39] = 500; // export 500 × 10^1 Wh
    meter[46] = 0x0001;
    meter[47] = 0x0000; // import 65536 × 10^1 Wh
    meter[54] = 1; // TotWh_SF
    return {
        ...at(40000, [0x5375, 0x6e53]),
        ...at(COMMON_AT, [1, 66]),
        ...at(COMMON_AT + 2, stringWords('Acme', 16)),
        ...at(COMMON_AT + 18, stringWords('M-3', 16)),
        ...at(COMMON_AT + 34, stringWords('', 8)),
        ...at(COMMON_AT + 42, stringWords('2.1', 8)),
        ...at(COMMON_AT + 50, stringWords('SN42', 16)),
        ...at(COMMON_AT + 66, [1, 0]),
        ...at(SKIP_AT, [999, 4, 0, 0, 0, 0]),
        ...at(METER_AT, meter),
        ...at(METER_AT + 2 + 105, [0xffff, 0]),
    };
}

const SUNSPEC: DeviceFixture = {
    type: 'meter_test_sunspec',
    title: 'Test SunSpec meter',
    source: 'made up for the driver test (SunSpec model 203 layout)',
    unit: 1,
    holding: sunspecWords(),
    states: {
        export: {
            expect: {
                currentsA: [12.5, 0, -0.5],
                powerW: -2000,
                importWh: 655360,
                exportWh: 5000,
            },
        },
    },
};

describe('devices/defined-device (a definition run against a simulated device)', function () {
    this.timeout(15000);
    let pool: BusPool;
    const sims: RegisterSim[] = [];
    const ports = new Map<RegisterSim, number>();
    async function serve(fixture: DeviceFixture, port = 0): Promise<RegisterSim> {
        const sim = new RegisterSim(fixture, { port });
        sims.push(sim);
        ports.set(sim, await sim.listen());
        return sim;
    }
    const portOf = (sim: RegisterSim): number => ports.get(sim)!;

    beforeEach(() => {
        pool = new BusPool(BUS);
    });
    afterEach(async () => {
        await pool.close();
        for (const s of sims.splice(0)) await s.close();
    });

    it('wallbox: state from the rules, currents, power and energy in every state, identity once', async () => {
        const sim = await serve(BOX);
        const evse = new DefinedEvse({
            id: 'E1',
            address: `127.0.0.1:${portOf(sim)}`,
            pool,
            definition: BOX_DEF,
        });
        for (const [name, state] of Object.entries(BOX.states)) {
            sim.setState(name);
            const r = await evse.read();
            assert.equal(r.state, state.expect.state, name);
            if (state.expect.currentsA) {
                assert.deepEqual(
                    r.currents,
                    state.expect.currentsA.map((a) => Math.round(a * 1000)),
                );
                assert.equal(r.powerW, state.expect.powerW);
                assert.equal(r.totalEnergyWh, state.expect.energyWh);
            }
        }
        assert.deepEqual(evse.identity, { model: 'TB-22', serial: '123456' });
        // holding 100 and input 200..208: two requests a poll, identity not read again
        assert.deepEqual(evse.readPlan, [
            { fc: 3, address: 100, count: 1 },
            { fc: 4, address: 200, count: 9 },
        ]);
        const before = sim.requests;
        await evse.read();
        assert.equal(sim.requests - before, 2);
        await evse.close();
    });

    it('wallbox: init once, enable before the current, only changed writes, enable off to stop', async () => {
        const sim = await serve(BOX);
        const evse = new DefinedEvse({
            id: 'E1',
            address: `127.0.0.1:${portOf(sim)}`,
            pool,
            definition: BOX_DEF,
        });
        await evse.apply({ current: 16000, chargingEnabled: true, released: false });
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values, w.fc]),
            [
                [430, [1], 6],
                [401, [1], 6],
                [400, [160], 6],
            ],
        );
        sim.writes.length = 0;
        await evse.apply({ current: 16000, chargingEnabled: true, released: false });
        assert.equal(sim.writes.length, 0, 'nothing changed, nothing written');
        // 10.55 A at 0.1 A: rounded down, never more than decided
        await evse.apply({ current: 10550, chargingEnabled: true, released: false });
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values]),
            [[400, [105]]],
        );
        sim.writes.length = 0;
        // above the device's maximum: clamped
        await evse.apply({ current: 40000, chargingEnabled: true, released: false });
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values]),
            [[400, [320]]],
        );
        sim.writes.length = 0;
        // below the minimum: the device has no "0 = stop", so enable off; the current stays
        await evse.apply({ current: 3000, chargingEnabled: true, released: false });
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values]),
            [[401, [0]]],
        );
        sim.writes.length = 0;
        await evse.apply({ current: 0, chargingEnabled: false, released: false });
        assert.equal(sim.writes.length, 0);
        await evse.apply({ current: 32000, chargingEnabled: true, released: false });
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values]),
            [[401, [1]]],
        );
        assert.equal(sim.word(3, 400), 320);
        await evse.close();
    });

    it('wallbox: keep-alive when due on a read, fail-safe from the configuration, phases with function 16', async () => {
        const sim = await serve(BOX);
        let now = 10_000;
        const evse = new DefinedEvse({
            id: 'E1',
            address: `127.0.0.1:${portOf(sim)}`,
            pool,
            definition: BOX_DEF,
            now: () => now,
            failSafe: { current: 8000, timeoutMs: 60_000 },
        });
        await evse.read();
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values]),
            [
                [430, [1]],
                [420, [1]],
                [411, [60]],
                [410, [80]],
            ],
        );
        sim.writes.length = 0;
        now += 999;
        await evse.read();
        assert.equal(sim.writes.length, 0, 'keep-alive not due yet, fail-safe unchanged');
        now += 1;
        await evse.read();
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values]),
            [[420, [1]]],
        );
        sim.writes.length = 0;
        // a new configuration: only the register that differs is written
        evse.setFailSafe({ current: 10_000, timeoutMs: 60_000 });
        await evse.read();
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values]),
            [[410, [100]]],
        );
        sim.writes.length = 0;
        await evse.setPhases(1);
        assert.deepEqual(
            sim.writes.map((w) => [w.address, w.values, w.fc]),
            [[402, [1], 16]],
        );
        await evse.close();
    });

    it('wallbox: after a reconnect, init, fail-safe and the command are written again', async () => {
        const sim = await serve(BOX);
        const port = portOf(sim);
        const evse = new DefinedEvse({
            id: 'E1',
            address: `127.0.0.1:${port}`,
            pool,
            definition: BOX_DEF,
            failSafe: { current: 8000, timeoutMs: 60_000 },
        });
        await evse.read();
        await evse.apply({ current: 16000, chargingEnabled: true, released: false });
        await sim.close();
        const again = await serve(BOX, port); // the device restarted: its registers are fresh
        const deadline = Date.now() + 5000;
        for (;;) {
            try {
                await evse.read();
                break;
            } catch (e) {
                if (Date.now() > deadline) throw e;
                await new Promise((r) => setTimeout(r, 30));
            }
        }
        await evse.apply({ current: 16000, chargingEnabled: true, released: false });
        const written = again.writes.map((w) => w.address);
        for (const a of [430, 411, 410, 401, 400]) assert.ok(written.includes(a), `wrote ${a}`);
        assert.equal(again.word(3, 400), 160);
        await evse.close();
    });

    it('meter: little-endian words, swapped bytes, signs from the phase powers, missing values absent', async () => {
        const sim = await serve(METER);
        const meter = new DefinedMeter({
            id: 'M1',
            address: `127.0.0.1:${portOf(sim)}`,
            pool,
            definition: METER_DEF,
        });
        assert.equal(meter.unit, 3, "the definition's unit when the table gives none");
        const r = await meter.read();
        const e = METER.states.import!.expect;
        assert.equal(r.powerW, e.powerW);
        assert.deepEqual(
            r.currents,
            e.currentsA!.map((a) => a * 1000),
        );
        assert.deepEqual(r.voltages, [230, 230, 231]);
        assert.equal(r.importWh, e.importWh);
        assert.equal(r.exportWh, undefined);
        // 0..13 and 20..22 and 30..33: three requests
        assert.equal(meter.readPlan.length, 3);
        await meter.close();
    });

    it('SunSpec: finds the marker, walks to the model, reads with scale factors, identity from the common model', async () => {
        const sim = await serve(SUNSPEC);
        const meter = new DefinedMeter({
            id: 'M1',
            address: `127.0.0.1:${portOf(sim)}`,
            pool,
            definition: SUNSPEC_DEF,
        });
        const r = await meter.read();
        const e = SUNSPEC.states.export!.expect;
        assert.equal(meter.sunspecModel, 203);
        assert.deepEqual(
            r.currents,
            e.currentsA!.map((a) => a * 1000),
        );
        assert.equal(r.powerW, e.powerW);
        assert.equal(r.importWh, e.importWh);
        assert.equal(r.exportWh, e.exportWh);
        assert.deepEqual(meter.identity, {
            manufacturer: 'Acme',
            model: 'M-3',
            firmware: '2.1',
            serial: 'SN42',
        });
        // model registers 3..54 in one request
        assert.deepEqual(meter.readPlan, [{ fc: 3, address: METER_AT + 3, count: 52 }]);
        const before = sim.requests;
        await meter.read();
        assert.equal(sim.requests - before, 1);
        await meter.close();
    });

    it('SunSpec: a device without the model is a bad reply that says so', async () => {
        const sim = await serve(SUNSPEC);
        const meter = new DefinedMeter({
            id: 'M1',
            address: `127.0.0.1:${portOf(sim)}`,
            pool,
            definition: { ...SUNSPEC_DEF, sunspec: { models: [211], bases: [40000] } },
        });
        await assert.rejects(meter.read(), (e: ModbusError) => {
            assert.equal(e.code, 'MODBUS_BAD_REPLY');
            assert.match(e.message, /M1 .*no SunSpec model 211/);
            return true;
        });
        await meter.close();
    });

    it('definitions are validated; errors name the field', () => {
        const bad = (d: unknown): string => {
            try {
                parseDefinition(d);
            } catch (e) {
                assert.ok(e instanceof DefinitionError);
                return e.message;
            }
            return assert.fail('accepted');
        };
        assert.match(
            bad({ ...METER_DEF, readings: { powerW: { address: 1, type: 'float16' } } }),
            /^readings\.powerW\.type: /,
        );
        assert.match(
            bad({ ...METER_DEF, readings: { powerW: { address: 70000 } } }),
            /^readings\.powerW\.address: /,
        );
        assert.match(
            bad({ ...BOX_DEF, readings: { model: { address: 1, type: 'string' } } }),
            /^readings\.model\.words: a string needs words/,
        );
        assert.match(
            bad({ ...BOX_DEF, control: { current: { address: 1, zeroStops: false } } }),
            /^control\.enable: /,
        );
        assert.match(
            bad({
                ...BOX_DEF,
                control: {
                    ...BOX_DEF.control,
                    phases: { address: 1, fc: 6, type: 'uint32', one: 1, three: 3 },
                },
            }),
            /^control\.phases\.fc: /,
        );
        assert.match(bad({ ...BOX_DEF, type: 'Wallbox' }), /^type: /);
        assert.match(
            bad({ ...BOX_DEF, states: [{ when: { nope: [1] }, state: 2 }] }),
            /^states\[0\]\.when\.nope: no status field/,
        );
        assert.equal(parseDefinition(BOX_DEF).control?.current.min, 6);
        assert.throws(
            () => new DefinedMeter({ id: 'M1', address: '127.0.0.1:1', pool, definition: BOX_DEF }),
            /is a wallbox, not a meter/,
        );
    });
});
