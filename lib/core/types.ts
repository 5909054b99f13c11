// The site model shared by the allocator, the cycle engine and the device drivers.
// Units inside the core: mA, W, Wh, V and ms (see DESIGN §4). Phases are indexed 0..2 = L1..L3.

/** One value per phase, L1..L3. */
export type Phases3 = readonly [number, number, number];

/** Meter roles as the vendor numbers them (api-spec §5.5). */
export const MeterRole = {
    display: 0,
    consumption: 1,
    production: 2,
    gridDemand: 3,
    evConsumption: 4,
    storageHome: 5,
    storageAll: 6,
} as const;
export type MeterRole = (typeof MeterRole)[keyof typeof MeterRole];

/** disable_policy: what a wallbox gets when the manager gives up control of it. */
export type DisablePolicy = -1 | 0 | 1;

/** Phase rotation of a wallbox against the building: wallbox L1 sits on building L1, L2 or L3. */
export type PhaseRotation = 0 | 120 | 240;

export interface SiteParams {
    /** Current the grid connection may supply per phase (mA), all consumers included. */
    maxTotalCurrent: number;
    /** Kept free below maxTotalCurrent (mA). */
    reserveCurrent: number;
    /** Limit of the sum of all wallboxes per phase (mA); 0 = no separate limit. */
    maxTotalEvseCurrent: number;
    /** Temporary share of maxTotalCurrent in percent (1..100). */
    maxTotalCurPrc: number;
    /** Largest allowed difference between the most and least loaded phase (mA); 0 = off. */
    maxImbalance: number;
    /** true: the imbalance includes every load; false: wallboxes only. */
    imbalanceAdd: boolean;
    /** A paused wallbox stays paused at least this long (ms). */
    minPauseTimeMs: number;
    /** false = observe mode: read everything, command nothing. */
    lbEnabled: boolean;
    disablePolicy: DisablePolicy;
    /** After any reduction, no wallbox is raised for this long: cars take seconds to follow (ms). */
    increaseHoldMs: number;
    /** Largest raise of one wallbox in one cycle (mA); starting from 0 may jump to the minimum. */
    maxIncreasePerCycle: number;
    /** How long the available current stays cut by a detected overdraw (ms). */
    overdrawPenaltyMs: number;
    /** A car drawing clearly less than it is given for this long is counted at its draw (ms). */
    underdrawAfterMs: number;
    /** Margin above an under-drawing car's draw that it keeps (mA). */
    underdrawMargin: number;
    /** Nominal phase voltage (V), for converting power to current. */
    voltage: number;
    /** Phase switching (wallboxes with `phaseSwitch`): how long one → three phases must stay
     *  possible before the switch (ms)… */
    phaseUpDelayMs: number;
    /** …and how long three → one phase must stay better (ms). */
    phaseDownDelayMs: number;
    /** Shortest time from one switch of a wallbox to its next automatic one (ms). */
    phaseSwitchIntervalMs: number;
    /** Most automatic switches per charging session. */
    phaseSwitchMaxPerSession: number;
    /** Up to three phases only with this much more than the minimum per phase (mA). */
    phaseUpThreshold: number;
    /** Longest wait for the car to stop drawing before a switch; still drawing then: none (ms). */
    phaseStopWaitMs: number;
    /** The car stays stopped this long after the switch, before charging resumes (ms). */
    phaseSettleMs: number;
}

/**
 * A wallbox that can switch between one and three phases (its contactor: wallbox L1 alone, or
 * its phases in use). `fixed` holds it at one choice; absent, the allocator chooses.
 */
export interface PhaseSwitchConfig {
    fixed?: 1 | 3;
}

export interface EvseConfig {
    /** `E<n>` */
    id: string;
    enabled: boolean;
    /** Parent group id (`E<n>` of an evse_group) or '' for the main group. */
    group: string;
    /** Higher first. */
    prio: number;
    /** ≥ 6000 mA (IEC 61851). */
    minCurrent: number;
    maxCurrent: number;
    phaseRotation: PhaseRotation;
    /** Wallbox-side phases the car uses (bit0 L1, bit1 L2, bit2 L3); 0 = learn from the meter. */
    usedPhases: number;
    /** Current while the site's measurements are stale: 0 = pause, else within [min, max]. */
    failSafeCurrent: number;
    /** A reading older than this counts as missing (ms). */
    staleAfterMs: number;
    /** dev_id of a role-4 meter that measures this wallbox, if any. */
    attach?: string;
    /**
     * Battery save (mA; 0 or absent = off): a car that drew at least this much and then keeps
     * drawing less while it is given at least this much counts as full until it is unplugged.
     */
    batterySaveThreshold?: number;
    /** Present when the wallbox switches phases (vendor: `switch_phases`). */
    phaseSwitch?: PhaseSwitchConfig;
}

export interface GroupConfig {
    /** `E<n>`: groups share the EVSE id space, as with the vendor. */
    id: string;
    group: string;
    /** Limit per phase of the group's feeder (mA). */
    maxCurrent: number;
    /** dev_id of a meter on the group's feeder; it then limits EVSEs and other loads together. */
    meter?: string;
}

export interface MeterConfig {
    /** `M<n>` */
    id: string;
    enabled: boolean;
    role: MeterRole;
    phaseRotation: PhaseRotation;
    staleAfterMs: number;
}

export interface SiteConfig {
    params: SiteParams;
    evses: readonly EvseConfig[];
    groups: readonly GroupConfig[];
    meters: readonly MeterConfig[];
}

// ---- readings ----

export interface MeterReading {
    /** Signed phase currents (mA): positive = import (consumption; production for role 2). */
    currents?: Phases3;
    /** Signed active power (W). */
    powerW: number;
    importWh?: number;
    exportWh?: number;
    /** Phase voltages (V). */
    voltages?: Phases3;
    /** State of charge (%) of a storage meter (roles 5/6), where the meter reports one. */
    soc?: number;
    /** Time the value was measured, when the device says so (pushed values); else the read time. */
    takenAt?: number;
}

/** IEC 61851 states as the vendor numbers them: 1 A, 2 B, 3 C, 4 D, 5 error, 6 offline. */
export type EvseState = 1 | 2 | 3 | 4 | 5 | 6;

export interface EvseReading {
    state: EvseState;
    /** Currents the car draws on wallbox phases L1..L3 (mA), when the wallbox has a meter. */
    currents?: Phases3;
    powerW?: number;
    totalEnergyWh?: number;
    /** RFID or PIN presented at the wallbox, if any. */
    rfid?: string;
    /** How many cards the wallbox's reader has seen (tells a new presentation of the same card). */
    rfidCount?: number;
    /** Wallboxes that switch phases: the contactor's position as the wallbox reports it. */
    phases?: 1 | 3;
    takenAt?: number;
}

/** A wallbox's own transactions (OCPP): the running one, and the one that ended last. */
export interface WallboxTransactions {
    running?: { id: string; idTag?: string; meterStartWh?: number; startedAt: number };
    ended?: {
        id: string;
        stoppedAt: number;
        meterStopWh?: number;
        energyWh?: number;
        reason?: string;
    };
}

/** What the engine knows about one device at snapshot time. */
export interface DeviceSample<R> {
    /** Newest good reading, if any. */
    reading?: R;
    /** When that reading was taken (ms). */
    takenAt?: number;
    /** Message of the last failed read, while the device is failing. */
    error?: string;
}

export interface Snapshot {
    now: number;
    meters: ReadonlyMap<string, DeviceSample<MeterReading>>;
    evses: ReadonlyMap<string, DeviceSample<EvseReading>>;
    /** Extra per-wallbox caps for this cycle from rules, overrides and budgets (mA; 0 = must not charge). */
    limits?: ReadonlyMap<string, number>;
    /** maxTotalCurrent for this cycle when it comes from a formula. */
    maxTotalCurrent?: number;
    /**
     * A decision between scheduled cycles on a pushed overload. The wallboxes' readings in it are
     * as old as the last cycle, so the household is known less well than in a cycle: a car it cuts
     * to 0 starts no pause, and it raises nobody unless `mayRaise`. The next cycle decides in full.
     */
    betweenCycles?: { mayRaise: boolean };
    /**
     * Wallboxes that switch phases: their cap (mA per phase) on one and on three phases. Rules
     * that turn PV power into current give more per phase on one. Absent: `limits` for both.
     */
    phaseLimits?: ReadonlyMap<string, PhaseLimits>;
    /** A phase count chosen for the session (override, card): the wallbox is switched to it. */
    phaseChoice?: ReadonlyMap<string, 1 | 3>;
    /** The newest phase switch each wallbox's driver carried out, or failed (engine). */
    phaseSwitches?: ReadonlyMap<string, PhaseSwitchReport>;
}

export interface PhaseLimits {
    one: number;
    three: number;
}

/** A phase switch as the driver reported it: done (`phases`) or failed (`error`), and when. */
export interface PhaseSwitchReport {
    phases: 1 | 3;
    at: number;
    error?: string;
}

/** Stages of a phase switch (IEC 61851 practice): stop, switch, let the car settle, resume. */
export type PhaseSwitchStage = 'stopping' | 'switch' | 'settling';

/** A switch in progress. */
export interface PhaseSwitching {
    to: 1 | 3;
    stage: PhaseSwitchStage;
    /** Start of the stage (ms). */
    since: number;
    /** Chosen by hand (configuration, override, card), not by the allocator. */
    manual: boolean;
}

// ---- allocator memory and results ----

export interface EvseMemory {
    /** Last commanded current (mA); 0 = not charging. */
    setpoint: number;
    /** Start of a pause for lack of power, or null. */
    pausedSince: number | null;
    /** Start of the current charging run (for rotation), or null. */
    startedAt: number | null;
    /** When the present car arrived (first come, first served), or null. */
    pluggedAt: number | null;
    /** Wallbox-side phases seen in use since plug-in; 0 = not known yet. */
    learnedPhases: number;
    /** Since when the car draws clearly less than it is given, or null. */
    underdrawSince: number | null;
    /** Newest draw per wallbox phase (mA) and when it was seen. */
    lastDraw: Phases3;
    lastDrawAt: number | null;
    /** Battery save: since when the car has drawn at least the threshold, or null. */
    saveAboveSince: number | null;
    /** It has drawn at least the threshold long enough for a drop to mean a full battery. */
    saveArmed: boolean;
    /** Since when it has drawn less than the threshold while given at least that, or null. */
    saveBelowSince: number | null;
    /** Battery save stopped it: the car counts as full and gets nothing until it is unplugged. */
    full: boolean;
    /** Wallboxes that switch phases: the contactor's position as known; 0 = not known. */
    phaseCount: 0 | 1 | 3;
    switching: PhaseSwitching | null;
    /** The phase count the allocator would rather have, and since when (hold times). */
    wishPhases: 0 | 1 | 3;
    wishSince: number | null;
    /** End of the last switch (ms), for the interval between switches. */
    lastSwitchAt: number | null;
    /** Automatic switches in this session. */
    switches: number;
    /** A switch failed in this session (the wallbox refused): no more until the car leaves. */
    switchRefused: boolean;
}

export interface AllocatorMemory {
    evses: ReadonlyMap<string, EvseMemory>;
    /** Time of the last reduction of any wallbox. */
    lastReductionAt: number;
    /** Active overdraw penalty (mA) and when it ends. */
    penalty: number;
    penaltyUntil: number;
    /** Largest overdraw seen (overdraft_cur). */
    overdraftMax: number;
    /** Last non-EVSE load computed from fresh data, per node (site = ''), building phases. */
    lastLoad: ReadonlyMap<string, Phases3>;
    /** Which meter readings (their times) that load was computed from, per node. */
    loadReadings: ReadonlyMap<string, string>;
}

export type SetpointState =
    | 'charging'
    | 'paused'
    | 'idle'
    | 'failsafe'
    | 'disabled'
    | 'released'
    | 'observe'
    | 'unreachable'
    /** Stopped for a phase switch (not a pause: no pause time follows). */
    | 'switching';

export interface EvseCommand {
    /** mA the car may draw per phase; 0 = no charging. */
    current: number;
    chargingEnabled: boolean;
    /** Control given up with disable_policy −1: the wallbox may remove its limit. */
    released: boolean;
}

export interface EvseSetpoint extends EvseCommand {
    state: SetpointState;
    /** Building phases this wallbox is counted on (bit0 L1 …): during a phase switch, those of
     *  both phase counts until the switch is confirmed. */
    phases: number;
    /** Whether the manager sends this command (false in observe mode and for unreachable wallboxes). */
    write: boolean;
    /** Wallboxes that switch phases: the phase count decided — where the contactor is to be
     *  now (during a switch: the old one until the car has stopped, then the new one). */
    phaseCount?: 1 | 3;
    /** The stage of a phase switch in progress; at `switch` the car has stopped drawing and the
     *  engine switches the contactor once the stop is confirmed. */
    switching?: PhaseSwitchStage;
}

export interface SiteSummary {
    /** Budget per phase: share of max_total_current − reserve − penalty (mA). */
    budget: Phases3;
    /** Non-EVSE load per phase used in this decision (mA). */
    nonEvseLoad: Phases3;
    /** Sum of EVSE setpoints (and fixed EVSE loads) per phase (mA). */
    evseLoad: Phases3;
    /** Measured overdraw per phase this cycle (mA). */
    overdraw: Phases3;
    penalty: number;
    overdraftMax: number;
    /** Meters whose data was stale or missing: their EVSEs run at fail-safe currents. */
    staleMeters: string[];
    failSafe: boolean;
}

export interface AllocationResult {
    setpoints: ReadonlyMap<string, EvseSetpoint>;
    memory: AllocatorMemory;
    site: SiteSummary;
}

// ---- drivers ----

export interface DriverBase {
    readonly id: string;
    /** Releases connections and timers; never rejects. */
    close(): Promise<void>;
}

export interface MeterDriver extends DriverBase {
    readonly kind: 'meter';
    /** Rejects with an Error that names the device when it cannot read. */
    read(): Promise<MeterReading>;
}

export interface EvseDriver extends DriverBase {
    readonly kind: 'evse';
    read(): Promise<EvseReading>;
    /** Sends a command; rejects with an Error that names the device. */
    apply(command: EvseCommand): Promise<void>;
    /** The wallbox falls back to its own fail-safe when not written for this long (ms); the
     *  engine re-writes the command well before that. Undefined: written on change only. */
    readonly keepAliveMs?: number;
    /**
     * Wallboxes that hold a communication fail-safe of their own (one that still acts when the
     * manager is gone) take it from the configuration here. The driver programs it when it
     * starts, after a reconnect and when it changes — never periodically (such settings live in
     * the device's flash). null leaves the device's own setting alone (observe mode).
     */
    setFailSafe?(failSafe: DeviceFailSafe | null): void;
    /**
     * Wallboxes that run charging sessions of their own (OCPP transactions) start and stop them
     * when told: a card entered for them, override C/c, a used-up budget. Resolve to whether the
     * wallbox accepted.
     */
    startSession?(token: string): Promise<boolean>;
    stopSession?(): Promise<boolean>;
    /**
     * Wallboxes that run sessions of their own: the transaction running now and the one that
     * ended last, as the wallbox reported them. Session records follow them.
     */
    transactions?(): WallboxTransactions;
    /**
     * Wallboxes that switch between one and three phases: switches (the engine calls it only
     * while the car is stopped and the stop is confirmed). Rejects when the wallbox refuses.
     */
    setPhases?(phases: 1 | 3): Promise<void>;
}

/** A wallbox's own communication fail-safe. */
export interface DeviceFailSafe {
    /** mA the wallbox falls back to; 0 = charging stops. */
    current: number;
    /** After this long without communication from the manager (ms). */
    timeoutMs: number;
}

export type DeviceDriver = MeterDriver | EvseDriver;
