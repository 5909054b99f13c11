// A site of N simulated Power Brain wallboxes, each on its own loopback Modbus TCP port, with a
// grid meter (meter_ajax) fed by site.push: the plumbing of the reaction and cycle benchmarks.
// Every car wants 16 A and the wallboxes are capped at 10 A, so a settled site has every limit
// at 10 A and an overload forces every one of them down.
import { PowerBrainSim } from '../lib/sim/powerbrain-sim';
import { Site } from '../lib/site/site';

export const CYCLE_MS = 1000;
/** What each wallbox is capped at (mA). */
export const EVSE_MAX = 10_000;
/** Household load per phase besides the cars (mA) in normal operation. */
export const QUIET = [5000, 5000, 5000] as const;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
        if (check()) return true;
        await sleep(2);
    }
    return check();
}

/**
 * Waits until `done(i)` holds for every index, checking each one until it holds and not again:
 * polling all 300 wallboxes every 2 ms would take CPU from the manager being measured.
 */
export async function untilEach(
    count: number,
    done: (i: number) => boolean,
    timeoutMs: number,
): Promise<boolean> {
    let next = 0;
    return until(() => {
        while (next < count && done(next)) next++;
        return next === count;
    }, timeoutMs);
}

export async function startSims(n: number): Promise<PowerBrainSim[]> {
    const car = {
        batteryWh: 200_000,
        soc: 0.2,
        maxCurrent: 16_000,
        phases: 3 as const,
        followMs: 500,
    };
    return Promise.all(
        Array.from({ length: n }, async () => {
            const sim = new PowerBrainSim({
                host: '127.0.0.1',
                port: 0,
                meterPorts: false,
                plugged: true,
                car,
            });
            await sim.start();
            return sim;
        }),
    );
}

export async function closeSims(sims: readonly PowerBrainSim[]): Promise<void> {
    await Promise.all(sims.map((s) => s.close()));
}

/** Site parameters of the reaction benchmarks: a fuse, no reserve, no hold, no ramp limit. */
export function reactionParams(fuse: number): Record<string, number> {
    return {
        max_total_current: fuse,
        reserve_current: 0,
        cycle_ms: CYCLE_MS,
        increase_hold_time: 0,
        max_increase_per_cycle: 100_000,
        // Measured here is the reaction, not the five-minute cut that follows an overdraw.
        overdraw_penalty_time: 0,
    };
}

export interface FleetOptions {
    /** Passed to the site; undefined = the manager's default. */
    reactOnArrival?: boolean;
}

export class Fleet {
    readonly site: Site;
    /** max_total_current (mA): room for every car at 10 A plus the quiet household. */
    readonly fuse: number;
    private feeder: NodeJS.Timeout | undefined;

    constructor(
        readonly sims: readonly PowerBrainSim[],
        opts: FleetOptions = {},
    ) {
        this.fuse = sims.length * EVSE_MAX + 10_000;
        this.site = new Site({
            params: reactionParams(this.fuse),
            devices: [
                ...sims.map((sim, i) => ({
                    dev_type: 'evse_powerbrain',
                    dev_id: `E${i + 1}`,
                    address: `127.0.0.1:${sim.ports.evse}`,
                    id: 1,
                    max_charging_cur: EVSE_MAX,
                    used_phases: 7,
                })),
                { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
            ],
            ...(opts.reactOnArrival !== undefined ? { reactOnArrival: opts.reactOnArrival } : {}),
        });
    }

    /** One grid meter reading: the household per phase plus what the cars draw now. */
    push(household: readonly number[]): void {
        let cars = 0;
        for (const s of this.sims) cars += s.carCurrents[0];
        const currents = household.map((h) => h + cars) as unknown as [number, number, number];
        this.site.push('M1', { powerW: 0, currents });
    }

    /** Pushes the household now and every 200 ms from now on (replacing the previous feed). */
    feed(household: readonly number[]): void {
        clearInterval(this.feeder);
        this.push(household);
        this.feeder = setInterval(() => this.push(household), 200);
    }

    /** Starts the manager and waits until every wallbox is at its 10 A. */
    async start(): Promise<void> {
        this.feed(QUIET);
        this.site.start();
        if (!(await this.allAt(EVSE_MAX, 60_000))) {
            throw new Error(`wallboxes did not reach ${EVSE_MAX / 1000} A (n=${this.sims.length})`);
        }
    }

    /**
     * Waits until every wallbox is at `limit` and its car draws it (within 0.1 A): only then does
     * the grid meter show what an overload adds on top.
     */
    allAt(limit: number, timeoutMs: number): Promise<boolean> {
        return untilEach(
            this.sims.length,
            (i) => {
                const sim = this.sims[i]!;
                return sim.state.currentLimit === limit && sim.carCurrents[0] >= limit - 100;
            },
            timeoutMs,
        );
    }

    async stop(): Promise<void> {
        clearInterval(this.feeder);
        await this.site.stop();
    }
}
