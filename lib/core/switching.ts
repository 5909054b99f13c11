// Switching wallboxes between one and three phases, as part of the allocator's decision. Pure:
// the allocator calls it with this cycle's view of each wallbox and keeps what it returns in its
// memory; the engine carries out the one step that touches the device (the contactor).
//
// A switch runs as IEC 61851 practice has it: stop charging (current 0), wait until the car has
// stopped drawing (bounded: a car still drawing then keeps its phases), switch, let the car
// settle, resume. The car gets 0 throughout, and until the driver confirms the switch the
// wallbox is counted on the phases of both phase counts.
import { max3, rotateMask } from './phases';
import { PHASE_SWITCH_IDLE, PHASE_SWITCH_TIMEOUT_MS } from './defaults';
import type { FillEvses, FillNode } from './fill';
import type { EvseView } from './allocate';
import type {
    PhaseSwitching,
    PhaseSwitchReport,
    PhaseSwitchStage,
    SiteParams,
    Snapshot,
} from './types';

/** The phase-switching part of a wallbox's memory, as this cycle leaves it. */
export interface PhaseState {
    phaseCount: 0 | 1 | 3;
    switching: PhaseSwitching | null;
    wishPhases: 0 | 1 | 3;
    wishSince: number | null;
    lastSwitchAt: number | null;
    switches: number;
    switchRefused: boolean;
    /** The switch was confirmed in this cycle: the phases learned before no longer hold. */
    resetLearned: boolean;
    /** The stage the setpoint shows when it is not the one held: `stopping` while a car at the
     *  `switch` stage draws again (the engine then does not switch). */
    switchingOut?: PhaseSwitchStage;
}

function stateOf(v: EvseView): PhaseState {
    const { mem } = v;
    const state: PhaseState = {
        phaseCount: v.contactor,
        switching: mem.switching,
        wishPhases: mem.wishPhases,
        wishSince: mem.wishSince,
        lastSwitchAt: mem.lastSwitchAt,
        switches: mem.switches,
        switchRefused: mem.switchRefused,
        resetLearned: false,
    };
    if (!v.plugged) {
        // A session ends with its car: its count, its refusals and its wishes with it.
        state.switches = 0;
        state.switchRefused = false;
        state.wishPhases = 0;
        state.wishSince = null;
    }
    return state;
}

/** The phase memory of a wallbox the allocator does not control this cycle; `abort` drops a
 *  switch under way (a disabled wallbox, observe mode). */
export function carriedPhaseState(v: EvseView, abort: boolean): PhaseState {
    const state = stateOf(v);
    if (abort && state.switching) {
        // Where the contactor stands is not known if the switch may have been carried out.
        if (state.switching.stage === 'switch') state.phaseCount = 0;
        state.switching = null;
    }
    return state;
}

/** Whether the car still draws: measured, or (without a measurement) as its state says. */
function drawing(v: EvseView): boolean {
    return v.measured ? max3(v.measured) >= PHASE_SWITCH_IDLE : v.charging;
}

/** Moves a switch under way on by one cycle. */
export function advanceSwitch(
    v: EvseView,
    report: PhaseSwitchReport | undefined,
    now: number,
    params: SiteParams,
): PhaseState {
    const state = stateOf(v);
    const sw = state.switching;
    if (!sw) return state;
    const failed = () => {
        state.switching = null;
        state.lastSwitchAt = now;
        state.switchRefused = true;
        // The contactor may have moved or not: counted on all its phases until it is known.
        state.phaseCount = 0;
    };
    switch (sw.stage) {
        case 'stopping': {
            const stopped = !drawing(v);
            const waited = now - sw.since >= params.phaseStopWaitMs;
            if (stopped || (waited && !v.measured)) {
                // Without a measurement, the bounded wait is all there is: a car must follow a
                // stop within seconds (IEC 61851), and the wallbox has opened its own contactor.
                state.switching = { ...sw, stage: 'switch', since: now };
            } else if (waited) {
                // Still drawing: never switch under load. The phases stay as they are.
                state.switching = null;
                state.lastSwitchAt = now;
                state.wishPhases = 0;
                state.wishSince = null;
            }
            break;
        }
        case 'switch': {
            if (report && report.at >= sw.since) {
                if (report.error !== undefined || report.phases !== sw.to) failed();
                else {
                    state.phaseCount = sw.to;
                    state.switching = { ...sw, stage: 'settling', since: now };
                    state.lastSwitchAt = now;
                    if (!sw.manual) state.switches++;
                    state.resetLearned = true;
                }
            } else if (now - sw.since >= PHASE_SWITCH_TIMEOUT_MS) failed();
            else if (v.measured && drawing(v)) state.switchingOut = 'stopping';
            break;
        }
        case 'settling':
            if (now - sw.since >= params.phaseSettleMs) state.switching = null;
            break;
    }
    return state;
}

/**
 * Decides, after a first fill, which wallboxes start a switch this cycle, and keeps the wishes
 * and their hold times of the others. A switch starts for a manual choice (configuration,
 * session) at once, for the allocator's own choice once it has held for the delay, the interval
 * since the last switch has passed and the session's count allows. Returns whether any started.
 *
 * One phase is better when three cannot charge (a cap below the minimum, e.g. a PV rule, or no
 * room on one of the three phases) and one can (the cap on one phase, which a PV rule makes
 * three times as large, and room on the building phase the wallbox's L1 sits on, through its
 * rotation). Three phases are better when their cap and their room exceed the minimum by the
 * threshold. Room is what the fill left on every node above the wallbox, plus its own share.
 */
export function phaseWishes(
    views: readonly EvseView[],
    states: (PhaseState | undefined)[],
    s: Float64Array,
    evses: FillEvses,
    nodes: readonly FillNode[],
    chains: readonly (readonly number[])[],
    snapshot: Snapshot,
    params: SiteParams,
    failSafe: Uint8Array,
): boolean {
    const now = snapshot.now;
    // Room left per node and phase after the fill.
    let rest: Float64Array | undefined;
    const room = (): Float64Array => {
        if (rest) return rest;
        rest = new Float64Array(nodes.length * 3);
        for (let n = 0; n < nodes.length; n++) {
            for (let p = 0; p < 3; p++) rest[n * 3 + p] = nodes[n]!.cap[p]!;
        }
        for (let i = 0; i < evses.size; i++) {
            if (!(s[i]! > 0)) continue;
            const chain = chains[evses.node[i]!]!;
            for (let c = 0; c < chain.length; c++) {
                for (let p = 0; p < 3; p++) {
                    if (evses.phases[i]! & (1 << p)) rest[chain[c]! * 3 + p]! -= s[i]!;
                }
            }
        }
        return rest;
    };
    const fits = (i: number, mask: number, need: number): boolean => {
        const r = room();
        const chain = chains[evses.node[i]!]!;
        for (let c = 0; c < chain.length; c++) {
            for (let p = 0; p < 3; p++) {
                if (!(mask & (1 << p))) continue;
                const own = evses.phases[i]! & (1 << p) ? s[i]! : 0;
                if (r[chain[c]! * 3 + p]! + own < need) return false;
            }
        }
        return true;
    };

    let started = false;
    for (let i = 0; i < views.length; i++) {
        const state = states[i];
        const v = views[i]!;
        if (!state || v.kind !== 'control' || state.switching) continue;
        const { cfg } = v;
        const start = (to: 1 | 3, manual: boolean) => {
            state.switching = { to, stage: 'stopping', since: now, manual };
            state.wishPhases = 0;
            state.wishSince = null;
            started = true;
        };
        const chosen = snapshot.phaseChoice?.get(cfg.id) ?? cfg.phaseSwitch!.fixed;
        if (chosen !== undefined) {
            state.wishPhases = 0;
            state.wishSince = null;
            // A choice by hand is carried out at once, also without a car (the safest moment).
            if (chosen !== state.phaseCount && !state.switchRefused && !snapshot.betweenCycles) {
                start(chosen, true);
            }
            continue;
        }
        const now3 = state.phaseCount !== 1;
        const min = cfg.minCurrent;
        const byPhases = snapshot.phaseLimits?.get(cfg.id);
        const limit = Math.min(cfg.maxCurrent, snapshot.limits?.get(cfg.id) ?? Infinity);
        const cap1 = Math.min(limit, byPhases?.one ?? Infinity);
        const cap3 = Math.min(limit, byPhases?.three ?? Infinity);
        const full = v.mem.full;
        // A single-phase car on a three-phase contactor gains nothing from a switch.
        const singlePhaseCar =
            now3 && cfg.usedPhases === 0 && v.learned !== 0 && (v.learned & (v.learned - 1)) === 0;
        let wish: 1 | 3 = now3 ? 3 : 1;
        if (v.plugged && !full && !failSafe[i] && !singlePhaseCar) {
            const mask1 = rotateMask(0b001, cfg.phaseRotation);
            const mask3 = rotateMask(cfg.usedPhases || 0b111, cfg.phaseRotation);
            if (now3) {
                const three = cap3 >= min && fits(i, mask3, min);
                if (!three && cap1 >= min && fits(i, mask1, min)) wish = 1;
            } else {
                const need = min + params.phaseUpThreshold;
                if (cap3 >= need && fits(i, mask3, need)) wish = 3;
            }
        }
        if (wish === (now3 ? 3 : 1)) {
            state.wishPhases = 0;
            state.wishSince = null;
            continue;
        }
        state.wishSince = state.wishPhases === wish ? state.wishSince : now;
        state.wishPhases = wish;
        const delay = wish === 3 ? params.phaseUpDelayMs : params.phaseDownDelayMs;
        if (
            !snapshot.betweenCycles &&
            now - state.wishSince! >= delay &&
            (state.lastSwitchAt === null ||
                now - state.lastSwitchAt >= params.phaseSwitchIntervalMs) &&
            state.switches < params.phaseSwitchMaxPerSession &&
            !state.switchRefused
        ) {
            start(wish, false);
        }
    }
    return started;
}
