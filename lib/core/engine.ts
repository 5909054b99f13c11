// The ChargingManager runs the control cycle: sense → snapshot → decide → act → publish.
// It owns the device drivers, keeps what it learned about each device, and calls the pure
// allocator once per cycle.
import { allocate, releaseCommands } from './allocate';
import { systemClock, type Clock, type TimerHandle } from './clock';
import { emptyMemory } from './defaults';
import { Events } from './events';
import type {
    AllocationResult,
    AllocatorMemory,
    DeviceDriver,
    DeviceSample,
    EvseCommand,
    EvseDriver,
    EvseReading,
    EvseSetpoint,
    MeterReading,
    SiteConfig,
    Snapshot,
} from './types';

/** What the manager knows about one device between cycles (feeds status and get_dev_info). */
export interface DeviceState {
    id: string;
    sample: DeviceSample<MeterReading | EvseReading>;
    /** A read or write is failing right now. */
    comError: boolean;
    /** Failed reads and writes since start. */
    comErrors: number;
    lastError: string;
    /** When the current communication error began (ms), or null. */
    comErrorSince: number | null;
    /** Last command written successfully, and when. */
    lastCommand: EvseCommand | null;
    lastWriteAt: number | null;
}

export interface CycleReport {
    at: number;
    /** How long sensing, deciding and acting took (ms): the vendor's cycle_time. */
    cycleTimeMs: number;
    result: AllocationResult;
    snapshot: Snapshot;
}

export interface ManagerEvents {
    cycle: CycleReport;
    /** A wallbox's command changed. */
    setpoint: { id: string; setpoint: EvseSetpoint; previous: EvseSetpoint | undefined };
    /** A device started failing (once per failure, not every cycle). */
    deviceError: { id: string; error: Error };
    deviceRecovered: { id: string };
    /** A cycle took longer than the period. */
    overrun: { cycleTimeMs: number; periodMs: number };
}

/** Extra per-cycle inputs from rules, overrides, budgets and formulas. */
export type CycleInputs = (now: number) => Pick<Snapshot, 'limits' | 'maxTotalCurrent'>;

export interface ManagerOptions {
    config: SiteConfig;
    drivers?: DeviceDriver[];
    clock?: Clock;
    /** Control period (ms); default 1000. */
    cycleMs?: number;
    /** Longest wait for one device read or write (ms); default 2000. */
    ioTimeoutMs?: number;
    inputs?: CycleInputs;
}

export class ChargingManager {
    readonly events = new Events<ManagerEvents>();
    private config: SiteConfig;
    private readonly drivers = new Map<string, DeviceDriver>();
    private readonly states = new Map<string, DeviceState>();
    private memory: AllocatorMemory = emptyMemory();
    private readonly clock: Clock;
    private readonly cycleMs: number;
    private readonly ioTimeoutMs: number;
    private readonly inputs: CycleInputs | undefined;
    private timer: TimerHandle | null = null;
    private running = false;
    private stopped = false;
    private inCycle: Promise<CycleReport> | null = null;
    private last: CycleReport | null = null;
    private extraLimits: ((now: number) => ReadonlyMap<string, number> | undefined) | null = null;

    constructor(opts: ManagerOptions) {
        this.config = opts.config;
        this.clock = opts.clock ?? systemClock;
        this.cycleMs = opts.cycleMs ?? 1000;
        this.ioTimeoutMs = opts.ioTimeoutMs ?? 2000;
        this.inputs = opts.inputs;
        for (const d of opts.drivers ?? []) this.drivers.set(d.id, d);
    }

    get site(): SiteConfig {
        return this.config;
    }

    get lastCycle(): CycleReport | null {
        return this.last;
    }

    get periodMs(): number {
        return this.cycleMs;
    }

    /** Replaces the site configuration from the next cycle on (drivers stay). */
    updateConfig(config: SiteConfig): void {
        this.config = config;
    }

    /** Adds or replaces a device driver; a replaced driver is closed. */
    async setDriver(driver: DeviceDriver): Promise<void> {
        const old = this.drivers.get(driver.id);
        this.drivers.set(driver.id, driver);
        if (old && old !== driver) await old.close();
    }

    async removeDriver(id: string): Promise<void> {
        const old = this.drivers.get(id);
        this.drivers.delete(id);
        this.states.delete(id);
        if (old) await old.close();
    }

    /**
     * A second source of per-wallbox caps (mA; 0 = must not charge), e.g. overrides set through
     * the HTTP API. Merged with the inputs' limits by taking the lower cap; null removes it.
     */
    setExtraLimits(
        source: ((now: number) => ReadonlyMap<string, number> | undefined) | null,
    ): void {
        this.extraLimits = source;
    }

    driver(id: string): DeviceDriver | undefined {
        return this.drivers.get(id);
    }

    deviceState(id: string): DeviceState {
        let s = this.states.get(id);
        if (!s) {
            s = {
                id,
                sample: {},
                comError: false,
                comErrors: 0,
                lastError: '',
                comErrorSince: null,
                lastCommand: null,
                lastWriteAt: null,
            };
            this.states.set(id, s);
        }
        return s;
    }

    /** Stores a value pushed from a flow or over HTTP; it is used by the next cycle. */
    pushReading(id: string, reading: MeterReading | EvseReading): void {
        const state = this.deviceState(id);
        state.sample = { reading, takenAt: reading.takenAt ?? this.clock.now() };
        this.markOk(state);
    }

    start(): void {
        if (this.running || this.stopped) return;
        this.running = true;
        this.schedule(0);
    }

    private schedule(delay: number): void {
        this.timer = this.clock.setTimeout(() => {
            this.timer = null;
            void this.runCycle().then(
                (report) => {
                    if (!this.running) return;
                    if (report.cycleTimeMs > this.cycleMs) {
                        this.events.emit('overrun', {
                            cycleTimeMs: report.cycleTimeMs,
                            periodMs: this.cycleMs,
                        });
                    }
                    this.schedule(Math.max(0, this.cycleMs - report.cycleTimeMs));
                },
                () => {
                    if (this.running) this.schedule(this.cycleMs);
                },
            );
        }, delay);
    }

    /** Runs one cycle now (cycles never overlap: a call during a cycle waits for it). */
    runCycle(): Promise<CycleReport> {
        if (!this.inCycle) {
            this.inCycle = this.cycle().finally(() => {
                this.inCycle = null;
            });
        }
        return this.inCycle;
    }

    private async cycle(): Promise<CycleReport> {
        const started = this.clock.now();
        const config = this.config;
        // sense: every polled device in parallel (each bus serialises its own requests)
        await Promise.all([...this.drivers.values()].map((d) => this.sense(d)));

        // snapshot
        const now = this.clock.now();
        const meters = new Map<string, DeviceSample<MeterReading>>();
        const evses = new Map<string, DeviceSample<EvseReading>>();
        for (const m of config.meters) {
            const s = this.states.get(m.id);
            if (s) meters.set(m.id, s.sample as DeviceSample<MeterReading>);
        }
        for (const e of config.evses) {
            const s = this.states.get(e.id);
            if (s) evses.set(e.id, s.sample as DeviceSample<EvseReading>);
        }
        const snapshot: Snapshot = { now, meters, evses, ...this.inputs?.(now) };
        const extra = this.extraLimits?.(now);
        if (extra && extra.size) {
            const merged = new Map(snapshot.limits ?? []);
            for (const [id, cap] of extra)
                merged.set(id, Math.min(cap, merged.get(id) ?? Infinity));
            snapshot.limits = merged;
        }

        // decide
        const previous = this.last?.result.setpoints;
        const result = allocate(snapshot, config, this.memory);
        this.memory = result.memory;

        // act
        await Promise.all(
            [...result.setpoints].map(([id, sp]) => this.act(id, sp, previous?.get(id))),
        );

        // publish
        const report: CycleReport = {
            at: now,
            cycleTimeMs: this.clock.now() - started,
            result,
            snapshot,
        };
        this.last = report;
        this.events.emit('cycle', report);
        return report;
    }

    private async sense(driver: DeviceDriver): Promise<void> {
        const state = this.deviceState(driver.id);
        try {
            const reading = await this.withTimeout<MeterReading | EvseReading>(
                driver.read(),
                `read ${driver.id}`,
            );
            state.sample = { reading, takenAt: reading.takenAt ?? this.clock.now() };
            this.markOk(state);
        } catch (err) {
            this.markFailed(state, err);
        }
    }

    private async act(
        id: string,
        sp: EvseSetpoint,
        previous: EvseSetpoint | undefined,
    ): Promise<void> {
        if (
            !previous ||
            previous.current !== sp.current ||
            previous.state !== sp.state ||
            previous.chargingEnabled !== sp.chargingEnabled
        ) {
            this.events.emit('setpoint', { id, setpoint: sp, previous });
        }
        const driver = this.drivers.get(id);
        if (!sp.write || !driver || driver.kind !== 'evse') return;
        const state = this.deviceState(id);
        const command: EvseCommand = {
            current: sp.current,
            chargingEnabled: sp.chargingEnabled,
            released: sp.released,
        };
        const now = this.clock.now();
        const changed = !state.lastCommand || !sameCommand(state.lastCommand, command);
        // Re-write well before the wallbox's own communication fail-safe would take over.
        const keepAlive =
            driver.keepAliveMs !== undefined &&
            state.lastWriteAt !== null &&
            now - state.lastWriteAt >= driver.keepAliveMs / 3;
        if (!changed && !keepAlive) return;
        try {
            await this.withTimeout(driver.apply(command), `write ${id}`);
            state.lastCommand = command;
            state.lastWriteAt = this.clock.now();
        } catch (err) {
            state.lastCommand = null; // unknown now: write again next cycle
            this.markFailed(state, err);
        }
    }

    private markOk(state: DeviceState): void {
        if (state.comError) {
            state.comError = false;
            state.comErrorSince = null;
            this.events.emit('deviceRecovered', { id: state.id });
        }
    }

    private markFailed(state: DeviceState, err: unknown): void {
        const error = err instanceof Error ? err : new Error(String(err));
        state.comErrors++;
        state.lastError = error.message;
        state.sample = { ...state.sample, error: error.message };
        if (!state.comError) {
            state.comError = true;
            state.comErrorSince = this.clock.now();
            this.events.emit('deviceError', { id: state.id, error });
        }
    }

    private withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
        return new Promise<T>((resolve, reject) => {
            const timer = this.clock.setTimeout(() => {
                const err = new Error(`${what}: no answer within ${this.ioTimeoutMs} ms`);
                (err as Error & { code: string }).code = 'ETIMEDOUT';
                reject(err);
            }, this.ioTimeoutMs);
            promise.then(
                (v) => {
                    this.clock.clearTimeout(timer);
                    resolve(v);
                },
                (e: unknown) => {
                    this.clock.clearTimeout(timer);
                    reject(e instanceof Error ? e : new Error(String(e)));
                },
            );
        });
    }

    /**
     * Gives up control: stops cycling, sends every wallbox the disable_policy command, closes
     * the drivers. Never rejects; safe to call twice.
     */
    async stop(): Promise<void> {
        if (this.stopped) return;
        this.stopped = true;
        this.running = false;
        if (this.timer !== null) this.clock.clearTimeout(this.timer);
        this.timer = null;
        await this.inCycle?.catch(() => undefined);
        const commands = releaseCommands(this.config);
        await Promise.all(
            [...this.drivers.values()].map(async (d) => {
                const cmd = commands.get(d.id);
                if (d.kind === 'evse' && cmd && this.config.params.lbEnabled) {
                    await this.withTimeout((d as EvseDriver).apply(cmd), `write ${d.id}`).catch(
                        () => undefined,
                    );
                }
                await d.close().catch(() => undefined);
            }),
        );
    }
}

function sameCommand(a: EvseCommand, b: EvseCommand): boolean {
    return (
        a.current === b.current &&
        a.chargingEnabled === b.chargingEnabled &&
        a.released === b.released
    );
}
