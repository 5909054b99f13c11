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
};

/** IEC 61851: the lowest current a wallbox can signal. */
export const MIN_SIGNAL_CURRENT = 6000;

/** A phase counts as used by the car once it carries this much (mA). */
export const PHASE_LEARN_THRESHOLD = 1500;

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
};
