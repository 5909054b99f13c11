import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Bus } from '../../../lib/modbus/bus';
import { readAllObject } from '../../../lib/modbus/powerbrain-map';
import { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import { hasCommand, sleep } from '../../support/modbus';

const run = promisify(execFile);
const fixtures = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'modbus');

async function mbpoll(
    port: number,
    unit: number,
    args: string[],
    write: string[] = [],
): Promise<string> {
    const { stdout } = await run(
        'mbpoll',
        [
            '-m',
            'tcp',
            '-a',
            String(unit),
            '-p',
            String(port),
            '-0',
            ...(write.length ? [] : ['-1']),
            ...args,
            '127.0.0.1',
            ...write,
        ],
        {
            timeout: 5000,
        },
    );
    return stdout;
}

/** Values of mbpoll's "[addr]: value" lines. */
function values(out: string): string[] {
    return [...out.matchAll(/^\[\d+\]:\s+(\S+)/gm)].map((m) => m[1]!);
}

describe('sim/powerbrain-sim', function () {
    this.timeout(15000);
    let sim: PowerBrainSim;

    beforeEach(async () => {
        sim = new PowerBrainSim({
            port: 0,
            plugged: true,
            car: { batteryWh: 60000, soc: 0.3, maxCurrent: 16000, phases: 3, followMs: 300 },
        });
        await sim.start();
    });
    afterEach(async () => sim.close());

    it('communication fail-safe: after 8083 s without a request the wallbox holds 8085 until written', async () => {
        let now = 5_000_000;
        const clocked = new PowerBrainSim({
            port: 0,
            meterPorts: false,
            now: () => now,
            plugged: true,
            car: { batteryWh: 50000, soc: 0.5, maxCurrent: 16000, phases: 3, followMs: 0 },
        });
        await clocked.start();
        const bus = new Bus({ kind: 'tcp', host: '127.0.0.1', port: clocked.ports.evse });
        const read = (address: number, count = 1) =>
            bus.read({ device: 'E1', unit: 1, address, count });
        const write = (address: number, values: number[]) =>
            bus.write({ device: 'E1', unit: 1, address, values });
        try {
            now += 3_600_000;
            assert.equal(clocked.state.failSafeTrips, 0, 'armed by the first request only');
            await write(8083, [0, 20, 0]); // 20 s, then stop charging
            await write(8093, [160, 1]);
            now += 20_000;
            assert.equal(clocked.state.failSafeActive, false, 'not before the 20 s are over');
            assert.equal(clocked.state.offered, 16000);
            now += 1;
            const s = clocked.state;
            assert.equal(s.failSafeActive, true);
            assert.equal(s.offered, 0);
            assert.equal(s.failSafeTrips, 1);
            // A client that only reads sees the fail-safe and does not end it.
            assert.deepEqual(await read(8092, 4), [1, 0, 0, 0], 'state B, limit 0, disabled, 0 A');
            now += 60_000;
            assert.deepEqual(await read(8093, 3), [0, 0, 0]);
            assert.equal(clocked.state.failSafeTrips, 2, 'silent again for 20 s: again');
            await write(8093, [100, 1]);
            now += 1000;
            assert.deepEqual(await read(8092, 4), [2, 100, 1, 100], 'charging at 10 A again');
            assert.equal(clocked.state.flashWrites, 2, '8083 and 8085; 8093/8094 are volatile');
            // A fail-safe current above 0 keeps the car charging at it.
            await write(8085, [80]);
            now += 21_000;
            assert.deepEqual(await read(8092, 4), [2, 80, 1, 80]);
            assert.equal(clocked.state.flashWrites, 3);
        } finally {
            await bus.close();
            await clocked.close();
        }
    });

    it('silent: keeps the connection, answers nothing (the client times out), then answers again', async () => {
        const bus = new Bus(
            { kind: 'tcp', host: '127.0.0.1', port: sim.ports.evse },
            { timeoutMs: 300, deviceBackoffMs: 1, deviceBackoffMaxMs: 1 },
        );
        const read = () => bus.read({ device: 'E1', unit: 1, address: 8092, count: 1 });
        const socket = net.connect(sim.ports.evse, '127.0.0.1');
        let closed = false;
        socket.once('close', () => (closed = true));
        const replies: Buffer[] = [];
        socket.on('data', (b: Buffer) => replies.push(b));
        const request = (tid: number) => Buffer.from([0, tid, 0, 0, 0, 6, 1, 3, 0x1f, 0x9c, 0, 1]); // 8092, 1 word
        try {
            await new Promise<void>((resolve, reject) =>
                socket.once('connect', resolve).once('error', reject),
            );
            assert.deepEqual(await read(), [2], 'answers: state C');
            const served = sim.state.requests;

            sim.setSilent(true);
            const started = Date.now();
            await assert.rejects(read(), (e: Error & { code?: string }) => {
                assert.equal(e.code, 'MODBUS_TIMEOUT', e.message);
                return true;
            });
            assert.ok(Date.now() - started >= 250, 'the client waited for its timeout');
            socket.write(request(1));
            await sleep(300);
            assert.deepEqual(replies, [], 'no answer on an open connection either');
            assert.equal(closed, false, 'the connection stays open');
            assert.equal(sim.state.silent, true);
            assert.equal(sim.state.requests, served, 'nothing was served');
            assert.ok(sim.state.dropped >= 2, `dropped ${sim.state.dropped}`);

            sim.setSilent(false);
            assert.deepEqual(await read(), [2], 'the client gets answers again');
            socket.write(request(2));
            await sleep(200);
            assert.equal(replies.length, 1, 'the request sent while silent stays unanswered');
            assert.deepEqual(
                replies[0],
                Buffer.from([0, 2, 0, 0, 0, 5, 1, 3, 2, 0, 2]),
                'the same connection is answered again',
            );
        } finally {
            socket.destroy();
            await bus.close();
        }
    });

    describe('read by mbpoll, an independent client', () => {
        before(function () {
            if (!hasCommand('mbpoll')) this.skip(); // installed by .ci/run (Debian package mbpoll)
        });

        it('identifies as a Power Brain', async () => {
            assert.deepEqual(
                values(await mbpoll(sim.ports.evse, 1, ['-t', '4:hex', '-r', '8000', '-c', '3'])),
                ['0xCF05', '0x0000', '0x0001'],
            );
            const name = values(
                await mbpoll(sim.ports.evse, 1, ['-t', '4:hex', '-r', '8016', '-c', '8']),
            )
                .map((h) =>
                    String.fromCharCode(parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)),
                )
                .join('');
            assert.equal(name, 'cFos Power Brain');
            assert.deepEqual(values(await mbpoll(sim.ports.meter1, 2, ['-t', '4', '-r', '8040'])), [
                '2',
            ]);
            assert.deepEqual(values(await mbpoll(sim.ports.meter2, 3, ['-t', '4', '-r', '8040'])), [
                '3',
            ]);
        });

        it('a write of 8093 changes what the car draws within seconds', async () => {
            await sleep(600);
            assert.ok(sim.state.currents[0] >= 15500, `draw ${sim.state.currents[0]}`);
            const out = await mbpoll(sim.ports.evse, 1, ['-t', '4', '-r', '8093'], ['80']);
            assert.match(out, /Written 1 references/);
            assert.equal(sim.state.currents[0], 8000, 'a reduction is followed at once');
            await mbpoll(sim.ports.evse, 1, ['-t', '4', '-r', '8093'], ['120']);
            await sleep(800);
            assert.deepEqual(sim.state.currents, [12000, 12000, 12000]);
            const [l1, l2, l3] = values(
                await mbpoll(sim.ports.evse, 1, ['-t', '4:int', '-B', '-r', '8064', '-c', '3']),
            );
            assert.deepEqual([l1, l2, l3], ['120', '120', '120']);
        });
    });

    it('answers read=all like the vendor sample (same keys, same order)', async () => {
        const sample = JSON.parse(
            readFileSync(join(fixtures, 'vendor-cmd-modbus.json'), 'utf8'),
        ) as {
            readAll: { response: Record<string, unknown> };
        };
        const bus = new Bus({ kind: 'tcp', host: '127.0.0.1', port: sim.ports.meter2 });
        try {
            const words = new Map<number, number>();
            for (const [address, count] of [
                [8000, 24],
                [8040, 8],
                [8050, 22],
                [8120, 2],
            ] as const) {
                (await bus.read({ device: 'meter2', unit: 3, address, count })).forEach((w, i) =>
                    words.set(address + i, w),
                );
            }
            const all = readAllObject('meter2', (a, n) =>
                Array.from({ length: n }, (_, i) => words.get(a + i) ?? 0),
            );
            assert.deepEqual(Object.keys(all), Object.keys(sample.readAll.response));
            assert.equal(all['8000d'], -821755904);
            assert.equal(all['8016s'], 'cFos Power Brain');
            assert.equal(all['8062d'], -1, 'no pulses yet');
            // registers outside the map answer "illegal data address"
            await assert.rejects(
                bus.read({ device: 'meter2', unit: 3, address: 8048, count: 2 }),
                /illegal data address/,
            );
        } finally {
            await bus.close();
        }
    });

    it('answers the frames of a real client byte for byte (evcc wire trace)', async () => {
        const trace = JSON.parse(readFileSync(join(fixtures, 'wire-trace-evcc.json'), 'utf8')) as {
            frames: { send?: string; recv: string }[];
        };
        const bus = new Bus({ kind: 'tcp', host: '127.0.0.1', port: sim.ports.evse });
        await bus.write({ device: 'E1', unit: 1, address: 8094, values: [0] }); // as in the trace: disabled, state B
        await bus.close();
        const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');
        const socket = net.connect(sim.ports.evse, '127.0.0.1');
        try {
            await new Promise<void>((resolve, reject) =>
                socket.once('connect', resolve).once('error', reject),
            );
            for (const frame of trace.frames.filter((f) => f.send)) {
                const reply = new Promise<Buffer>((resolve) => socket.once('data', resolve));
                socket.write(hex(frame.send!));
                assert.deepEqual(await reply, hex(frame.recv));
            }
            const state = new Promise<Buffer>((resolve) => socket.once('data', resolve));
            socket.write(hex('00 0d 00 00 00 06 01 03 1f 9c 00 01')); // 8092
            assert.deepEqual(await state, hex(trace.frames[0]!.recv));
        } finally {
            socket.destroy();
        }
    });

    it('follows the EVSE registers: unplug, enable, fail-safe, phases, RFID, S0 power', async () => {
        let now = 1_000_000;
        const clocked = new PowerBrainSim({
            port: 0,
            meterPorts: false,
            now: () => now,
            car: { batteryWh: 50000, soc: 0.5, maxCurrent: 16000, phases: 3, followMs: 0 },
        });
        await clocked.start();
        const bus = new Bus({ kind: 'tcp', host: '127.0.0.1', port: clocked.ports.evse });
        try {
            const read = (address: number, count = 1) =>
                bus.read({ device: 'E1', unit: 1, address, count });
            assert.deepEqual(await read(8092), [0], 'state A: nothing plugged in');
            clocked.plug();
            now += 1000;
            assert.deepEqual(await read(8092), [2], 'state C: charging');
            await bus.write({ device: 'E1', unit: 1, address: 8083, values: [0, 0] }); // fail-safe off
            await bus.write({ device: 'E1', unit: 1, address: 8093, values: [100, 1] });
            now += 3_600_000;
            // 10 A × 3 × 230 V for an hour, plus the first second at 16 A
            assert.ok(
                Math.abs(clocked.state.totalEnergyWh - 6903) < 2,
                `${clocked.state.totalEnergyWh} Wh`,
            );
            await bus.write({ device: 'E1', unit: 1, address: 8094, values: [0] });
            assert.deepEqual(await read(8092), [1], 'state B: disabled');
            await bus.write({ device: 'E1', unit: 1, address: 8083, values: [0, 10, 60, 0] });
            await bus.write({ device: 'E1', unit: 1, address: 8094, values: [1] });
            now += 11_000;
            assert.equal(clocked.state.failSafeActive, true);
            assert.equal(clocked.state.offered, 6000);
            await bus.write({ device: 'E1', unit: 1, address: 8087, values: [1] });
            now += 1000;
            // The fail-safe current stays in 8093 until the limit is written again.
            assert.deepEqual(clocked.state.currents, [6000, 0, 0]);
            await bus.write({ device: 'E1', unit: 1, address: 8093, values: [100] });
            now += 1000;
            assert.deepEqual(clocked.state.currents, [10000, 0, 0]);
            clocked.presentRfid('04A1B2C3');
            assert.deepEqual(await read(8111), [1]);
            assert.equal(
                String.fromCharCode(...(await read(8096, 4)).flatMap((w) => [w >> 8, w & 0xff])),
                '04A1B2C3',
            );
            await assert.rejects(
                bus.write({ device: 'E1', unit: 1, address: 8094, values: [2] }),
                /illegal data value/,
            );
            clocked.unplug();
            assert.deepEqual(await read(8092), [0]);
            clocked.setMeterPower(1, 2300);
            assert.deepEqual(
                await bus.read({ device: 'M1', unit: 2, address: 8062, count: 8 }),
                [0, 2300, 0, 33, 0, 33, 0, 33],
            );
            await assert.rejects(
                bus.read({ device: 'x', unit: 9, address: 8000, count: 1 }),
                /exception 11/,
            );
        } finally {
            await bus.close();
            await clocked.close();
        }
    });
});
