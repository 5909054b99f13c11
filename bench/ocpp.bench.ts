// OCPP: N simulated charge points (OCPP 1.6J over real WebSockets on loopback, each with a car in
// a transaction) under one central system and one manager on its 1 s cycle, as a Node-RED
// instance would run them.
//  - ocpp.reaction_ms.N: an overload pushed into the grid meter → every charge point has accepted
//    its lower profile (the simulator's effective limit drops only when it accepted it). Median
//    and max. Target: median ≤ 100 ms at 300.
//  - ocpp.reconnect_s.N: the central system and the manager restart; every charge point
//    reconnects (its own backoff, 1 s doubling) and is under control again (a profile of the new
//    manager accepted).
import { OcppCentralSystem } from '../lib/ocpp/central-system';
import { OcppChargePointSim } from '../lib/sim/ocpp-sim';
import { Site } from '../lib/site/site';
import { CYCLE_MS, reactionParams, sleep, untilEach } from './fleet';
import { median, type Report } from './harness';

/** What each wallbox is capped at (mA; 1,000 of them stay under the 10,000 A a site may have); every car wants more. */
const EVSE_MAX = 9000;
const QUIET = 5000;
const SQUEEZED = 7000;

class OcppFleet {
    readonly sims: OcppChargePointSim[];
    readonly fuse: number;
    private cs!: OcppCentralSystem;
    private site!: Site;
    private port = 0;
    private feeder: NodeJS.Timeout | undefined;

    constructor(readonly n: number) {
        this.fuse = n * EVSE_MAX + 10_000;
        this.sims = [];
    }

    /** Central system and manager (again after a restart, on the same port). */
    async startManager(): Promise<void> {
        this.cs = new OcppCentralSystem({ pingIntervalMs: 60_000 });
        this.port = (await this.cs.listen({ host: '127.0.0.1', port: this.port })).port;
        this.site = new Site({
            params: reactionParams(this.fuse),
            devices: [
                ...Array.from({ length: this.n }, (_, i) => ({
                    dev_type: 'evse_ocpp',
                    dev_id: `E${i + 1}`,
                    address: `CP-${i + 1}`,
                    id: 1,
                    max_charging_cur: EVSE_MAX,
                    used_phases: 7,
                })),
                { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
            ],
            ocpp: this.cs,
        });
        this.feed([QUIET, QUIET, QUIET]);
        this.site.start();
    }

    async stopManager(): Promise<void> {
        clearInterval(this.feeder);
        await this.site.stop();
        await this.cs.close();
    }

    async startSims(): Promise<void> {
        for (let i = 0; i < this.n; i++) {
            this.sims.push(
                new OcppChargePointSim({
                    url: `ws://127.0.0.1:${this.port}/ocpp`,
                    identity: `CP-${i + 1}`,
                    protocol: 'ocpp1.6',
                    maxCurrent: 16_000,
                    car: {
                        batteryWh: 200_000,
                        soc: 0.2,
                        maxCurrent: 16_000,
                        phases: 3,
                        followMs: 500,
                    },
                    plugged: true,
                    meterValueInterval: 5,
                    tickMs: 100,
                }),
            );
        }
        await Promise.all(this.sims.map((s) => s.start()));
        if (!(await untilEach(this.n, (i) => this.sims[i]!.state.booted, 60_000))) {
            throw new Error(`charge points did not boot (n=${this.n})`);
        }
        await Promise.all(this.sims.map((s) => s.presentCard('bench')));
    }

    /** The grid meter: the household per phase plus what the cars draw now. */
    private push(household: readonly number[]): void {
        let cars = 0;
        for (const s of this.sims) cars += s.state.currents[0];
        const currents = household.map((h) => h + cars) as [number, number, number];
        this.site.push('M1', { powerW: 0, currents });
    }

    feed(household: readonly number[]): void {
        clearInterval(this.feeder);
        this.push(household);
        this.feeder = setInterval(() => this.push(household), 200);
    }

    /** Every charge point at `limit` and its car drawing it. */
    allAt(limit: number, timeoutMs: number): Promise<boolean> {
        return untilEach(
            this.n,
            (i) => {
                const s = this.sims[i]!.state;
                return s.effectiveLimit === limit && s.currents[0] >= limit - 100;
            },
            timeoutMs,
        );
    }

    async close(): Promise<void> {
        await Promise.all(this.sims.map((s) => s.close()));
        await this.stopManager().catch(() => undefined);
    }
}

async function measure(
    n: number,
    rounds: number,
): Promise<{ reaction: number[]; reconnectMs: number }> {
    const fleet = new OcppFleet(n);
    const reaction: number[] = [];
    try {
        await fleet.startManager();
        await fleet.startSims();
        if (!(await fleet.allAt(EVSE_MAX, 120_000))) {
            throw new Error(`charge points did not reach ${EVSE_MAX / 1000} A (n=${n})`);
        }
        for (let r = 0; r < rounds; r++) {
            await sleep(((r + 0.5) / rounds) * CYCLE_MS);
            const before = fleet.sims.map((s) => s.state.effectiveLimit);
            const heavy = [0, 1, 2].map(() => fleet.fuse - n * SQUEEZED);
            const t0 = performance.now();
            fleet.feed(heavy);
            const reacted = await untilEach(
                n,
                (i) => fleet.sims[i]!.state.effectiveLimit < before[i]!,
                10 * CYCLE_MS,
            );
            const t1 = performance.now();
            if (!reacted) throw new Error(`no reaction within ${10 * CYCLE_MS} ms (n=${n})`);
            reaction.push(t1 - t0);
            fleet.feed([QUIET, QUIET, QUIET]);
            if (!(await fleet.allAt(EVSE_MAX, 120_000))) {
                throw new Error(`charge points did not return to ${EVSE_MAX / 1000} A (n=${n})`);
            }
        }
        // Restart: every charge point loses its connection; the new manager takes over.
        const profiles = fleet.sims.map((s) => s.state.received.SetChargingProfile ?? 0);
        await fleet.stopManager();
        const t0 = performance.now();
        await fleet.startManager();
        const back = await untilEach(
            n,
            (i) => {
                const s = fleet.sims[i]!.state;
                return s.connected && (s.received.SetChargingProfile ?? 0) > profiles[i]!;
            },
            180_000,
        );
        const reconnectMs = performance.now() - t0;
        if (!back) throw new Error(`charge points not back under control (n=${n})`);
        return { reaction, reconnectMs };
    } finally {
        await fleet.close();
    }
}

export async function run(report: Report): Promise<void> {
    for (const [n, rounds] of [
        [30, 5],
        [300, 5],
        [1000, 3],
    ] as const) {
        const { reaction, reconnectMs } = await measure(n, rounds);
        console.log(`  n=${n}: reaction ${reaction.map((t) => t.toFixed(1)).join(', ')} ms`);
        report(`ocpp.reaction_ms.${n}`, {
            value: median(reaction),
            unit: 'ms',
            baseline: CYCLE_MS,
            ratio: median(reaction) / CYCLE_MS,
        });
        report(`ocpp.reaction_ms_max.${n}`, {
            value: Math.max(...reaction),
            unit: 'ms',
            baseline: CYCLE_MS,
        });
        report(`ocpp.reconnect_s.${n}`, { value: reconnectMs / 1000, unit: 's' });
    }
}
