// Modbus poll efficiency: requests per device cycle of every built-in device definition
// against the minimum its registers need; against simulated Power Brains on loopback TCP, poll latency for 1, 8 and 32 wallboxes polled in parallel (each on its own port), and
// sequential reads on one connection.
import type { DeviceDefinition, FieldDef } from '../lib/devices/definition';
import { BUILT_IN_DEFINITIONS } from '../lib/devices/definitions';
import { createModbusDriver } from '../lib/devices/factory';
import { PowerBrainEvse } from '../lib/devices/powerbrain';
import { Bus } from '../lib/modbus/bus';
import { type DataType, wordCount } from '../lib/modbus/codec';
import { BusPool } from '../lib/modbus/pool';
import { PowerBrainSim } from '../lib/sim/powerbrain-sim';
import { RtuServer } from '../test/support/rtu-server';
import { median, type Report, round } from './harness';

/**
 * The least read requests that cover a set of registers: runs of registers no further apart than
 * `maxGap` unrequested ones (registers the device is known to answer), at most `maxCount` per
 * request. Taking each request as far as it may reach is optimal on a line of addresses.
 */
function leastRequests(words: Set<number>, maxGap: number, maxCount: number): number {
    const sorted = [...words].sort((x, y) => x - y);
    let requests = 0;
    let first = -Infinity;
    let last = -Infinity;
    for (const a of sorted) {
        if (a - last - 1 > maxGap || a - first + 1 > maxCount) {
            requests++;
            first = a;
        }
        last = a;
    }
    return requests;
}

/** Readings a driver reads once, not per cycle, beside the identity: the Power Brain's S0
 *  voltages are configured nominal values, not measurements (see its definition). */
const READ_ONCE: Record<string, string[]> = { meter_powerbrain: ['voltagesV'] };

/**
 * The least read requests one cycle of a definition needs, from its registers alone: every
 * status field and reading (identity is read once at start, not per cycle) and the scale-factor
 * registers they name, per function code, bridging no more than the definition's `maxGap`.
 */
function definitionMinimum(d: DeviceDefinition): number {
    const readings = { ...(d.readings ?? {}) } as Record<string, FieldDef | FieldDef[]>;
    for (const once of ['model', 'serial', 'firmware', ...(READ_ONCE[d.type] ?? [])]) {
        delete readings[once];
    }
    const fields: FieldDef[] = [...Object.values(d.status ?? {})];
    for (const r of Object.values(readings)) fields.push(...(Array.isArray(r) ? r : [r]));
    const words = new Map<number, Set<number>>();
    const add = (fc: number, address: number, n: number): void => {
        const set = words.get(fc) ?? new Set<number>();
        for (let i = 0; i < n; i++) set.add(address + i);
        words.set(fc, set);
    };
    for (const f of fields) {
        const fc = f.fc ?? d.fc ?? 3;
        const type = f.type ?? 'uint16';
        add(fc, f.address, type === 'string' ? (f.words ?? 1) : wordCount(type as DataType));
        if (f.scaleFactor) add(f.scaleFactor.fc ?? fc, f.scaleFactor.address, 1);
    }
    let total = 0;
    for (const set of words.values()) {
        total += leastRequests(set, d.maxGap ?? 0, d.maxCount ?? 125);
    }
    return total;
}

/**
 * Requests one cycle of a built-in definition makes, counted where they arrive: the Power Brain
 * simulator for its own types, otherwise an RTU-over-TCP server that answers every register.
 */
async function cycleRequests(d: DeviceDefinition): Promise<number> {
    const pool = new BusPool({ timeoutMs: 2000 });
    if (d.type.endsWith('_powerbrain')) {
        const sim = new PowerBrainSim({ port: 0, plugged: true });
        await sim.start();
        try {
            const driver = createModbusDriver(
                {
                    dev_type: d.type,
                    dev_id: d.kind === 'evse' ? 'E1' : 'M1',
                    address: `127.0.0.1:${sim.ports.evse}`,
                    id: d.kind === 'evse' ? 1 : 2,
                },
                { pool },
            );
            await driver.read();
            const before = sim.state.requests;
            await driver.read();
            return sim.state.requests - before;
        } finally {
            await pool.close();
            await sim.close();
        }
    }
    const server = new RtuServer({ units: { 1: 'ok' }, baudRate: 115200 });
    const port = await server.listenTcp();
    try {
        const driver = createModbusDriver(
            {
                dev_type: d.type,
                dev_id: d.kind === 'evse' ? 'E1' : 'M1',
                address: `127.0.0.1:${port},rtu,115200`,
                id: 1,
            },
            { pool },
        );
        await driver.read();
        const before = server.frames.length;
        await driver.read();
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
    let requests = 0;
    let baseline = 0;
    for (const d of BUILT_IN_DEFINITIONS) {
        if (d.sunspec) {
            // addresses are offsets into models found by a scan: measured by the fixture tests
            console.warn(`${d.type}: SunSpec, not measured here`);
            continue;
        }
        const n = await cycleRequests(d);
        const min = definitionMinimum(d);
        report(`modbus.requests_per_device_cycle.${d.type}`, {
            value: n,
            unit: 'requests',
            baseline: min,
            ratio: n / min,
        });
        requests += n;
        baseline += min;
    }
    // every built-in definition: the sum of their requests against the sum of their minimums
    report('modbus.requests_per_device_cycle', {
        value: requests,
        unit: 'requests',
        baseline,
        ratio: requests / baseline,
    });

    const sim = new PowerBrainSim({ port: 0, plugged: true });
    await sim.start();
    const pool = new BusPool();
    try {
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
