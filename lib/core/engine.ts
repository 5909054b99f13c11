// The ChargingManager runs the control cycle: sense → limits → decide → act → publish.
// It owns the device drivers, keeps what it learned about each device, and calls the pure
// allocator once per decision. A decision never waits for a device that does not answer: it
// happens on schedule with the data at hand, and at once when a pushed reading shows an overload
// or a control command changes what a wallbox may do.
import { allocate, releaseCommands } from './allocate';
import { systemClock, type Clock, type TimerHandle } from './clock';
import { emptyMemory } from './defaults';
import { Events } from './events';
import { pushedOverload } from './overload';
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
    PhaseSwitchReport,
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
    /** The device's last request went unanswered: decisions no longer wait for it. */
    silent: boolean;
    /** Last command written successfully, and when. */
    lastCommand: EvseCommand | null;
    lastWriteAt: number | null;
    /** Wallboxes that switch phases: the newest switch carried out or failed, and whether one
     *  is on its way to the device. */
    phaseSwitch?: PhaseSwitchReport;
    phaseSwitchBusy?: boolean;
}

/**
 * Why a decision is taken: the scheduled cycle (sense, then decide); a control command, decided
 * at once and in full; a pushed reading that shows an overload, decided at once, only cutting and
 * starting no pause (Snapshot.betweenCycles).
 */
export type DecisionKind = 'cycle' | 'command' | 'reading';
/** A later request joining a waiting decision upgrades it: a cycle senses, a command decides in full. */
const RANK: Record<DecisionKind, number> = { reading: 0, command: 1, cycle: 2 };

export interface CycleReport {
    at: number;
    kind: DecisionKind;
    /** How long this decision took, from the start of sensing to the writes answered (ms). */
    cycleTimeMs: number;
    result: AllocationResult;
    snapshot: Snapshot;
}

export interface CycleFailure {
    error: Error;
    /** When the failure episode began (ms), and how many cycles have failed since. */
    since: number;
    failures: number;
    /** Every wallbox has been commanded to its fail-safe current. */
    failSafe: boolean;
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
    /** A decision threw: every failing cycle, with the episode it belongs to. */
    cycleFailed: CycleFailure;
    /** The first good decision after failing ones. */
    cycleRecovered: { since: number; failures: number };
    /** A subscriber of another event threw. */
    listenerError: { event: string; error: Error };
}

/**
 * The engine's side of one polled device: its outstanding read and write, and answer handlers
 * made once rather than a closure per request per cycle.
 */
interface DeviceLink {
    readonly id: string;
    /** Where the answer goes: the device's state when the request was sent. */
    state: DeviceState;
    /** The outstanding read and write (request numbers; 0 = none) and when they were sent. */
    read: number;
    readSentAt: number;
    write: number;
    writeSentAt: number;
    writing: EvseCommand | null;
    /** A newer decision's command, sent as soon as the outstanding write has answered. */
    next: EvseCommand | null;
    /** An increase that waits until every reduction in flight has answered. */
    held: EvseCommand | null;
    /** The outstanding write lowers the current (others' increases wait for it). */
    reducing: boolean;
    /** Request numbers the shared handlers serve; 0 = free. A request that timed out keeps them
     *  until it settles, and later requests get handlers of their own meanwhile. */
    readHandlers: number;
    writeHandlers: number;
    /** The request whose answer the running decision waits for; 0 = none. */
    awaited: number;
    readonly onReading: (reading: MeterReading | EvseReading) => void;
    readonly onReadFailed: (err: unknown) => void;
    readonly onWritten: () => void;
    readonly onWriteFailed: (err: unknown) => void;
}

/** Per-cycle caps from rules, formulas, overrides, budgets and authorisation. */
export type CycleLimits = Pick<
    Snapshot,
    'limits' | 'maxTotalCurrent' | 'phaseLimits' | 'phaseChoice'
>;
/** The limits stage: called once per decision, after sensing and before the allocator. */
export interface LimitsStage {
    limits(now: number): CycleLimits;
}

export interface ManagerOptions {
    config: SiteConfig;
    drivers?: DeviceDriver[];
    clock?: Clock;
    /** Control period (ms); default 1000. */
    cycleMs?: number;
    /** Longest wait for one device read or write (ms); default 2000. */
    ioTimeoutMs?: number;
    limits?: LimitsStage;
    /** A pushed reading that shows an overload is decided on at once (default); false = it
     *  waits for the next scheduled cycle. */
    reactOnArrival?: boolean;
}

/** Fail-safe delay of a failing loop when the site has no device with stale_after (ms). */
const DEFAULT_STALE_MS = 10_000;

export class ChargingManager {
    readonly events = new Events<ManagerEvents>((event, error) => {
        if (event !== 'listenerError') {
            this.events.emit('listenerError', { event: String(event), error });
        }
    });
    private config: SiteConfig;
    private readonly drivers = new Map<string, DeviceDriver>();
    private readonly states = new Map<string, DeviceState>();
    private readonly links = new Map<string, DeviceLink>();
    private memory: AllocatorMemory = emptyMemory();
    private readonly clock: Clock;
    private readonly cycleMs: number;
    private readonly ioTimeoutMs: number;
    /** How long a decision waits for answers before it goes on with what it has (ms). */
    private readonly gatherMs: number;
    private readonly limitsStage: LimitsStage | undefined;
    private readonly reactOnArrival: boolean;
    private timer: TimerHandle | null = null;
    private running = false;
    private stopped = false;
    private last: CycleReport | null = null;
    // One decision at a time; at most one more waits, and requests made meanwhile join it.
    private inFlight: Promise<CycleReport> | null = null;
    private inFlightKind: DecisionKind = 'cycle';
    /** The decision in flight has not taken its snapshot yet: a request can still join it. */
    private beforeSnapshot = false;
    private queued: {
        kind: DecisionKind;
        promise: Promise<CycleReport>;
        resolve: (r: CycleReport) => void;
        reject: (e: unknown) => void;
    } | null = null;
    /** Start of the last two scheduled cycles, for the measured cycle time. */
    private lastTickAt: number | null = null;
    private tickPeriodMs: number | null = null;
    private failure: CycleFailure | null = null;
    // Requests in flight, with one timer for the earliest deadline.
    private requestSeq = 0;
    private outstanding = 0;
    /** Writes in flight that lower a wallbox's current, and whether one of them failed. */
    private reductionsInFlight = 0;
    private reductionFailed = false;
    /** Wallboxes whose increase waits for those lowerings. */
    private readonly heldLinks = new Set<DeviceLink>();
    private sweepTimer: TimerHandle | null = null;
    // What the running decision waits for: answers, and one deadline.
    private readonly gatherLinks: DeviceLink[] = [];
    /** Requests sent now are awaited by the decision (between openGather and closeGather). */
    private collecting = false;
    private awaiting = 0;
    private gatherTimer: TimerHandle | null = null;
    private endGather: (() => void) | null = null;

    constructor(opts: ManagerOptions) {
        this.config = opts.config;
        this.clock = opts.clock ?? systemClock;
        this.cycleMs = opts.cycleMs ?? 1000;
        this.ioTimeoutMs = opts.ioTimeoutMs ?? 2000;
        this.gatherMs = Math.min(this.ioTimeoutMs, Math.max(1, Math.floor(this.cycleMs / 2)));
        this.limitsStage = opts.limits;
        this.reactOnArrival = opts.reactOnArrival ?? true;
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

    /**
     * The vendor's cycle_time: the measured time from one scheduled cycle to the next (an
     * overrunning cycle stretches it), or the last cycle's own duration before there are two.
     */
    get measuredCycleMs(): number {
        return this.tickPeriodMs ?? this.last?.cycleTimeMs ?? 0;
    }

    /** The failure episode in progress (cycles throwing), or null. */
    get failing(): Readonly<CycleFailure> | null {
        return this.failure;
    }

    /** Largest overdraw seen (mA): the vendor's overdraft_cur. */
    get overdraftMax(): number {
        return this.memory.overdraftMax;
    }

    /** Forgets the largest overdraw seen (overdraft_cur set to 0); an active penalty stays. */
    resetOverdraft(): void {
        this.memory = { ...this.memory, overdraftMax: 0 };
    }

    /** Replaces the site configuration from the next decision on (drivers stay). */
    updateConfig(config: SiteConfig): void {
        this.config = config;
    }

    /** Adds or replaces a device driver; a replaced driver is closed. */
    async setDriver(driver: DeviceDriver): Promise<void> {
        const old = this.drivers.get(driver.id);
        this.drivers.set(driver.id, driver);
        if (old && old !== driver) {
            this.dropLink(driver.id); // answers of the old driver are not the new one's
            await old.close();
        }
    }

    async removeDriver(id: string): Promise<void> {
        const old = this.drivers.get(id);
        this.drivers.delete(id);
        this.states.delete(id);
        this.dropLink(id);
        if (old) await old.close();
    }

    /** Forgets a device's requests: their answers, whenever they come, are dropped. */
    private dropLink(id: string): void {
        const link = this.links.get(id);
        if (!link) return;
        if (link.read !== 0) this.settled();
        if (link.write !== 0) this.settled();
        link.read = link.write = 0;
        link.next = null;
        link.held = null;
        this.links.delete(id);
        // Its lowering is not known to have taken effect: the increases it held wait for the
        // next decision.
        this.reductionSettled(link, false);
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
                silent: false,
                lastCommand: null,
                lastWriteAt: null,
            };
            this.states.set(id, s);
        }
        return s;
    }

    /**
     * Stores a value pushed from a flow or over HTTP. A meter reading that shows a phase above
     * its limit is decided on at once; anything else is used by the next decision.
     */
    pushReading(id: string, reading: MeterReading | EvseReading): void {
        const state = this.deviceState(id);
        state.sample = { reading, takenAt: reading.takenAt ?? this.clock.now() };
        this.markOk(state);
        if (
            this.reactOnArrival &&
            this.running &&
            'powerW' in reading &&
            !('state' in reading) &&
            pushedOverload(this.config, this.last?.result, id, reading as MeterReading)
        ) {
            void this.decideNow('reading');
        }
    }

    /**
     * Decides at once with the data at hand (no sensing): for a control command that changed
     * what a wallbox may do, so that the next look at the state shows its effect. Requests made
     * while one decision runs share one follow-up. Resolves with that decision's report, or null
     * when the manager is not running or the decision failed (the failure is reported as for
     * every cycle). Never rejects.
     */
    decideNow(kind: 'command' | 'reading' = 'command'): Promise<CycleReport | null> {
        if (!this.running) return Promise.resolve(null);
        return this.decision(kind).catch(() => null);
    }

    start(): void {
        if (this.running || this.stopped) return;
        this.running = true;
        this.schedule(0);
    }

    private schedule(delay: number): void {
        this.timer = this.clock.setTimeout(() => {
            this.timer = null;
            const started = this.clock.now();
            const next = () => {
                if (!this.running) return;
                // Cycles keep their period whatever a decision waited for.
                this.schedule(Math.max(0, started + this.cycleMs - this.clock.now()));
            };
            this.decision('cycle').then((report) => {
                if (report.cycleTimeMs > this.cycleMs && this.running) {
                    this.events.emit('overrun', {
                        cycleTimeMs: report.cycleTimeMs,
                        periodMs: this.cycleMs,
                    });
                }
                next();
            }, next);
        }, delay);
    }

    /**
     * Runs one scheduled cycle (sense, then decide) now. Decisions never overlap: a call during
     * a cycle waits for it, a call during a decision taken between cycles runs right after it.
     */
    runCycle(): Promise<CycleReport> {
        return this.decision('cycle');
    }

    private decision(kind: DecisionKind): Promise<CycleReport> {
        if (!this.inFlight && kind === 'cycle') {
            // A scheduled cycle starts at once; a decision asked for in this same turn joins it.
            const joining = this.queued;
            this.queued = null;
            const run = this.begin('cycle');
            if (joining) run.then(joining.resolve, joining.reject);
            return run;
        }
        if (this.inFlight) {
            if (kind === 'cycle' && this.inFlightKind === 'cycle') return this.inFlight;
            if (kind !== 'cycle' && this.beforeSnapshot) {
                // Its snapshot is still to come: the request's change is in it.
                if (RANK[kind] > RANK[this.inFlightKind]) this.inFlightKind = kind;
                return this.inFlight;
            }
        }
        if (this.queued) {
            if (RANK[kind] > RANK[this.queued.kind]) this.queued.kind = kind;
            return this.queued.promise;
        }
        let resolve!: (r: CycleReport) => void;
        let reject!: (e: unknown) => void;
        const promise = new Promise<CycleReport>((res, rej) => {
            resolve = res;
            reject = rej;
        });
        this.queued = { kind, promise, resolve, reject };
        // Debounce: requests made in the same turn (a burst of pushes or commands) share it.
        if (!this.inFlight) queueMicrotask(this.startQueued);
        return promise;
    }

    /** Starts the waiting decision, if nothing runs. */
    private readonly startQueued = (): void => {
        const queued = this.queued;
        if (this.inFlight || !queued) return;
        this.queued = null;
        this.begin(queued.kind).then(queued.resolve, queued.reject);
    };

    private begin(kind: DecisionKind): Promise<CycleReport> {
        this.inFlightKind = kind;
        this.beforeSnapshot = true;
        const run = this.guarded(kind);
        this.inFlight = run;
        const settle = () => {
            this.inFlight = null;
            this.startQueued();
        };
        run.then(settle, settle);
        return run;
    }

    /** A decision whose failure is reported (event, fail-safe) before the caller hears of it. */
    private async guarded(kind: DecisionKind): Promise<CycleReport> {
        let report: CycleReport;
        try {
            report = await this.cycle(kind);
        } catch (err) {
            this.beforeSnapshot = false;
            await this.cycleFailed(err);
            throw err;
        }
        return report;
    }

    private async cycle(kind: DecisionKind): Promise<CycleReport> {
        const started = this.clock.now();
        if (kind === 'cycle') {
            if (this.lastTickAt !== null) this.tickPeriodMs = started - this.lastTickAt;
            this.lastTickAt = started;
            await this.senseAll();
        }
        const config = this.config;

        // limits: what rules, formulas, overrides and users allow this decision
        const now = this.clock.now();
        this.beforeSnapshot = false;
        // A pushed reading's decision only cuts and starts no pause; a command's is decided in
        // full (a request that joined meanwhile may have upgraded the decision).
        const betweenCycles = this.inFlightKind === 'reading' ? { mayRaise: false } : undefined;
        const snapshot: Snapshot = {
            now,
            meters: this.samples<MeterReading>(config.meters),
            evses: this.samples<EvseReading>(config.evses),
            ...this.limitsStage?.limits(now),
            ...(betweenCycles ? { betweenCycles } : {}),
        };
        const switches = this.phaseSwitches(config);
        if (switches) snapshot.phaseSwitches = switches;

        // decide
        const previous = this.last?.result.setpoints;
        const result = allocate(snapshot, config, this.memory);
        this.memory = result.memory;

        // act
        await this.actAll(result.setpoints, previous);

        // publish
        const report: CycleReport = {
            at: now,
            kind: this.inFlightKind,
            cycleTimeMs: this.clock.now() - started,
            result,
            snapshot,
        };
        this.last = report;
        if (this.failure) {
            // Before the cycle event, so that status shown from it is not overwritten.
            const { since, failures } = this.failure;
            this.failure = null;
            this.events.emit('cycleRecovered', { since, failures });
        }
        this.events.emit('cycle', report);
        return report;
    }

    /**
     * A failing decision: reported every time (the subscribers log once per episode); once the
     * failure has lasted as long as a reading may (the meters' stale_after), every wallbox gets
     * its fail-safe current, as the allocator would give it for stale data.
     */
    private async cycleFailed(err: unknown): Promise<void> {
        const error = err instanceof Error ? err : new Error(String(err));
        const now = this.clock.now();
        const failure: CycleFailure = this.failure ?? {
            error,
            since: now,
            failures: 0,
            failSafe: false,
        };
        failure.error = error;
        failure.failures++;
        this.failure = failure;
        if (now - failure.since >= this.failSafeAfterMs() && this.config.params.lbEnabled) {
            failure.failSafe = true;
            try {
                await this.actAll(this.failSafeSetpoints(), this.last?.result.setpoints);
            } catch (actErr) {
                failure.error = new Error(`${error.message}; fail-safe writes: ${String(actErr)}`);
            }
        }
        this.events.emit('cycleFailed', { ...failure });
    }

    /** How long cycles may fail before the wallboxes go to their fail-safe current (ms). */
    private failSafeAfterMs(): number {
        const { meters, evses } = this.config;
        const of = meters.length ? meters : evses;
        let ms = Infinity;
        for (const d of of) if (d.enabled) ms = Math.min(ms, d.staleAfterMs);
        return ms === Infinity ? DEFAULT_STALE_MS : ms;
    }

    private failSafeSetpoints(): Map<string, EvseSetpoint> {
        const out = new Map<string, EvseSetpoint>();
        for (const e of this.config.evses) {
            const current = e.enabled ? e.failSafeCurrent : 0;
            out.set(e.id, {
                current,
                chargingEnabled: current > 0,
                released: false,
                state: 'failsafe',
                phases: this.last?.result.setpoints.get(e.id)?.phases ?? 0,
                write: true,
            });
        }
        return out;
    }

    /** The newest phase switch of each wallbox that switches phases, if any has run. */
    private phaseSwitches(config: SiteConfig): Map<string, PhaseSwitchReport> | undefined {
        let out: Map<string, PhaseSwitchReport> | undefined;
        for (const e of config.evses) {
            if (!e.phaseSwitch) continue;
            const report = this.states.get(e.id)?.phaseSwitch;
            if (report) (out ??= new Map()).set(e.id, report);
        }
        return out;
    }

    /**
     * Switches a wallbox's phases (the allocator's `switch` stage): only once the stop that
     * preceded it is confirmed and no write is on its way, so the contactor never moves under a
     * command that lets the car draw. A wallbox without a driver (HTTP input) is switched by its
     * flow from the control object, which carries the phases: done as it goes out. The answer
     * reaches the allocator in the next decision's snapshot.
     */
    private switchPhases(id: string, phases: 1 | 3, now: number): void {
        const state = this.deviceState(id);
        if (state.phaseSwitchBusy) return;
        const driver = this.drivers.get(id);
        if (!driver) {
            state.phaseSwitch = { phases, at: now };
            return;
        }
        if (driver.kind !== 'evse') return;
        if (!driver.setPhases) {
            state.phaseSwitch = { phases, at: now, error: 'the wallbox cannot switch phases' };
            return;
        }
        const link = this.links.get(id);
        if (!state.lastCommand || effectiveCurrent(state.lastCommand) !== 0) return;
        if (link && link.write !== 0) return;
        state.phaseSwitchBusy = true;
        let request: Promise<void>;
        try {
            request = driver.setPhases(phases);
        } catch (err) {
            request = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        this.withTimeout(request, `switch phases ${id}`).then(
            () => {
                state.phaseSwitchBusy = false;
                state.phaseSwitch = { phases, at: this.clock.now() };
            },
            (err: unknown) => {
                state.phaseSwitchBusy = false;
                const error = err instanceof Error ? err.message : String(err);
                state.phaseSwitch = { phases, at: this.clock.now(), error };
            },
        );
    }

    /** This decision's samples of the configured devices that have one (the snapshot keeps them). */
    private samples<R>(devices: readonly { id: string }[]): Map<string, DeviceSample<R>> {
        const out = new Map<string, DeviceSample<R>>();
        for (let i = 0; i < devices.length; i++) {
            const id = devices[i]!.id;
            const s = this.states.get(id);
            if (s) out.set(id, s.sample as DeviceSample<R>);
        }
        return out;
    }

    // ---- sense ----

    /**
     * Asks every polled device that has no read outstanding, in parallel (each bus serialises its
     * own requests), and waits for the answers of those that have been answering, at most
     * gatherMs. A device still outstanding keeps its last reading (stale in its time) and its
     * request completes or times out in the background.
     */
    private senseAll(): Promise<void> {
        this.openGather();
        const now = this.clock.now();
        this.drivers.forEach((driver) => this.sense(driver, now));
        return this.closeGather();
    }

    private sense(driver: DeviceDriver, now: number): void {
        const link = this.link(driver.id);
        if (link.read !== 0) return;
        const state = this.deviceState(driver.id);
        link.state = state;
        let request: Promise<MeterReading | EvseReading>;
        try {
            request = driver.read();
        } catch (err) {
            this.markFailed(state, err);
            return;
        }
        const id = this.sent();
        link.read = id;
        link.readSentAt = now;
        if (!state.silent && this.collecting) this.await(link, id);
        if (link.readHandlers === 0) {
            link.readHandlers = id;
            void request.then(link.onReading, link.onReadFailed);
        } else {
            void request.then(
                (reading) => this.readAnswered(link, id, reading),
                (err: unknown) => this.readFailed(link, id, err),
            );
        }
    }

    private readAnswered(link: DeviceLink, id: number, reading: MeterReading | EvseReading): void {
        if (link.read !== id) return; // timed out before: a late answer is not taken
        link.read = 0;
        this.settled();
        try {
            link.state.sample = { reading, takenAt: reading.takenAt ?? this.clock.now() };
            link.state.silent = false;
            this.markOk(link.state);
        } catch (err) {
            this.markFailed(link.state, err); // a driver that resolved without a reading
        }
        this.arrived(link, id);
    }

    private readFailed(link: DeviceLink, id: number, err: unknown): void {
        if (link.read !== id) return;
        link.read = 0;
        this.settled();
        link.state.silent = false;
        this.markFailed(link.state, err);
        this.arrived(link, id);
    }

    // ---- act ----

    /** Sends the wallboxes their new commands, and keep-alives, in parallel. */
    private actAll(
        setpoints: ReadonlyMap<string, EvseSetpoint>,
        previous: ReadonlyMap<string, EvseSetpoint> | undefined,
    ): Promise<void> {
        this.openGather();
        const now = this.clock.now();
        setpoints.forEach((sp, id) => this.act(id, sp, previous?.get(id), now));
        return this.closeGather();
    }

    private act(
        id: string,
        sp: EvseSetpoint,
        previous: EvseSetpoint | undefined,
        now: number,
    ): void {
        if (
            !previous ||
            previous.current !== sp.current ||
            previous.state !== sp.state ||
            previous.chargingEnabled !== sp.chargingEnabled ||
            previous.phaseCount !== sp.phaseCount ||
            previous.switching !== sp.switching
        ) {
            this.events.emit('setpoint', { id, setpoint: sp, previous });
        }
        if (sp.write && sp.switching === 'switch' && sp.phaseCount) {
            this.switchPhases(id, sp.phaseCount, now);
        }
        const driver = this.drivers.get(id);
        if (!sp.write || !driver || driver.kind !== 'evse') return;
        const state = this.deviceState(id);
        const link = this.link(id);
        link.state = state;
        const command: EvseCommand = {
            current: sp.current,
            chargingEnabled: sp.chargingEnabled,
            released: sp.released,
        };
        link.held = null; // this decision's command replaces an increase still waiting
        if (link.write !== 0) {
            // The bus still carries the last command: this one follows as soon as it answered.
            link.next = sameCommand(link.writing!, command) ? null : command;
            return;
        }
        const changed = !state.lastCommand || !sameCommand(state.lastCommand, sp);
        // Re-write well before the wallbox's own communication fail-safe would take over.
        const keepAlive =
            driver.keepAliveMs !== undefined &&
            state.lastWriteAt !== null &&
            now - state.lastWriteAt >= driver.keepAliveMs / 3;
        if (!changed && !keepAlive) return;
        this.write(driver, link, command, now);
    }

    private write(driver: EvseDriver, link: DeviceLink, command: EvseCommand, now: number): void {
        // Reductions go out first: an increase handed out because another wallbox was lowered
        // waits until every lowering in flight is confirmed, so the two never overlap on a phase.
        // Only a change from a confirmed level orders: a wallbox whose level is unknown (at start,
        // after a failed write) is counted by the allocator from what it reads.
        const from = link.state.lastCommand ? effectiveCurrent(link.state.lastCommand) : NaN;
        const target = effectiveCurrent(command);
        if (target > from && this.reductionsInFlight > 0) {
            link.held = command;
            this.heldLinks.add(link);
            return;
        }
        link.held = null;
        let request: Promise<void>;
        try {
            request = driver.apply(command);
        } catch (err) {
            link.state.lastCommand = null;
            this.markFailed(link.state, err);
            return;
        }
        const id = this.sent();
        link.write = id;
        link.writeSentAt = now;
        link.writing = command;
        link.next = null;
        if (target < from) {
            link.reducing = true;
            this.reductionsInFlight++;
        }
        if (!link.state.silent && this.collecting) this.await(link, id);
        if (link.writeHandlers === 0) {
            link.writeHandlers = id;
            void request.then(link.onWritten, link.onWriteFailed);
        } else {
            void request.then(
                () => this.written(link, id),
                (err: unknown) => this.writeFailed(link, id, err),
            );
        }
    }

    private written(link: DeviceLink, id: number): void {
        if (link.write !== id) return;
        link.write = 0;
        this.settled();
        link.state.lastCommand = link.writing;
        link.state.lastWriteAt = this.clock.now();
        link.state.silent = false;
        this.reductionSettled(link, true);
        this.arrived(link, id);
        this.writeNext(link);
    }

    private writeFailed(link: DeviceLink, id: number, err: unknown): void {
        if (link.write !== id) return;
        link.write = 0;
        this.settled();
        link.state.lastCommand = null; // unknown now: written again
        link.state.silent = false;
        this.reductionSettled(link, false);
        this.markFailed(link.state, err);
        this.arrived(link, id);
        this.writeNext(link);
    }

    /**
     * A lowering answered (or was given up). When none is left in flight, the increases that
     * waited go out — unless a lowering failed: then the wallbox may still draw its old current,
     * and the next decision decides the increases again from what that wallbox then reports.
     */
    private reductionSettled(link: DeviceLink, confirmed: boolean): void {
        if (!link.reducing) return;
        link.reducing = false;
        if (!confirmed) this.reductionFailed = true;
        if (--this.reductionsInFlight > 0) return;
        const release = !this.reductionFailed && !this.stopped;
        this.reductionFailed = false;
        const waiting = [...this.heldLinks];
        this.heldLinks.clear();
        const now = this.clock.now();
        for (const held of waiting) {
            const command = held.held;
            held.held = null;
            const driver = this.drivers.get(held.id);
            if (
                !release ||
                !command ||
                driver?.kind !== 'evse' ||
                this.links.get(held.id) !== held
            ) {
                continue;
            }
            if (held.write !== 0) held.next = command;
            else this.write(driver, held, command, now);
        }
    }

    /** Sends the command a newer decision left while the last write was on its way. */
    private writeNext(link: DeviceLink): void {
        const next = link.next;
        link.next = null;
        const driver = this.drivers.get(link.id);
        if (!next || driver?.kind !== 'evse' || this.stopped) return;
        if (link.state.lastCommand && sameCommand(link.state.lastCommand, next)) return;
        this.write(driver, link, next, this.clock.now());
    }

    // ---- requests, deadlines and waiting ----

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
            read: 0,
            readSentAt: 0,
            write: 0,
            writeSentAt: 0,
            writing: null,
            next: null,
            held: null,
            reducing: false,
            readHandlers: 0,
            writeHandlers: 0,
            awaited: 0,
            onReading: (reading) => {
                const served = link.readHandlers;
                link.readHandlers = 0;
                this.readAnswered(link, served, reading);
            },
            onReadFailed: (err) => {
                const served = link.readHandlers;
                link.readHandlers = 0;
                this.readFailed(link, served, err);
            },
            onWritten: () => {
                const served = link.writeHandlers;
                link.writeHandlers = 0;
                this.written(link, served);
            },
            onWriteFailed: (err) => {
                const served = link.writeHandlers;
                link.writeHandlers = 0;
                this.writeFailed(link, served, err);
            },
        };
        return link;
    }

    /** Numbers a request sent now and makes sure its deadline is watched. */
    private sent(): number {
        this.outstanding++;
        if (this.sweepTimer === null) {
            this.sweepTimer = this.clock.setTimeout(this.sweep, this.ioTimeoutMs);
        }
        return ++this.requestSeq;
    }

    /** A request answered or given up. */
    private settled(): void {
        if (--this.outstanding > 0 || this.sweepTimer === null) return;
        this.clock.clearTimeout(this.sweepTimer);
        this.sweepTimer = null;
    }

    /** Every request past its deadline fails as a lone timeout would; the rest keep waiting. */
    private readonly sweep = (): void => {
        this.sweepTimer = null;
        const now = this.clock.now();
        this.links.forEach((link) => {
            if (link.read !== 0 && now - link.readSentAt >= this.ioTimeoutMs) {
                const id = link.read;
                link.read = 0;
                this.settled();
                link.state.silent = true;
                this.markFailed(link.state, this.noAnswer(`read ${link.id}`));
                this.arrived(link, id);
            }
            if (link.write !== 0 && now - link.writeSentAt >= this.ioTimeoutMs) {
                const id = link.write;
                link.write = 0;
                this.settled();
                link.state.lastCommand = null;
                link.state.silent = true;
                this.reductionSettled(link, false);
                this.markFailed(link.state, this.noAnswer(`write ${link.id}`));
                this.arrived(link, id);
                this.writeNext(link);
            }
        });
        // One timer, for the earliest deadline still ahead (writes sent just now included).
        let earliest = Infinity;
        this.links.forEach((link) => {
            if (link.read !== 0) earliest = Math.min(earliest, link.readSentAt);
            if (link.write !== 0) earliest = Math.min(earliest, link.writeSentAt);
        });
        if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
        this.sweepTimer =
            earliest < Infinity
                ? this.clock.setTimeout(this.sweep, Math.max(0, earliest + this.ioTimeoutMs - now))
                : null;
    };

    private openGather(): void {
        this.gatherLinks.length = 0;
        this.awaiting = 0;
        this.collecting = true;
    }

    private await(link: DeviceLink, id: number): void {
        link.awaited = id;
        this.gatherLinks.push(link);
        this.awaiting++;
    }

    /** Resolves once every awaited device has answered, or after gatherMs. */
    private closeGather(): Promise<void> {
        this.collecting = false;
        if (this.awaiting === 0) return Promise.resolve();
        return new Promise<void>((resolve) => {
            this.endGather = resolve;
            this.gatherTimer = this.clock.setTimeout(this.gatherDeadline, this.gatherMs);
        });
    }

    /** An answer (or failure) of a device: the decision goes on when none is awaited. */
    private arrived(link: DeviceLink, id: number): void {
        if (link.awaited !== id) return;
        link.awaited = 0;
        if (--this.awaiting > 0) return;
        if (this.gatherTimer !== null) this.clock.clearTimeout(this.gatherTimer);
        this.finishGather();
    }

    /** The decision goes on with the data at hand; requests past their deadline fail first. */
    private readonly gatherDeadline = (): void => {
        this.gatherTimer = null;
        if (this.sweepTimer !== null) {
            this.clock.clearTimeout(this.sweepTimer);
            this.sweep();
        }
        for (let i = 0; i < this.gatherLinks.length; i++) this.gatherLinks[i]!.awaited = 0;
        this.awaiting = 0;
        this.finishGather();
    };

    private finishGather(): void {
        this.gatherTimer = null;
        const end = this.endGather;
        this.endGather = null;
        this.gatherLinks.length = 0;
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
        await this.inFlight?.catch(() => undefined);
        await this.queued?.promise.catch(() => undefined);
        if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
        this.sweepTimer = null;
        this.heldLinks.clear();
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

/** The current a command lets the car draw (mA); released limits: as much as it wants. */
function effectiveCurrent(c: EvseCommand): number {
    if (c.released) return Infinity;
    return c.chargingEnabled ? c.current : 0;
}

function sameCommand(a: EvseCommand, b: EvseCommand): boolean {
    return (
        a.current === b.current &&
        a.chargingEnabled === b.chargingEnabled &&
        a.released === b.released
    );
}
