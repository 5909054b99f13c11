import assert from 'node:assert/strict';
import { ServerSerial } from 'modbus-serial';
import { parseBusAddress } from '../../../lib/modbus/address';
import { Bus } from '../../../lib/modbus/bus';
import { ModbusError } from '../../../lib/modbus/errors';
import { crc16, frameTimeMs, interFrameGapMs, replyLength } from '../../../lib/modbus/rtu';
import { hasCommand, PtyPair, sleep } from '../../support/modbus';
import { RtuServer } from '../../support/rtu-server';

describe('modbus/rtu framing and timing', () => {
    it('computes the CRC of the Modbus over Serial Line examples', () => {
        // 01 03 00 00 00 01 → CRC 84 0A on the wire (low byte first)
        assert.equal(crc16(Buffer.from([1, 3, 0, 0, 0, 1])), 0x0a84);
        // 11 03 00 6B 00 03 → 76 87 (the specification's read example)
        assert.equal(crc16(Buffer.from([0x11, 3, 0, 0x6b, 0, 3])), 0x8776);
    });

    it('keeps 3.5 characters of silence, 1.75 ms above 19,200 Bd', () => {
        assert.ok(Math.abs(interFrameGapMs(9600) - 4.0104) < 1e-3);
        assert.ok(Math.abs(interFrameGapMs(19200) - 2.0052) < 1e-3);
        assert.equal(interFrameGapMs(38400), 1.75);
        assert.equal(interFrameGapMs(115200), 1.75);
        assert.ok(Math.abs(frameTimeMs(8, 9600) - 9.1667) < 1e-3);
    });

    it('tells a reply frame by its function code', () => {
        const read = Buffer.from([1, 3, 4, 0, 0, 0, 0, 0, 0]);
        assert.equal(replyLength(read, 0, 1), 0);
        assert.equal(replyLength(read, 0, 2), 0, 'a read needs its byte count');
        assert.equal(replyLength(read, 0, 3), 9);
        assert.equal(replyLength(Buffer.from([1, 0x83, 2]), 0, 2), 5);
        assert.equal(replyLength(Buffer.from([1, 16]), 0, 2), 8);
        assert.equal(replyLength(Buffer.from([1, 6]), 0, 2), 8);
    });
});

describe('modbus/bus on an RS-485 line (socat pseudo-terminal pair)', function () {
    this.timeout(20000);
    const pty = new PtyPair();

    before(async function () {
        if (!hasCommand('socat')) {
            console.warn('      socat is not installed: RTU tests skipped (apt-get install socat)');
            this.skip();
        }
        await pty.start();
    });
    after(async () => pty.stop());

    /** Cycles of reads of units 1, 2 and 3 (3 never answers) and a write to 1. */
    async function cycles(bus: Bus, n: number): Promise<void> {
        for (let i = 0; i < n; i++) {
            await Promise.allSettled([
                bus.read({ device: 'M1', unit: 1, fc: 4, address: 0, count: 6 }),
                bus.read({ device: 'M2', unit: 2, fc: 3, address: 10, count: 2 }),
                bus.read({ device: 'M3', unit: 3, address: 0, count: 2, timeoutMs: 60 }),
                bus.write({ device: 'M1', unit: 1, address: 5, values: [i, 7] }),
            ]);
        }
    }

    for (const baud of [9600, 115200]) {
        it(`keeps the inter-frame gap between every two frames on the wire at ${baud} Bd`, async () => {
            const server = new RtuServer({
                units: { 1: 'ok', 2: 'ok', 3: 'silent' },
                baudRate: baud,
            });
            await server.listenSerial(pty.a);
            const bus = new Bus(parseBusAddress(`${pty.b},${baud},8,N,1`), {
                timeoutMs: 1000,
                // the silent unit is asked again in every cycle
                deviceBackoffMs: 1,
                deviceBackoffMaxMs: 1,
            });
            try {
                await cycles(bus, 8);
            } finally {
                await bus.close();
                await server.close();
            }
            const gap = interFrameGapMs(baud);
            assert.equal(bus.interFrameGapMs, gap);
            const gaps = server.gaps();
            assert.equal(server.frames.length, 32, 'every request reached the line');
            assert.equal(server.crcErrors, 0);
            const min = Math.min(...gaps);
            assert.ok(min >= gap, `smallest silence ${min.toFixed(3)} ms < ${gap.toFixed(3)} ms`);
            // the silent unit cost its own timeout (60 ms), not the bus's 1000 ms
            const afterSilent: number[] = [];
            server.frames.forEach((f, i) => {
                const next = server.frames[i + 1];
                if (f.unit === 3 && next) afterSilent.push(next.start - f.end);
            });
            assert.equal(afterSilent.length, 8);
            for (const t of afterSilent) assert.ok(t >= 40 && t < 400, `${t} ms after a timeout`);
        });
    }

    it('measures frames that follow at once when the gap is switched off', async () => {
        // The measurement above can fail: without the gap the next request follows the reply
        // within a fraction of the 4 ms a 9600 Bd line needs.
        const server = new RtuServer({ units: { 1: 'ok', 2: 'ok', 3: 'silent' } });
        await server.listenSerial(pty.a);
        const bus = new Bus(parseBusAddress(`${pty.b},9600,8,N,1`), {
            interFrameGapMs: 0,
            deviceBackoffMs: 1,
            deviceBackoffMaxMs: 1,
        });
        try {
            await cycles(bus, 4);
        } finally {
            await bus.close();
            await server.close();
        }
        const min = Math.min(...server.gaps());
        assert.ok(min < interFrameGapMs(9600), `smallest silence ${min} ms`);
    });

    it('keeps the cycle of the live devices beside one that never answers', async () => {
        // An independent RTU server (modbus-serial's) answering units 1 and 2; unit 3 is dead.
        const asked = new Map<number, number>();
        type Done = (err: Error | null, values: number[]) => void;
        const server = new ServerSerial(
            {
                getMultipleHoldingRegisters: (
                    addr: number,
                    length: number,
                    unit: number,
                    done: Done,
                ) => {
                    asked.set(unit, (asked.get(unit) ?? 0) + 1);
                    if (unit === 3) return; // never answers
                    done(
                        null,
                        Array.from({ length }, (_, i) => unit * 1000 + addr + i),
                    );
                },
            },
            { path: pty.a, baudRate: 9600, unitID: 255, interval: 2 } as never,
        );
        await new Promise<void>((resolve) => server.once('initialized', () => resolve()));
        const bus = new Bus(parseBusAddress(`${pty.b},9600,8,N,1`), { timeoutMs: 1000 });
        const period = 250;
        const cycles = 12;
        const ok = new Map<number, number>();
        const late: number[] = [];
        try {
            const t0 = performance.now();
            for (let c = 0; c < cycles; c++) {
                const start = t0 + c * period;
                const results = await Promise.allSettled(
                    [1, 2, 3].map((unit) =>
                        bus.read({
                            device: `M${unit}`,
                            unit,
                            address: 100,
                            count: 10,
                            // the device's own timing: a short timeout, a long back-off
                            timeoutMs: 80,
                            backoffMs: 1500,
                        }),
                    ),
                );
                results.forEach((r, i) => {
                    if (r.status === 'fulfilled') {
                        assert.equal(r.value[0], (i + 1) * 1000 + 100, 'each unit its own words');
                        ok.set(i + 1, (ok.get(i + 1) ?? 0) + 1);
                    } else {
                        assert.ok(r.reason instanceof ModbusError);
                        assert.ok(
                            ['MODBUS_TIMEOUT', 'MODBUS_BACKOFF'].includes(r.reason.code),
                            r.reason.message,
                        );
                    }
                });
                const took = performance.now() - start;
                if (took > period) late.push(took);
                await sleep(Math.max(0, start + period - performance.now()));
            }
        } finally {
            await bus.close();
            await new Promise<void>((resolve) => server.close(() => resolve()));
        }
        assert.equal(ok.get(1), cycles, 'unit 1 answered in every cycle');
        assert.equal(ok.get(2), cycles, 'unit 2 answered in every cycle');
        assert.equal(ok.get(3), undefined);
        assert.deepEqual(late, [], 'no cycle overran its period');
        // 3 s of cycles, back-off 1.5 s doubling: asked at 0, ≈ 1.5 s and not again before 4.5 s
        assert.ok((asked.get(3) ?? 0) <= 2, `the dead unit was asked ${asked.get(3)} times`);
    });
});
