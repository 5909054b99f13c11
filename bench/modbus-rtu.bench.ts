// One RS-485 line's cycle: 4 and 8 Eastron SDM630 meters (the read plan the driver makes for
// them) on one serial line at 9600, 19200 and 115200 Bd, read over a socat pseudo-terminal pair,
// against the wire time of the same requests computed from the frame sizes: the physical minimum.
//
// A pty moves bytes at memory speed whatever baud rate is set, so the serving side holds each
// reply until its last byte would have left a real line (the request's bytes, the 3.5
// characters after which a device knows the request has ended, the reply's bytes; see
// test/support/rtu-server.ts). The client then keeps the line's inter-frame gap before its next
// request, as on a real line. What is left above the wire time is the bus's own cost: framing,
// the queue, timer precision and the pty's relay.
import { DefinedMeter } from '../lib/devices/defined-device';
import { EASTRON_SDM630 } from '../lib/devices/definitions/eastron-sdm630';
import { BusPool } from '../lib/modbus/pool';
import { frameTimeMs, interFrameGapMs, replyBytes, requestBytes } from '../lib/modbus/rtu';
import { hasCommand, PtyPair } from '../test/support/modbus';
import { RtuServer } from '../test/support/rtu-server';
import { median, type Report, round } from './harness';

/** Cycles measured per configuration: about two seconds of line time each. */
function cyclesFor(baud: number, n: number): number {
    return Math.max(8, Math.min(60, Math.round((baud / 9600) * (40 / n))));
}

async function cycle(baud: number, n: number): Promise<{ ms: number; wireMs: number }> {
    const pty = new PtyPair();
    await pty.start();
    const units: Record<number, 'ok'> = {};
    for (let u = 1; u <= n; u++) units[u] = 'ok';
    const server = new RtuServer({ units, baudRate: baud, physical: true });
    const pool = new BusPool({ timeoutMs: 2000 });
    try {
        await server.listenSerial(pty.a);
        const meters = Array.from(
            { length: n },
            (_, i) =>
                new DefinedMeter({
                    id: `M${i + 1}`,
                    address: `${pty.b},${baud},8,N,1`,
                    unit: i + 1,
                    pool,
                    definition: EASTRON_SDM630,
                }),
        );
        // The physical minimum of one cycle: every request and reply on the wire, the device's
        // 3.5 characters before it answers, and the gap between one transaction and the next.
        const gap = interFrameGapMs(baud);
        let bytes = 0;
        let transactions = 0;
        for (const m of meters) {
            for (const b of m.readPlan) {
                bytes += requestBytes(b.fc, b.count) + replyBytes(b.fc, b.count);
                transactions++;
            }
        }
        const wireMs = frameTimeMs(bytes, baud) + transactions * gap + (transactions - 1) * gap;

        await Promise.all(meters.map((m) => m.read())); // open the port
        await Promise.all(meters.map((m) => m.read()));
        const before = server.frames.length;
        const samples: number[] = [];
        const count = cyclesFor(baud, n);
        for (let c = 0; c < count; c++) {
            // the line has been quiet since the last cycle, as between two real cycles
            await new Promise((r) => setTimeout(r, 5));
            const t0 = performance.now();
            await Promise.all(meters.map((m) => m.read()));
            samples.push(performance.now() - t0);
        }
        if (server.frames.length - before !== count * transactions) {
            throw new Error(`expected ${count * transactions} requests on the line`);
        }
        return { ms: median(samples), wireMs };
    } finally {
        await pool.close();
        await server.close();
        await pty.stop();
    }
}

export async function run(report: Report): Promise<void> {
    if (!hasCommand('socat')) {
        console.warn('socat is not installed: modbus.rtu_cycle_ms not measured');
        return;
    }
    for (const baud of [9600, 19200, 115200]) {
        for (const n of [4, 8]) {
            const { ms, wireMs } = await cycle(baud, n);
            report(`modbus.rtu_cycle_ms.${n}.${baud}`, {
                value: round(ms, 4),
                unit: 'ms',
                baseline: round(wireMs, 4),
                ratio: ms / wireMs,
            });
        }
    }
}
