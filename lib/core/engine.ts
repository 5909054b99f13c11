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

/**
 * The engine's side of one polled device: whether its answer is awaited in the running sense or
 * act phase, and answer handlers made once rather than a closure per request per cycle.
 */
interface DeviceLink {
    readonly id: string;
    /** Where the answer goes: the device's state when the request was sent. */
    state: DeviceState;
    /** Number of the phase that still waits for this device's answer; 0 = none. */
    awaitedIn: number;
    /** Phase of the read, and of the write, that the shared handlers serve; 0 = free. */
    readFor: number;
    writeFor: number;
    /** The command that the shared write handlers wait to see confirmed. */
    writing: EvseCommand | null;
    readonly onReading: (reading: MeterReading | EvseReading) => void;
    readonly onReadFailed: (err: unknown) => void;
    readonly onWritten: () => void;
    readonly onWriteFailed: (err: unknown) => void;
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
    /** A pushed reading that shows an overload decides at once (default true); false = at the next cycle. */
    reactOnArrival?: boolean;
}

export class ChargingManager {
    readonly events = new Events<ManagerEvents>();
    private config: SiteConfig;
    private readonly drivers = new Map<string, DeviceDriver>();
    private readonly states = new Map<string, DeviceState>();
    private readonly links = new Map<string, DeviceLink>();
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
    // The sense or act phase in progress, with one deadline for the whole phase: a timer and a
    // promise chain per device per cycle were most of the cycle's garbage at 300 wallboxes.
    /** Number of the current (or last) phase; every phase gets a new one. */
    private phase = 0;
    private phaseWrites = false;
    /** Devices asked in this phase (only the engine holds this list, so it is reused). */
    private readonly phaseLinks: DeviceLink[] = [];
    /** Answers the phase still waits for. */
    private awaiting = 0;
    private phaseTimer: TimerHandle | null = null;
    private endPhase: (() => void) | null = null;

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

    /** Largest overdraw seen (mA): the vendor's overdraft_cur. */
    get overdraftMax(): number {
        return this.memory.overdraftMax;
    }

    /** Forgets the largest overdraw seen (overdraft_cur set to 0); an active penalty stays. */
    resetOverdraft(): void {
        this.memory = { ...this.memory, overdraftMax: 0 };
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
        this.links.delete(id);
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
        await this.senseAll();

        // snapshot
        const now = this.clock.now();
        const snapshot: Snapshot = {
            now,
            meters: this.samples<MeterReading>(config.meters),
            evses: this.samples<EvseReading>(config.evses),
            ...this.inputs?.(now),
        };
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

        await this.actAll(result.setpoints, previous);

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

    /** This cycle's samples of the configured devices that have one (the snapshot keeps them). */
    private samples<R>(devices: readonly { id: string }[]): Map<string, DeviceSample<R>> {
        const out = new Map<string, DeviceSample<R>>();
        for (let i = 0; i < devices.length; i++) {
            const id = devices[i]!.id;
            const s = this.states.get(id);
            if (s) out.set(id, s.sample as DeviceSample<R>);
        }
        return out;
    }

    /** sense: reads every polled device in parallel (each bus serialises its own requests). */
    private senseAll(): Promise<void> {
        const phase = this.openPhase(false);
        this.drivers.forEach((driver) => this.sense(driver, phase));
        return this.closePhase();
    }

    private sense(driver: DeviceDriver, phase: number): void {
        const state = this.deviceState(driver.id);
        const link = this.link(driver.id);
        link.state = state;
        let request: Promise<MeterReading | EvseReading>;
        try {
            request = driver.read();
        } catch (err) {
            this.markFailed(state, err);
            return;
        }
        this.awaitAnswer(link);
        if (link.readFor === 0) {
            link.readFor = phase;
            void request.then(link.onReading, link.onReadFailed);
        } else {
            // An earlier read never answered and still holds the shared handlers.
            void request.then(
                (reading) => this.readAnswered(link, phase, reading),
                (err: unknown) => this.readFailed(link, phase, err),
            );
        }
    }

    private readAnswered(
        link: DeviceLink,
        phase: number,
        reading: MeterReading | EvseReading,
    ): void {
        if (!this.answered(link, phase)) return;
        try {
            link.state.sample = { reading, takenAt: reading.takenAt ?? this.clock.now() };
            this.markOk(link.state);
        } catch (err) {
            this.markFailed(link.state, err); // a driver that resolved without a reading
        }
        this.settled();
    }

    private readFailed(link: DeviceLink, phase: number, err: unknown): void {
        if (!this.answered(link, phase)) return;
        this.markFailed(link.state, err);
        this.settled();
    }

    /** act: sends the wallboxes their new commands, and keep-alives, in parallel. */
    private actAll(
        setpoints: ReadonlyMap<string, EvseSetpoint>,
        previous: ReadonlyMap<string, EvseSetpoint> | undefined,
    ): Promise<void> {
        const phase = this.openPhase(true);
        const now = this.clock.now();
        setpoints.forEach((sp, id) => this.act(id, sp, previous?.get(id), now, phase));
        return this.closePhase();
    }

    private act(
        id: string,
        sp: EvseSetpoint,
        previous: EvseSetpoint | undefined,
        now: number,
        phase: number,
    ): void {
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
        const changed = !state.lastCommand || !sameCommand(state.lastCommand, sp);
        // Re-write well before the wallbox's own communication fail-safe would take over.
        const keepAlive =
            driver.keepAliveMs !== undefined &&
            state.lastWriteAt !== null &&
            now - state.lastWriteAt >= driver.keepAliveMs / 3;
        if (!changed && !keepAlive) return;
        const command: EvseCommand = {
            current: sp.current,
            chargingEnabled: sp.chargingEnabled,
            released: sp.released,
        };
        const link = this.link(id);
        link.state = state;
        let request: Promise<void>;
        try {
            request = driver.apply(command);
        } catch (err) {
            state.lastCommand = null;
            this.markFailed(state, err);
            return;
        }
        this.awaitAnswer(link);
        if (link.writeFor === 0) {
            link.writeFor = phase;
            link.writing = command;
            void request.then(link.onWritten, link.onWriteFailed);
        } else {
            // An earlier write never answered and still holds the shared handlers.
            void request.then(
                () => this.written(link, phase, command),
                (err: unknown) => this.writeFailed(link, phase, err),
            );
        }
    }

    private written(link: DeviceLink, phase: number, command: EvseCommand): void {
        if (!this.answered(link, phase)) return;
        link.state.lastCommand = command;
        link.state.lastWriteAt = this.clock.now();
        this.settled();
    }

    private writeFailed(link: DeviceLink, phase: number, err: unknown): void {
        if (!this.answered(link, phase)) return;
        link.state.lastCommand = null; // unknown now: write again next cycle
        this.markFailed(link.state, err);
        this.settled();
    }

    private link(id: string): DeviceLink {
        let link = this.links.get(id);
        if (!link) {
            link = this.newLink(id);
            this.links.set(id, link);
        }
        return link;
    }

    private newLink(id: string): DeviceLink {
        const link: DeviceLink = {
            id,
            state: this.deviceState(id),
            awaitedIn: 0,
            readFor: 0,
            writeFor: 0,
            writing: null,
            onReading: (reading) => {
                const phase = link.readFor;
                link.readFor = 0;
                this.readAnswered(link, phase, reading);
            },
            onReadFailed: (err) => {
                const phase = link.readFor;
                link.readFor = 0;
                this.readFailed(link, phase, err);
            },
            onWritten: () => {
                const phase = link.writeFor;
                const command = link.writing!;
                link.writeFor = 0;
                link.writing = null;
                this.written(link, phase, command);
            },
            onWriteFailed: (err) => {
                const phase = link.writeFor;
                link.writeFor = 0;
                link.writing = null;
                this.writeFailed(link, phase, err);
            },
        };
        return link;
    }

    /** Starts a sense (reads) or act (writes) phase; returns its number. */
    private openPhase(writes: boolean): number {
        this.phaseWrites = writes;
        this.phaseLinks.length = 0;
        this.awaiting = 0;
        return ++this.phase;
    }

    /** Counts a request sent to a device in this phase. */
    private awaitAnswer(link: DeviceLink): void {
        link.awaitedIn = this.phase;
        this.phaseLinks.push(link);
        this.awaiting++;
    }

    /** Resolves once every device asked in this phase has answered, or at the phase's deadline. */
    private closePhase(): Promise<void> {
        if (this.awaiting === 0) return Promise.resolve();
        return new Promise<void>((resolve) => {
            this.endPhase = resolve;
            this.phaseTimer = this.clock.setTimeout(this.phaseDeadline, this.ioTimeoutMs);
        });
    }

    /**
     * Whether an answer is the one its phase still waits for; a late answer (after the deadline,
     * from an earlier cycle) is dropped, as a timed-out request's answer always was.
     */
    private answered(link: DeviceLink, phase: number): boolean {
        if (phase === 0 || link.awaitedIn !== phase) return false;
        link.awaitedIn = 0;
        return true;
    }

    /** One answer recorded: the phase ends when none is outstanding. */
    private settled(): void {
        if (--this.awaiting > 0) return;
        if (this.phaseTimer !== null) this.clock.clearTimeout(this.phaseTimer);
        this.finishPhase();
    }

    /** At the deadline, every device that has not answered fails as a lone timeout did. */
    private readonly phaseDeadline = (): void => {
        const phase = this.phase;
        for (let i = 0; i < this.phaseLinks.length; i++) {
            const link = this.phaseLinks[i]!;
            if (link.awaitedIn !== phase) continue;
            link.awaitedIn = 0;
            if (this.phaseWrites) {
                link.state.lastCommand = null;
                this.markFailed(link.state, this.noAnswer(`write ${link.id}`));
            } else {
                this.markFailed(link.state, this.noAnswer(`read ${link.id}`));
            }
        }
        this.awaiting = 0;
        this.finishPhase();
    };

    private finishPhase(): void {
        this.phaseTimer = null;
        const end = this.endPhase;
        this.endPhase = null;
        end?.();
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

    private noAnswer(what: string): Error {
        const err = new Error(`${what}: no answer within ${this.ioTimeoutMs} ms`);
        (err as Error & { code: string }).code = 'ETIMEDOUT';
        return err;
    }

    /** A lone request with its own deadline (for the writes when control is given up). */
    private withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
        return new Promise<T>((resolve, reject) => {
            const timer = this.clock.setTimeout(
                () => reject(this.noAnswer(what)),
                this.ioTimeoutMs,
            );
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
