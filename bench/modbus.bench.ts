// Modbus poll efficiency against simulated Power Brains on loopback TCP: requests per device
// cycle against the minimum the register blocks need (and the same for the Eastron meters),
// poll latency for 1, 8 and 32 wallboxes polled in parallel (each on its own port), and
// sequential reads on one connection.
import {
    GenericModbusMeter,
    type MeterMap,
    SDM630_MAP,
    SDM72DM_MAP,
} from '../lib/devices/generic-meter';
import { PowerBrainEvse, PowerBrainMeter } from '../lib/devices/powerbrain';
import { type DataType, wordCount } from '../lib/modbus/codec';
import { Bus } from '../lib/modbus/bus';
import { BusPool } from '../lib/modbus/pool';
import { PB } from '../lib/modbus/powerbrain-map';
import { PowerBrainSim } from '../lib/sim/powerbrain-sim';
import { RtuServer } from '../test/support/rtu-server';
import { median, type Report, round } from './harness';

/** Registers one poll needs, listed independently of the driver's plan. */
const EVSE_NEEDS: [number, number][] = [
    [PB.meterFlags, 1],
    [PB.energy, 4],
    [PB.power, 2],
    [PB.currentL1, 6],
    [PB.cpState, 1],
    [PB.currentLimit, 1],
    [PB.chargingEnable, 1],
    [PB.chargingCurrent, 1],
    [PB.lastRfid, 15],
];
const METER_NEEDS: [number, number][] = EVSE_NEEDS.slice(0, 4);

/** Number of maximal runs of consecutive registers: the least number of read requests. */
function contiguousBlocks(needs: [number, number][]): number {
    const words = new Set<number>();
    for (const [a, n] of needs) for (let i = 0; i < n; i++) words.add(a + i);
    const sorted = [...words].sort((x, y) => x - y);
    // a run longer than a request may carry (125 registers) takes more than one
    let blocks = 0;
    let run = 0;
    sorted.forEach((a, i) => {
        if (i > 0 && sorted[i - 1] === a - 1 && run < 125) run++;
        else {
            blocks++;
            run = 1;
        }
    });
    return blocks;
}

/** The least requests a meter map's registers need: contiguous runs per function code. */
function mapMinimum(map: MeterMap): number {
    const fields = [
        map.powerW,
        ...(map.currentsA ?? []),
        ...(map.phasePowersW ?? []),
        ...(map.voltagesV ?? []),
        ...(map.importWh ? [map.importWh] : []),
        ...(map.exportWh ? [map.exportWh] : []),
    ];
    let total = 0;
    for (const fc of [3, 4]) {
        const needs = fields
            .filter((f) => (f.fc ?? map.fc ?? 3) === fc)
            .map((f): [number, number] => [f.address, wordCount((f.type ?? 'int32') as DataType)]);
        if (needs.length) total += contiguousBlocks(needs);
    }
    return total;
}

/** Requests one read of a meter makes, counted where they arrive (an RTU-over-TCP server). */
async function meterRequests(map: MeterMap): Promise<number> {
    const server = new RtuServer({ units: { 1: 'ok' }, baudRate: 115200 });
    const port = await server.listenTcp();
    const pool = new BusPool({ timeoutMs: 2000 });
    try {
        const meter = new GenericModbusMeter({
            id: 'M1',
            address: `127.0.0.1:${port},rtu,115200`,
            pool,
            registers: map,
        });
        await meter.read();
        const before = server.frames.length;
        await meter.read();
        return server.frames.length - before;
    } finally {
        await pool.close();
        await server.close();
    }
}

async function pollMs(n: number): Promise<number> {
    const sims = Array.from(
        { length: n },
        () => new PowerBrainSim({ port: 0, meterPorts: false, plugged: true }),
    );
    const pool = new BusPool({ timeoutMs: 2000 });
    try {
        for (const sim of sims) await sim.start();
        const evses = sims.map(
            (sim, i) =>
                new PowerBrainEvse({
                    id: `E${i + 1}`,
                    address: `127.0.0.1:${sim.ports.evse}`,
                    pool,
                }),
        );
        await Promise.all(evses.map((e) => e.read())); // connect, identify, program the fail-safe
        const samples: number[] = [];
        for (let i = 0; i < 40; i++) {
            const t0 = process.hrtime.bigint();
            await Promise.all(evses.map((e) => e.read()));
            samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        return median(samples);
    } finally {
        await pool.close();
        await Promise.all(sims.map((s) => s.close()));
    }
}

export async function run(report: Report): Promise<void> {
    const sim = new PowerBrainSim({ port: 0, plugged: true });
    await sim.start();
    const pool = new BusPool();
    try {
        const evse = new PowerBrainEvse({ id: 'E1', address: `127.0.0.1:${sim.ports.evse}`, pool });
        const meter = new PowerBrainMeter({
            id: 'M1',
            address: `127.0.0.1:${sim.ports.evse}`,
            unit: 2,
            pool,
        });
        await evse.read();
        await meter.read();
        const before = sim.state.requests;
        await evse.read();
        await meter.read();
        const pbRequests = sim.state.requests - before;
        const pbMinimum = contiguousBlocks(EVSE_NEEDS) + contiguousBlocks(METER_NEEDS);
        report('modbus.requests_per_device_cycle.powerbrain', {
            value: pbRequests,
            unit: 'requests',
            baseline: pbMinimum,
            ratio: pbRequests / pbMinimum,
        });
        let requests = pbRequests;
        let baseline = pbMinimum;
        for (const [type, map] of [
            ['meter_sdm630', SDM630_MAP],
            ['meter_sdm72dm', SDM72DM_MAP],
        ] as const) {
            const n = await meterRequests(map);
            const min = mapMinimum(map);
            report(`modbus.requests_per_device_cycle.${type}`, {
                value: n,
                unit: 'requests',
                baseline: min,
                ratio: n / min,
            });
            requests += n;
            baseline += min;
        }
        // every device type measured: their sum against the sum of their minimums
        report('modbus.requests_per_device_cycle', {
            value: requests,
            unit: 'requests',
            baseline,
            ratio: requests / baseline,
        });

        const bus = new Bus({ kind: 'tcp', host: '127.0.0.1', port: sim.ports.meter1 });
        try {
            for (let i = 0; i < 200; i++)
                await bus.read({ device: 'M1', unit: 2, address: 8057, count: 13 });
            const count = 2000;
            const t0 = process.hrtime.bigint();
            for (let i = 0; i < count; i++)
                await bus.read({ device: 'M1', unit: 2, address: 8057, count: 13 });
            const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
            report('modbus.reads_per_s', { value: round(count / seconds), unit: 'reads/s' });
        } finally {
            await bus.close();
        }
    } finally {
        await pool.close();
        await sim.close();
    }
    for (const n of [1, 8, 32])
        report(`modbus.poll_ms.${n}`, { value: round(await pollMs(n), 3), unit: 'ms' });
}
