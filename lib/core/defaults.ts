import type { AllocatorMemory, EvseMemory, SiteParams } from './types';
import { ZERO3 } from './phases';

/** Site parameters a new manager starts with (vendor defaults where the vendor has one). */
export const DEFAULT_PARAMS: SiteParams = {
    maxTotalCurrent: 32000,
    reserveCurrent: 2000,
    maxTotalEvseCurrent: 0,
    maxTotalCurPrc: 100,
    maxImbalance: 0,
    imbalanceAdd: false,
    minPauseTimeMs: 300_000,
    lbEnabled: true,
    disablePolicy: 0,
    increaseHoldMs: 10_000,
    maxIncreasePerCycle: 2000,
    overdrawPenaltyMs: 300_000,
    underdrawAfterMs: 60_000,
    underdrawMargin: 2000,
    voltage: 230,
    // Peers: evcc 1 min up / 3 min down, openWB 7 min, EVerest 600 s; the vendor's delay is
    // configurable with no published default.
    phaseUpDelayMs: 300_000,
    phaseDownDelayMs: 60_000,
    phaseSwitchIntervalMs: 600_000,
    phaseSwitchMaxPerSession: 10,
    phaseUpThreshold: 1000,
    phaseStopWaitMs: 20_000,
    phaseSettleMs: 30_000,
};

/** IEC 61851: the lowest current a wallbox can signal. */
export const MIN_SIGNAL_CURRENT = 6000;

/** A phase counts as used by the car once it carries this much (mA). */
export const PHASE_LEARN_THRESHOLD = 1500;

/** A car that draws less than this on every phase (mA) has stopped: a phase switch may go on. */
export const PHASE_SWITCH_IDLE = 1000;
/** A switch the driver has not confirmed within this long (ms) counts as failed. */
export const PHASE_SWITCH_TIMEOUT_MS = 30_000;

/** Battery save: the car must first draw at least the threshold this long (ms)… */
export const BATTERY_SAVE_ARM_MS = 60_000;
/** …and then less than it this long (ms), while given at least the threshold, to count as full. */
export const BATTERY_SAVE_BELOW_MS = 30_000;

export function emptyMemory(): AllocatorMemory {
    return {
        evses: new Map(),
        lastReductionAt: -Infinity,
        penalty: 0,
        penaltyUntil: -Infinity,
        overdraftMax: 0,
        lastLoad: new Map(),
        loadReadings: new Map(),
    };
}

export const NEW_EVSE_MEMORY: EvseMemory = {
    setpoint: 0,
    pausedSince: null,
    startedAt: null,
    pluggedAt: null,
    learnedPhases: 0,
    underdrawSince: null,
    lastDraw: ZERO3,
    lastDrawAt: null,
    saveAboveSince: null,
    saveArmed: false,
    saveBelowSince: null,
    full: false,
    phaseCount: 0,
    switching: null,
    wishPhases: 0,
    wishSince: null,
    lastSwitchAt: null,
    switches: 0,
    switchRefused: false,
};
