// Allocator scaling: median time of one decision for sites with 3-level groups, memory per
// wallbox, and growth against n log n.
import { allocate } from '../lib/core/allocate';
import { DEFAULT_PARAMS, emptyMemory } from '../lib/core/defaults';
import {
    MeterRole,
    type AllocatorMemory,
    type DeviceSample,
    type EvseConfig,
    type EvseReading,
    type GroupConfig,
    type MeterReading,
    type SiteConfig,
    type Snapshot,
} from '../lib/core/types';
import { median, type Report } from './harness';

/** n wallboxes in leaf groups of 10, under groups of 50, under groups of 200. */
export function benchSite(n: number): { config: SiteConfig; snapshot: (now: number) => Snapshot } {
    const groups: GroupConfig[] = [];
    const top = Math.max(1, Math.ceil(n / 200));
    const mid = Math.max(1, Math.ceil(n / 50));
    const leaf = Math.max(1, Math.ceil(n / 10));
    for (let i = 0; i < top; i++)
        groups.push({ id: `E${n + 1 + i}`, group: '', maxCurrent: 400_000 });
    for (let i = 0; i < mid; i++) {
        groups.push({
            id: `E${n + top + 1 + i}`,
            group: `E${n + 1 + (i % top)}`,
            maxCurrent: 120_000,
        });
    }
    for (let i = 0; i < leaf; i++) {
        groups.push({
            id: `E${n + top + mid + 1 + i}`,
            group: `E${n + top + 1 + (i % mid)}`,
            maxCurrent: 40_000,
        });
    }
    const evses: EvseConfig[] = [];
    for (let i = 0; i < n; i++) {
        evses.push({
            id: `E${i + 1}`,
            enabled: true,
            group: `E${n + top + mid + 1 + (i % leaf)}`,
            prio: i % 3,
            minCurrent: 6000,
            maxCurrent: 16_000 + (i % 4) * 4000,
            phaseRotation: ([0, 120, 240] as const)[i % 3]!,
            usedPhases: i % 4 === 0 ? 1 : 7,
            failSafeCurrent: 6000,
            staleAfterMs: 10_000,
        });
    }
    const config: SiteConfig = {
        params: { ...DEFAULT_PARAMS, maxTotalCurrent: 10 * n * 1000 + 50_000, increaseHoldMs: 0 },
        evses,
        groups,
        meters: [
            {
                id: 'M1',
                enabled: true,
                role: MeterRole.gridDemand,
                phaseRotation: 0,
                staleAfterMs: 10_000,
            },
        ],
    };
    const snapshot = (now: number): Snapshot => {
        const evseSamples = new Map<string, DeviceSample<EvseReading>>();
        for (const e of evses) {
            const id = Number(e.id.slice(1));
            evseSamples.set(e.id, {
                reading: {
                    state: 3,
                    currents: e.usedPhases === 1 ? [8000, 0, 0] : [8000, 8000, 8000],
                },
                takenAt: now - (id % 500),
            });
        }
        const meters = new Map<string, DeviceSample<MeterReading>>([
            [
                'M1',
                {
                    reading: { powerW: 0, currents: [8 * n * 1000, 7 * n * 1000, 7 * n * 1000] },
                    takenAt: now,
                },
            ],
        ]);
        return { now, evses: evseSamples, meters };
    };
    return { config, snapshot };
}

function timeCycles(n: number, cycles: number): number {
    const { config, snapshot } = benchSite(n);
    let memory: AllocatorMemory = emptyMemory();
    const snapshots = Array.from({ length: 8 }, (_, i) => snapshot(1_000_000 + i * 1000));
    const times: number[] = [];
    for (let i = 0; i < cycles; i++) {
        const snap = { ...snapshots[i % snapshots.length]!, now: 1_000_000 + i * 1000 };
        const t0 = process.hrtime.bigint();
        memory = allocate(snap, config, memory).memory;
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return median(times.slice(Math.floor(cycles / 5))); // after warm-up
}

function heapUsed(): number {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().heapUsed;
}

export async function run(report: Report): Promise<void> {
    const medians: Record<number, number> = {};
    for (const [n, cycles] of [
        [10, 2000],
        [100, 1000],
        [1000, 200],
        [10_000, 30],
    ] as const) {
        medians[n] = timeCycles(n, cycles);
        report(`allocate.ms.${n}`, { value: medians[n], unit: 'ms' });
    }
    const nlogn = (n: number) => n * Math.log2(n);
    const growth = medians[10_000]! / medians[100]!;
    const baseline = nlogn(10_000) / nlogn(100);
    report('allocate.growth.100_to_10000', {
        value: growth,
        unit: 'x',
        baseline,
        ratio: growth / baseline,
    });

    // Memory held per wallbox: configuration, one snapshot, the allocator's memory and result.
    const n = 10_000;
    const before = heapUsed();
    const { config, snapshot } = benchSite(n);
    const snap = snapshot(1_000_000);
    const result = allocate(snap, config, emptyMemory());
    const after = heapUsed();
    report('allocate.bytes_per_evse', { value: (after - before) / n, unit: 'B' });
    void result;
    await Promise.resolve();
}
