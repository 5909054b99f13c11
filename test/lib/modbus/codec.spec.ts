import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { busKey, parseBusAddress, resolveDevice } from '../../../lib/modbus/address';
import {
    decode,
    decodeAt,
    encode,
    encodeSuffixed,
    parseRegisterRef,
    type DataType,
} from '../../../lib/modbus/codec';
import { ModbusError, normalise } from '../../../lib/modbus/errors';
import { planReads, RegisterImage } from '../../../lib/modbus/planner';
import {
    definedWords,
    POWER_BRAIN_MAP,
    readAllObject,
    resolveRef,
} from '../../../lib/modbus/powerbrain-map';

const fixtures = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'modbus');
interface VendorSamples {
    reads: { read: string; count?: number; response: unknown }[];
    readAll: { device: 'meter2'; response: Record<string, number | string> };
}
const samples = JSON.parse(
    readFileSync(join(fixtures, 'vendor-cmd-modbus.json'), 'utf8'),
) as VendorSamples;

/** The register words behind the vendor's meter2 `read=all` sample. */
function sampleWords(): Map<number, number> {
    const words = new Map<number, number>();
    const put = (address: number, w: number[]) => w.forEach((v, i) => words.set(address + i, v));
    const all = samples.readAll.response;
    for (const def of POWER_BRAIN_MAP.meter2) {
        if (def.key === null || def.access === 'w') continue;
        const value = all[def.key]!;
        const type: DataType =
            def.suffix === 's'
                ? 'string'
                : def.suffix === 'd'
                  ? 'int32'
                  : def.suffix === 'q'
                    ? 'int64'
                    : 'uint16';
        put(def.address, encode(value, type, 'big', def.words));
    }
    return words;
}

describe('modbus/codec', () => {
    it('decodes the vendor samples: signed 32-bit, strings, raw words', () => {
        const words = sampleWords();
        const at = (a: number, n: number) =>
            Array.from({ length: n }, (_, i) => words.get(a + i) ?? 0);
        assert.equal(decode(at(8000, 2), 'int32'), -821755904);
        assert.equal(at(8000, 1)[0], 0xcf05);
        assert.equal(decode(at(8016, 16), 'string'), 'cFos Power Brain');
        assert.equal(decode(encode(-1, 'int32'), 'int32'), -1);
        // count=10 from 8002: raw unsigned words, serial "fcf5…" two characters per register
        const raw = samples.reads.find((r) => r.count === 10)!.response as number[];
        assert.deepEqual(raw.slice(0, 6), [1, 257, 256, 0, 256, 0]);
        assert.equal(decode(raw.slice(6), 'string'), 'fcf5-c46');
        assert.equal(decode(raw.slice(2, 4), 'int32'), 16777216); // 8004 holds 32 bits
    });

    it('reproduces the vendor read=all object, keys in order', () => {
        const words = sampleWords();
        const got = readAllObject('meter2', (a, n) =>
            Array.from({ length: n }, (_, i) => words.get(a + i) ?? 0),
        );
        assert.deepEqual(Object.keys(got), Object.keys(samples.readAll.response));
        assert.deepEqual(got, samples.readAll.response);
    });

    it('uses big-endian word order and round-trips every type', () => {
        assert.deepEqual(encode(0x12345678, 'uint32'), [0x1234, 0x5678]);
        assert.deepEqual(encode(0x12345678, 'uint32', 'little'), [0x5678, 0x1234]);
        assert.deepEqual(encode(1, 'int64'), [0, 0, 0, 1]);
        assert.equal(decode(encode(21.5, 'float32'), 'float32'), 21.5);
        const types: [DataType, fc.Arbitrary<number>][] = [
            ['uint16', fc.integer({ min: 0, max: 0xffff })],
            ['int16', fc.integer({ min: -0x8000, max: 0x7fff })],
            ['uint32', fc.integer({ min: 0, max: 0xffffffff })],
            ['int32', fc.integer({ min: -0x80000000, max: 0x7fffffff })],
            ['int64', fc.maxSafeInteger()],
            ['uint64', fc.maxSafeNat()],
            ['float64', fc.double({ noNaN: true, noDefaultInfinity: true })],
        ];
        for (const [type, arb] of types) {
            for (const order of ['big', 'little'] as const) {
                fc.assert(
                    fc.property(arb, (v) => {
                        const words = encode(v, type, order);
                        assert.ok(words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff));
                        assert.equal(decode(words, type, order), v);
                    }),
                    { numRuns: 200 },
                );
            }
        }
    });

    it('decodes any words as Buffer and BigInt read them (property)', () => {
        // The reference: the words as big-endian bytes, read by Node's Buffer.
        const reference = (words: number[], type: DataType, order: 'big' | 'little') => {
            const ws = type === 'string' || order === 'big' ? words : [...words].reverse();
            const buf = Buffer.alloc(ws.length * 2);
            ws.forEach((w, i) => buf.writeUInt16BE(w, i * 2));
            if (type === 'string') {
                const end = buf.indexOf(0);
                return buf
                    .subarray(0, end < 0 ? buf.length : end)
                    .toString('latin1')
                    .replace(/\s+$/, '');
            }
            const read: Record<Exclude<DataType, 'string'>, () => number> = {
                uint16: () => buf.readUInt16BE(0),
                int16: () => buf.readInt16BE(0),
                uint32: () => buf.readUInt32BE(0),
                int32: () => buf.readInt32BE(0),
                uint64: () => Number(buf.readBigUInt64BE(0)),
                int64: () => Number(buf.readBigInt64BE(0)),
                float32: () => buf.readFloatBE(0),
                float64: () => buf.readDoubleBE(0),
            };
            return read[type]();
        };
        const width: Record<DataType, number> = {
            uint16: 1,
            int16: 1,
            uint32: 2,
            int32: 2,
            uint64: 4,
            int64: 4,
            float32: 2,
            float64: 4,
            string: 6,
        };
        // Words often 0, 0x20 (space) or extreme, so that NULs, padding and signs all occur.
        const word = fc.oneof(
            fc.integer({ min: 0, max: 0xffff }),
            fc.constantFrom(0, 0x2000, 0x0020, 0x2020, 0x4100, 0x8000, 0xffff),
        );
        for (const type of Object.keys(width) as DataType[]) {
            for (const order of ['big', 'little'] as const) {
                fc.assert(
                    fc.property(
                        fc.array(word, { minLength: width[type], maxLength: width[type] }),
                        (words) => {
                            assert.ok(
                                Object.is(
                                    decode(words, type, order),
                                    reference(words, type, order),
                                ),
                            );
                        },
                    ),
                    { numRuns: 300 },
                );
            }
        }
    });

    it('refuses values that do not fit, with a coded Error', () => {
        assert.throws(
            () => encode(70000, 'uint16'),
            (e: unknown) => e instanceof ModbusError && e.code === 'MODBUS_BAD_REQUEST',
        );
        assert.throws(() => encode(1.5, 'int32'), ModbusError);
        assert.throws(() => encode('x'.repeat(40), 'string', 'big', 16), ModbusError);
        assert.deepEqual(encodeSuffixed(-1, ''), [0xffff]);
        assert.deepEqual(encodeSuffixed(65535, ''), [0xffff]);
    });

    it('parses vendor register references', () => {
        assert.deepEqual(parseRegisterRef('8062d'), { address: 8062, suffix: 'd' });
        assert.deepEqual(parseRegisterRef('8016s'), { address: 8016, suffix: 's' });
        assert.deepEqual(parseRegisterRef('8002'), { address: 8002, suffix: '' });
        for (const bad of ['', 'abc', '8002x', '99999', '-1'])
            assert.throws(() => parseRegisterRef(bad), ModbusError);
    });

    it('checks register widths like the vendor', () => {
        assert.equal(resolveRef('meter1', 8044, '').name, 'phases');
        assert.equal(resolveRef('meter1', 8050, 'q').name, 'pulses');
        assert.equal(resolveRef('meter1', 8004, '').name, 'product_version');
        assert.throws(() => resolveRef('meter1', 8044, 'd'), /bad modbus register size/);
        assert.throws(() => resolveRef('meter1', 35154, ''), /bad modbus register$/);
        assert.ok(definedWords('evse').has(8110));
        assert.ok(!definedWords('evse').has(8089));
    });
});

describe('modbus/planner', () => {
    it('reads each contiguous block with one request', () => {
        assert.deepEqual(
            planReads([
                { address: 8092, count: 4 },
                { address: 8057, count: 1 },
                { address: 8058, count: 4 },
                { address: 8096, count: 15 },
                { address: 8062, count: 8 },
            ]),
            [
                { fc: 3, address: 8057, count: 13 },
                { fc: 3, address: 8092, count: 19 },
            ],
        );
        // input and holding registers never share a request; maxGap bridges small holes
        assert.equal(
            planReads([
                { address: 0, count: 2, fc: 4 },
                { address: 2, count: 2 },
            ]).length,
            2,
        );
        assert.equal(
            planReads(
                [
                    { address: 0, count: 2 },
                    { address: 4, count: 2 },
                ],
                { maxGap: 2 },
            ).length,
            1,
        );
        // never more than the Modbus limit in one request
        assert.equal(
            planReads([
                { address: 0, count: 100 },
                { address: 100, count: 100 },
            ]).length,
            2,
        );
    });

    it('covers every requested register with the fewest blocks (property)', () => {
        fc.assert(
            fc.property(
                fc.array(
                    fc.record({
                        address: fc.integer({ min: 0, max: 300 }),
                        count: fc.integer({ min: 1, max: 10 }),
                    }),
                    { maxLength: 20 },
                ),
                (spans) => {
                    const blocks = planReads(spans);
                    const wanted = new Set<number>();
                    for (const s of spans)
                        for (let a = s.address; a < s.address + s.count; a++) wanted.add(a);
                    const covered = new Set<number>();
                    for (const b of blocks)
                        for (let a = b.address; a < b.address + b.count; a++) covered.add(a);
                    assert.deepEqual(
                        [...covered].sort((x, y) => x - y),
                        [...wanted].sort((x, y) => x - y),
                    );
                    // minimum: number of maximal runs (none exceed 125 here)
                    const sorted = [...wanted].sort((x, y) => x - y);
                    const runs = sorted.filter((a, i) => i === 0 || sorted[i - 1] !== a - 1).length;
                    assert.equal(blocks.length, runs);
                },
            ),
            { numRuns: 200 },
        );
    });

    it('answers register lookups from what was read', () => {
        const image = new RegisterImage();
        image.set(3, 100, [1, 2, 3]);
        assert.deepEqual(image.get(101, 2), [2, 3]);
        assert.ok(!image.has(102, 2));
        assert.throws(() => image.get(99, 1), ModbusError);
        // a later block wins where blocks overlap; a range may span adjacent blocks
        image.set(3, 102, [30, 40]);
        image.set(4, 103, [7]);
        assert.deepEqual(image.get(100, 4), [1, 2, 30, 40]);
        assert.deepEqual(image.get(103, 1, 4), [7]);
        assert.ok(image.has(100, 4) && !image.has(100, 5) && !image.has(102, 1, 4));
    });

    it('decodes values where they were read, as from a copy of their words', () => {
        const image = new RegisterImage();
        image.set(3, 100, [0xffff, 0xfffe, 0x4142, 0x4300, 0, 1]);
        assert.equal(image.decode(100, 'int32'), decode([0xffff, 0xfffe], 'int32'));
        assert.equal(image.decode(101, 'uint16'), 0xfffe);
        assert.equal(image.decode(102, 'string', 3, 'big', 2), 'ABC');
        assert.equal(image.decode(104, 'uint32', 3, 'little'), 0x10000);
        assert.throws(() => image.decode(105, 'uint32'), ModbusError); // runs past the block
        assert.throws(() => image.decode(100, 'uint16', 4), ModbusError);
        // a later block over part of the value: decoded from the words that are in force
        image.set(3, 101, [7]);
        assert.equal(image.decode(100, 'uint32'), 0xffff0007);
        // a value spanning adjacent blocks
        image.set(3, 106, [2]);
        assert.equal(image.decode(105, 'uint32'), 0x10002);
        assert.equal(decodeAt([9, 0x4142, 0x2020], 1, 'string', 'big', 2), 'AB');
        assert.equal(decodeAt([9, 0, 5], 1, 'uint32'), 5);
        assert.throws(() => decodeAt([9, 0, 5], 2, 'uint32'), ModbusError);
    });
});

describe('modbus/address', () => {
    it('parses the vendor address forms', () => {
        assert.deepEqual(parseBusAddress('192.168.1.5:4701'), {
            kind: 'tcp',
            host: '192.168.1.5',
            port: 4701,
        });
        assert.deepEqual(parseBusAddress('meter.local'), {
            kind: 'tcp',
            host: 'meter.local',
            port: 502,
        });
        assert.deepEqual(parseBusAddress('[::1]:1502'), { kind: 'tcp', host: '::1', port: 1502 });
        assert.deepEqual(parseBusAddress('COM1,9600,8,N,1'), {
            kind: 'rtu',
            path: 'COM1',
            baudRate: 9600,
            dataBits: 8,
            parity: 'none',
            stopBits: 1,
        });
        assert.deepEqual(parseBusAddress('/dev/ttyUSB0,19200,8,E,1'), {
            kind: 'rtu',
            path: '/dev/ttyUSB0',
            baudRate: 19200,
            dataBits: 8,
            parity: 'even',
            stopBits: 1,
        });
        assert.equal(parseBusAddress('/dev/ttyUSB0').kind, 'rtu');
        assert.equal(parseBusAddress('COM3,9600,8,n,1').kind, 'rtu');
        for (const bad of [
            '',
            'host:0',
            'host:70000',
            'COM1,fast',
            'COM1,9600,9,N,1',
            'COM1,9600,8,X,1',
            'COM1,9600,8,N,3',
        ]) {
            assert.throws(
                () => parseBusAddress(bad),
                (e: unknown) => e instanceof ModbusError && e.code === 'MODBUS_BAD_REQUEST',
                bad,
            );
        }
    });

    it('maps the Power Brain names to units 1, 2, 3', () => {
        assert.deepEqual(resolveDevice('evse', undefined), {
            bus: { kind: 'tcp', host: '127.0.0.1', port: 4701 },
            unit: 1,
        });
        assert.deepEqual(resolveDevice('meter1', 7, '10.0.0.2'), {
            bus: { kind: 'tcp', host: '10.0.0.2', port: 4702 },
            unit: 2,
        });
        assert.equal(resolveDevice('METER2', undefined).unit, 3);
        assert.equal(resolveDevice('10.0.0.9:502', 5).unit, 5);
        assert.throws(() => resolveDevice('10.0.0.9:502', 300), ModbusError);
    });

    it('keys buses by physical connection', () => {
        assert.equal(busKey(parseBusAddress('Host:502')), busKey(parseBusAddress('host')));
        assert.equal(
            busKey(parseBusAddress('com1,9600,8,N,1')),
            busKey(parseBusAddress('COM1,19200,8,E,1')),
        );
        assert.notEqual(busKey(parseBusAddress('host:502')), busKey(parseBusAddress('host:503')));
    });
});

describe('modbus/errors', () => {
    it('turns modbus-serial plain objects into coded Errors naming the device', () => {
        const timeout = normalise(
            { name: 'TransactionTimedOutError', message: 'Timed out', errno: 'ETIMEDOUT' },
            'E1',
            500,
        );
        assert.ok(timeout instanceof Error);
        assert.equal(timeout.code, 'MODBUS_TIMEOUT');
        assert.match(timeout.message, /^E1: no answer within 500 ms/);
        const notOpen = normalise(
            { name: 'PortNotOpenError', message: 'Port Not Open', errno: 'ECONNREFUSED' },
            'M1',
        );
        assert.equal(notOpen.code, 'MODBUS_NOT_CONNECTED');
        const exception = normalise(
            Object.assign(new Error('Modbus exception 2'), { modbusCode: 2 }),
            'M2',
        );
        assert.equal(exception.code, 'MODBUS_EXCEPTION');
        assert.equal(exception.modbusCode, 2);
        assert.match(exception.message, /M2: .*illegal data address/);
        assert.equal(String(normalise({}, 'X')).startsWith('ModbusError: X:'), true);
    });
});
