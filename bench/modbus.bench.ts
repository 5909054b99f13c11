// Modbus poll efficiency against simulated Power Brains on loopback TCP: requests per device
// cycle against the minimum the register blocks need, poll latency for 1, 8 and 32 wallboxes
// polled in parallel (each on its own port), and sequential reads on one connection.
import { PowerBrainEvse, PowerBrainMeter } from '../lib/devices/powerbrain';
import { Bus } from '../lib/modbus/bus';
import { BusPool } from '../lib/modbus/pool';
import { PB } from '../lib/modbus/powerbrain-map';
import { PowerBrainSim } from '../lib/sim/powerbrain-sim';
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
    return sorted.filter((a, i) => i === 0 || sorted[i - 1] !== a - 1).length;
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
        const requests = sim.state.requests - before;
        const baseline = contiguousBlocks(EVSE_NEEDS) + contiguousBlocks(METER_NEEDS);
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
