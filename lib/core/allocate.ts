// The decision of one control cycle: allocate(snapshot, config, memory) → setpoints and new memory.
// Pure: no I/O, no clock, no randomness. Every safety rule of DESIGN §3 is decided here.
// Loops over the wallboxes are plain index loops that make no temporary object per wallbox: at
// hundreds of wallboxes, once a second, such objects (and a for-of's iterator results, until V8
// has optimised the code) were a large share of the cycle's garbage.
import {
    BATTERY_SAVE_ARM_MS,
    BATTERY_SAVE_BELOW_MS,
    NEW_EVSE_MEMORY,
    PHASE_LEARN_THRESHOLD,
} from './defaults';
import { advanceSwitch, carriedPhaseState, phaseWishes, type PhaseState } from './switching';
import {
    admit,
    ancestry,
    fill,
    fillEvses,
    withDemand,
    type FillEvses,
    type FillNode,
} from './fill';
import { add3, max3, onPhases, rotateMask, rotatePhases, sub3, ZERO3 } from './phases';
import {
    MeterRole,
    type AllocationResult,
    type AllocatorMemory,
    type DeviceSample,
    type DisablePolicy,
    type EvseCommand,
    type EvseConfig,
    type EvseMemory,
    type EvseSetpoint,
    type MeterConfig,
    type MeterReading,
    type Phases3,
    type SiteConfig,
    type SiteParams,
    type Snapshot,
} from './types';

// ---- topology: the site and its groups as an array, parents first ----

interface Topology {
    ids: string[];
    nodes: { parent: number; maxCurrent: number; meter?: MeterConfig }[];
    chains: number[][];
    /** Node index of each wallbox (by config position). */
    evseNode: number[];
    meters: Map<string, MeterConfig>;
    gridMeters: MeterConfig[];
    /** Consumption, production and storage meters, used when there is no grid meter. */
    houseMeters: MeterConfig[];
}

const topologies = new WeakMap<SiteConfig, Topology>();

function compile(config: SiteConfig): Topology {
    const cached = topologies.get(config);
    if (cached) return cached;
    const meters = new Map(config.meters.filter((m) => m.enabled).map((m) => [m.id, m]));
    const groups = new Map(config.groups.map((g) => [g.id, g]));
    const ids = [''];
    const nodes: Topology['nodes'] = [{ parent: -1, maxCurrent: Infinity }];
    const index = new Map<string, number>([['', 0]]);
    // A group whose parent is unknown or part of a loop hangs from the site.
    const parentOf = (id: string): string => {
        const seen = new Set([id]);
        let p = groups.get(id)!.group;
        for (let q = p; q && groups.has(q); q = groups.get(q)!.group) {
            if (seen.has(q)) return '';
            seen.add(q);
        }
        if (p && !groups.has(p)) p = '';
        return p;
    };
    const visit = (id: string): number => {
        const known = index.get(id);
        if (known !== undefined) return known;
        const g = groups.get(id)!;
        const parent = visit(parentOf(id));
        const i = nodes.length;
        nodes.push({
            parent,
            maxCurrent: g.maxCurrent,
            ...(g.meter && meters.has(g.meter) ? { meter: meters.get(g.meter)! } : {}),
        });
        ids.push(id);
        index.set(id, i);
        return i;
    };
    for (const g of config.groups) visit(g.id);
    const chains = nodes.map((_, i) => ancestry(nodes, i));
    const topo: Topology = {
        ids,
        nodes,
        chains,
        evseNode: config.evses.map((e) => index.get(e.group) ?? 0),
        meters,
        gridMeters: [...meters.values()].filter((m) => m.role === MeterRole.gridDemand),
        houseMeters: [...meters.values()].filter(
            (m) =>
                m.role === MeterRole.consumption ||
                m.role === MeterRole.production ||
                m.role === MeterRole.storageHome ||
                m.role === MeterRole.storageAll,
        ),
    };
    topologies.set(config, topo);
    return topo;
}

// ---- readings ----

function freshReading<R>(
    sample: DeviceSample<R> | undefined,
    now: number,
    staleAfterMs: number,
): R | undefined {
    // A device whose last read failed is not trusted even if its last value is recent (DESIGN §3:
    // stale or failing input is pessimistic within one cycle).
    if (!sample?.reading || sample.takenAt === undefined || sample.error !== undefined)
        return undefined;
    return now - sample.takenAt <= staleAfterMs ? sample.reading : undefined;
}

/** Building-phase currents of a meter; a meter that reports only power is taken as balanced. */
function meterPhases(reading: MeterReading, meter: MeterConfig, voltage: number): Phases3 {
    if (reading.currents) return rotatePhases(reading.currents, meter.phaseRotation);
    const perPhase = Math.round((reading.powerW * 1000) / voltage / 3);
    return [perPhase, perPhase, perPhase];
}

/** The same total current spread evenly over the three phases. */
function balanced(phases: Phases3): Phases3 {
    const each = Math.round((phases[0] + phases[1] + phases[2]) / 3);
    return [each, each, each];
}

/** Contribution of a house meter to the non-EVSE load (production and discharge subtract). */
function houseContribution(role: number, phases: Phases3): Phases3 {
    switch (role) {
        case MeterRole.production:
            return [-phases[0], -phases[1], -phases[2]];
        case MeterRole.storageHome: // its discharge never offsets other loads
            return [Math.max(0, phases[0]), Math.max(0, phases[1]), Math.max(0, phases[2])];
        default:
            return phases;
    }
}

// ---- per-wallbox view of this cycle ----

export type EvseKind = 'control' | 'disabled' | 'unreachable';

export interface EvseView {
    cfg: EvseConfig;
    mem: EvseMemory;
    kind: EvseKind;
    plugged: boolean;
    charging: boolean;
    /** Wallbox-side currents measured this cycle, if any. */
    measured: Phases3 | undefined;
    learned: number;
    /** Wallboxes that switch phases: the contactor's position as known (0 = not known). */
    contactor: 0 | 1 | 3;
    /** Building phases it is counted on. */
    mask: number;
    /** Building-phase draw used to separate wallboxes from other loads on a meter. */
    draw: Phases3;
    /** Load that cannot be controlled this cycle (disabled or unreachable wallboxes). */
    fixed: Phases3;
    /** disable_policy command of a disabled wallbox. */
    command: EvseCommand | undefined;
}

function viewEvse(
    cfg: EvseConfig,
    mem: EvseMemory,
    snapshot: Snapshot,
    topo: Topology,
    config: SiteConfig,
): EvseView {
    const now = snapshot.now;
    const reading = freshReading(snapshot.evses.get(cfg.id), now, cfg.staleAfterMs);
    const attached = cfg.attach ? topo.meters.get(cfg.attach) : undefined;
    const attachedReading = attached
        ? freshReading(snapshot.meters.get(attached.id), now, attached.staleAfterMs)
        : undefined;
    const measured = attachedReading?.currents ?? reading?.currents;
    const plugged = !!reading && reading.state >= 2 && reading.state <= 4;
    const charging = !!reading && (reading.state === 3 || reading.state === 4);
    // The phases learned for a car hold while the wallbox shows it plugged. A wallbox that cannot
    // be read cannot show that its car left: the next one may use other phases.
    let learned = reading && plugged ? mem.learnedPhases : 0;
    if (cfg.usedPhases === 0 && charging && measured) {
        for (let p = 0; p < 3; p++) if (measured[p]! >= PHASE_LEARN_THRESHOLD) learned |= 1 << p;
    }
    // A wallbox that reports its contactor is taken at its word while no switch is under way.
    const contactor =
        cfg.phaseSwitch && reading?.phases && !mem.switching ? reading.phases : mem.phaseCount;
    const mask = rotateMask(
        wallboxPhases(cfg, learned, contactor, mem.switching),
        cfg.phaseRotation,
    );
    // Rotation 0: the wallbox's phases are the building's; no copy, the reading is never changed.
    const measuredDraw =
        measured && cfg.phaseRotation !== 0 ? rotatePhases(measured, cfg.phaseRotation) : measured;

    let kind: EvseKind = 'control';
    let fixed = ZERO3;
    let command: EvseCommand | undefined;
    // Without its own meter a charging car is assumed to draw what it was given (static
    // management); a car that is not charging (no car, state B, an error) draws nothing. Taking it
    // at its setpoint anyway would make the other load look that much smaller, hand the difference
    // to other cars, and overload the phase once the car starts.
    let draw = measuredDraw ?? (charging ? onPhases(mask, mem.setpoint) : ZERO3);
    if (!cfg.enabled) {
        kind = 'disabled';
        command = policyCommand(cfg, config.params.disablePolicy);
        fixed = onPhases(mask, command.current);
        // Not controlled: only a measured draw is taken out of the other load; the rest stays in
        // it and the wallbox is reserved on top (counted twice rather than not at all).
        draw = measuredDraw ?? ZERO3;
    } else if (!reading) {
        // Cannot be commanded: count it at the most it may still draw.
        kind = 'unreachable';
        const last = mem.lastDrawAt === null ? 0 : max3(mem.lastDraw);
        fixed = onPhases(mask, Math.max(mem.setpoint, last));
        draw = ZERO3; // what it draws now is unknown: it stays in the other load
    }
    return {
        cfg,
        mem,
        kind,
        plugged,
        charging,
        measured,
        learned,
        contactor,
        mask,
        draw,
        fixed,
        command,
    };
}

/**
 * Wallbox-side phases a wallbox is counted on. Until its meter shows the phases a car uses, every
 * phase of the wallbox: a three-phase car taken for a single-phase one would overload the other
 * two. A wallbox switched to one phase uses its L1 (and any phase its meter still shows); while a
 * switch is under way and not confirmed, the larger of the two phase counts.
 */
export function wallboxPhases(
    cfg: EvseConfig,
    learned: number,
    contactor: 0 | 1 | 3,
    switching: EvseMemory['switching'],
): number {
    const inFlight = switching !== null && switching.stage !== 'settling';
    if (cfg.phaseSwitch && contactor === 1 && !inFlight) return 0b001 | learned;
    // The phases learned on one phase say nothing about the car on three.
    if (inFlight) return cfg.usedPhases || 0b111;
    return cfg.usedPhases || learned || 0b111;
}

// ---- the decision ----

export function allocate(
    snapshot: Snapshot,
    config: SiteConfig,
    memory: AllocatorMemory,
): AllocationResult {
    const { params } = config;
    const now = snapshot.now;
    const topo = compile(config);
    const nodeCount = topo.nodes.length;

    const views = config.evses.map((cfg) =>
        viewEvse(cfg, memory.evses.get(cfg.id) ?? NEW_EVSE_MEMORY, snapshot, topo, config),
    );

    // Wallbox draws and fixed loads summed per node (each wallbox counts on its whole chain).
    const drawBelow: [number, number, number][] = topo.nodes.map(() => [0, 0, 0]);
    const fixedBelow: [number, number, number][] = topo.nodes.map(() => [0, 0, 0]);
    for (let i = 0; i < views.length; i++) {
        const { draw, fixed } = views[i]!;
        const chain = topo.chains[topo.evseNode[i]!]!;
        for (let c = 0; c < chain.length; c++) {
            const n = chain[c]!;
            for (let p = 0; p < 3; p++) {
                drawBelow[n]![p]! += draw[p]!;
                fixedBelow[n]![p]! += fixed[p]!;
            }
        }
    }

    // Non-EVSE load per node from its meters; stale meters keep the last good value and put the
    // wallboxes below into fail-safe.
    const staleMeters: string[] = [];
    const stale = new Uint8Array(nodeCount);
    const lastLoad = new Map(memory.lastLoad);
    const loadReadings = new Map(memory.loadReadings);
    const load: Phases3[] = topo.nodes.map(() => ZERO3);
    let measuredSite: Phases3 | undefined;
    for (let n = 0; n < nodeCount; n++) {
        const id = topo.ids[n]!;
        let meters: readonly MeterConfig[];
        let includesEvses = true;
        if (n === 0 && topo.gridMeters.length) meters = topo.gridMeters;
        else if (n === 0 && topo.houseMeters.length) {
            meters = topo.houseMeters;
            includesEvses = false;
        } else if (topo.nodes[n]!.meter) meters = [topo.nodes[n]!.meter!];
        else continue; // no meter: only the node's own limit applies

        let raw: Phases3 | undefined = ZERO3;
        let readingKey = '';
        let powerOnly = false;
        for (const m of meters) {
            const sample = snapshot.meters.get(m.id);
            const r = freshReading(sample, now, m.staleAfterMs);
            if (!r) staleMeters.push(m.id);
            else if (!r.currents) powerOnly = true;
            const ph = r && meterPhases(r, m, params.voltage);
            raw =
                raw && ph
                    ? add3(raw, includesEvses ? ph : houseContribution(m.role, ph))
                    : undefined;
            readingKey += `${sample?.takenAt}/`;
        }
        if (!raw) {
            stale[n] = 1;
            load[n] = memory.lastLoad.get(id) ?? ZERO3;
        } else if (memory.loadReadings.get(id) === readingKey) {
            // No new reading since the last cycle: the load stays what it was when the reading
            // arrived. Subtracting today's draws from an old reading would make the household
            // look smaller while cars ramp up, and let them ramp further.
            load[n] = memory.lastLoad.get(id) ?? ZERO3;
        } else {
            load[n] = includesEvses ? sub3(raw, drawBelow[n]!) : raw;
            // A meter that reports power only cannot tell the phases apart: the wallboxes' draws,
            // known per phase, come off its total and the rest is taken as balanced. Taking them
            // off its even share per phase would credit a single-phase car's phase with a
            // negative load the size of its draw, and let that car rise without bound.
            if (includesEvses && powerOnly) load[n] = balanced(load[n]!);
            lastLoad.set(id, load[n]!);
            loadReadings.set(id, readingKey);
            if (n === 0) measuredSite = includesEvses ? raw : add3(raw, drawBelow[0]!);
        }
    }

    // Budget, overdraw and its penalty. An overdraw is a measured phase current above the limit
    // itself: the reserve is there to absorb steps of the household load, so only a step larger
    // than the reserve overdraws, and the fuse then gets its cool-down.
    const maxTotal = snapshot.maxTotalCurrent ?? params.maxTotalCurrent;
    const limit = Math.floor((maxTotal * params.maxTotalCurPrc) / 100);
    const base = limit - params.reserveCurrent;
    const overdraw: Phases3 = measuredSite
        ? [
              Math.max(0, measuredSite[0] - limit),
              Math.max(0, measuredSite[1] - limit),
              Math.max(0, measuredSite[2] - limit),
          ]
        : ZERO3;
    const worst = max3(overdraw);
    let penalty = now < memory.penaltyUntil ? memory.penalty : 0;
    let penaltyUntil = penalty > 0 ? memory.penaltyUntil : -Infinity;
    if (worst > 0 && params.overdrawPenaltyMs > 0) {
        penalty = Math.max(penalty, worst);
        penaltyUntil = now + params.overdrawPenaltyMs;
    }
    const overdraftMax = Math.max(memory.overdraftMax, worst);
    const budget: Phases3 = [base - penalty, base - penalty, base - penalty];

    // Headroom of every node for controllable wallboxes.
    const fillNodes: FillNode[] = topo.nodes.map((node, n) => {
        const limit =
            n === 0 ? budget : ([node.maxCurrent, node.maxCurrent, node.maxCurrent] as const);
        const cap: [number, number, number] = [0, 0, 0];
        for (let p = 0; p < 3; p++) {
            const nonEvse = n === 0 || node.meter ? load[n]![p]! : 0;
            let headroom = limit[p]! - nonEvse - fixedBelow[n]![p]!;
            if (n === 0 && params.maxTotalEvseCurrent > 0) {
                headroom = Math.min(headroom, params.maxTotalEvseCurrent - fixedBelow[0]![p]!);
            }
            cap[p] = headroom;
        }
        return { parent: node.parent, cap };
    });
    // A wallbox is in fail-safe when a meter anywhere on its chain is stale; nodes come parents
    // first, so each node inherits its parent's staleness.
    const staleAbove = new Uint8Array(nodeCount);
    for (let n = 0; n < nodeCount; n++) {
        const parent = topo.nodes[n]!.parent;
        staleAbove[n] = stale[n] || (parent >= 0 ? staleAbove[parent]! : 0);
    }
    const failSafe = new Uint8Array(views.length);
    for (let i = 0; i < views.length; i++) failSafe[i] = staleAbove[topo.evseNode[i]!]!;

    const siteSummary = (setpoints: Map<string, EvseSetpoint>) => {
        const evseLoad: [number, number, number] = [...fixedBelow[0]!];
        setpoints.forEach((sp) => {
            if (sp.state === 'disabled' || sp.state === 'released' || sp.state === 'unreachable')
                return;
            for (let p = 0; p < 3; p++) if (sp.phases & (1 << p)) evseLoad[p]! += sp.current;
        });
        return {
            budget,
            nonEvseLoad: load[0]!,
            evseLoad: evseLoad as Phases3,
            overdraw,
            penalty,
            overdraftMax,
            staleMeters,
            failSafe: !!stale[0],
        };
    };
    const commonMemory = { penalty, penaltyUntil, overdraftMax, lastLoad, loadReadings };

    if (!params.lbEnabled) {
        // Observe mode: everything is measured and reported, nothing is commanded.
        const setpoints = new Map<string, EvseSetpoint>();
        const evses = new Map<string, EvseMemory>();
        views.forEach((v) => {
            setpoints.set(v.cfg.id, {
                current: v.mem.setpoint,
                chargingEnabled: v.mem.setpoint > 0,
                released: false,
                state: 'observe',
                phases: v.mask,
                write: false,
            });
            evses.set(
                v.cfg.id,
                nextMemory(
                    v,
                    v.mem.setpoint,
                    false,
                    now,
                    v.mem.underdrawSince,
                    batterySave(v, now),
                    carriedPhaseState(v, false),
                ),
            );
        });
        return {
            setpoints,
            memory: { ...memory, ...commonMemory, evses },
            site: siteSummary(setpoints),
        };
    }

    // Demand of each controllable wallbox for this cycle.
    const increasesAllowed =
        (snapshot.betweenCycles?.mayRaise ?? true) &&
        now - memory.lastReductionAt >= params.increaseHoldMs;
    const candidates = fillEvses(views.length);
    const wanted = new Uint8Array(views.length);
    const underdrawSince: (number | null)[] = new Array<number | null>(views.length);
    const saves: BatterySave[] = new Array<BatterySave>(views.length);
    // Phase switching: a switch under way moves on (stop, switch, settle) and keeps the car at 0.
    const phaseStates: (PhaseState | undefined)[] = new Array<PhaseState | undefined>(views.length);
    let switchable = false;
    for (let i = 0; i < views.length; i++) {
        const v = views[i]!;
        if (!v.cfg.phaseSwitch) continue;
        switchable = true;
        phaseStates[i] =
            v.kind === 'control'
                ? advanceSwitch(v, snapshot.phaseSwitches?.get(v.cfg.id), now, params)
                : carriedPhaseState(v, v.kind === 'disabled');
    }
    for (let i = 0; i < views.length; i++) {
        const v = views[i]!;
        const save = batterySave(v, now);
        saves[i] = save;
        const asked = save.full ? 0 : askedCurrent(v, snapshot);
        const since = underdrawSinceOf(v, now, params);
        wanted[i] = asked > 0 ? 1 : 0;
        underdrawSince[i] = since;
        candidates.node[i] = topo.evseNode[i]!;
        candidates.phases[i] = v.mask;
        candidates.prio[i] = v.cfg.prio;
        candidates.min[i] = v.cfg.minCurrent;
        candidates.demand[i] =
            v.kind === 'control' && !phaseStates[i]?.switching
                ? demandOf(v, asked, since, now, params, failSafe[i] === 1, increasesAllowed)
                : 0;
    }

    const order = admissionOrder(views, params.minPauseTimeMs, now);
    const decide = (evses: FillEvses): Float64Array => {
        const { admitted, room } = admit(fillNodes, evses, order, topo.chains);
        const s = fill(fillNodes, evses, admitted, room, topo.chains);
        if (params.maxImbalance > 0) {
            const other = params.imbalanceAdd ? add3(load[0]!, fixedBelow[0]!) : fixedBelow[0]!;
            limitImbalance(s, evses, order, other, params.maxImbalance);
        }
        return s;
    };
    let s = decide(candidates);
    // Phases: where one or three phases would serve a car better, for long enough, a switch
    // starts (its car goes to 0) and the others are decided again without it.
    if (switchable && params.lbEnabled) {
        const starting = phaseWishes(
            views,
            phaseStates,
            s,
            candidates,
            fillNodes,
            topo.chains,
            snapshot,
            params,
            failSafe,
        );
        if (starting) {
            const demand = new Float64Array(candidates.demand);
            for (let i = 0; i < views.length; i++) if (phaseStates[i]?.switching) demand[i] = 0;
            s = decide(withDemand(candidates, demand));
        }
    }
    // Capacity freed by a reduction is not handed on in the same cycle: the reduced car may take
    // seconds to follow. Keep this cycle's pauses and reductions, hold everyone else where they are.
    let reduced = false;
    let raised = false;
    for (let i = 0; i < views.length; i++) {
        const v = views[i]!;
        if (v.kind !== 'control') continue;
        if (s[i]! < v.mem.setpoint) reduced = true;
        if (s[i]! > v.mem.setpoint) raised = true;
    }
    if (reduced && raised) {
        const held = new Float64Array(views.length);
        for (let i = 0; i < views.length; i++) {
            held[i] = Math.min(candidates.demand[i]!, s[i]!, views[i]!.mem.setpoint);
        }
        s = decide(withDemand(candidates, held));
    }

    const setpoints = new Map<string, EvseSetpoint>();
    const evses = new Map<string, EvseMemory>();
    views.forEach((v, i) => {
        const id = v.cfg.id;
        if (v.kind === 'disabled') {
            setpoints.set(id, {
                ...v.command!,
                state: v.command!.released ? 'released' : 'disabled',
                phases: v.mask,
                write: true,
            });
            evses.set(id, nextMemory(v, 0, false, now, null, saves[i]!, phaseStates[i]));
            return;
        }
        if (v.kind === 'unreachable') {
            setpoints.set(id, {
                current: v.mem.setpoint,
                chargingEnabled: v.mem.setpoint > 0,
                released: false,
                state: 'unreachable',
                phases: v.mask,
                write: false,
            });
            evses.set(id, v.mem.learnedPhases ? { ...v.mem, learnedPhases: 0 } : v.mem);
            return;
        }
        const current = s[i]!;
        const phase = phaseStates[i];
        const state = phase?.switching
            ? 'switching'
            : current > 0
              ? failSafe[i]
                  ? 'failsafe'
                  : 'charging'
              : wanted[i] === 1
                ? failSafe[i]
                    ? 'failsafe'
                    : 'paused'
                : 'idle';
        const sp: EvseSetpoint = {
            current,
            chargingEnabled: current > 0,
            released: false,
            state,
            phases: v.mask,
            write: true,
        };
        if (phase) {
            // Counted as the switch now stands (a switch that started or ended in this cycle).
            sp.phases =
                v.mask |
                rotateMask(
                    wallboxPhases(
                        v.cfg,
                        phase.resetLearned ? 0 : v.learned,
                        phase.phaseCount,
                        phase.switching,
                    ),
                    v.cfg.phaseRotation,
                );
            const stage = phase.switching ? (phase.switchingOut ?? phase.switching.stage) : null;
            // Where the contactor is to be now: the old phases until the car has stopped.
            sp.phaseCount =
                stage && stage !== 'stopping'
                    ? phase.switching!.to
                    : phase.phaseCount === 1
                      ? 1
                      : 3;
            if (stage) sp.switching = stage;
        }
        setpoints.set(id, sp);
        evses.set(
            id,
            nextMemory(
                v,
                current,
                // A decision between cycles starts no pause (see Snapshot.betweenCycles), nor
                // does a stop for a phase switch.
                wanted[i] === 1 && !snapshot.betweenCycles && !phase?.switching,
                now,
                underdrawSince[i] ?? null,
                saves[i]!,
                phase,
            ),
        );
    });

    return {
        setpoints,
        memory: {
            ...commonMemory,
            evses,
            lastReductionAt: reduced ? now : memory.lastReductionAt,
        },
        site: siteSummary(setpoints),
    };
}

/**
 * What the car may have by its wallbox's maximum and this cycle's caps; 0 = it wants nothing
 * (unplugged, or capped below its minimum by rules). Above 0 the car wants current, and a 0
 * setpoint is then a pause.
 */
function askedCurrent(v: EvseView, snapshot: Snapshot): number {
    const { cfg } = v;
    let asked = v.plugged ? Math.min(cfg.maxCurrent, snapshot.limits?.get(cfg.id) ?? Infinity) : 0;
    // A wallbox that switches phases: the cap for the phase count it is counted on.
    const byPhases = cfg.phaseSwitch ? snapshot.phaseLimits?.get(cfg.id) : undefined;
    if (byPhases) {
        asked = Math.min(asked, v.contactor === 1 ? byPhases.one : byPhases.three);
    }
    return asked < cfg.minCurrent ? 0 : asked;
}

/**
 * Since when the car has drawn clearly less than it is given, or null. Hysteresis: it starts
 * below the setpoint minus the margin and ends once the car draws within half the margin.
 */
function underdrawSinceOf(v: EvseView, now: number, params: SiteParams): number | null {
    const { mem } = v;
    if (!v.charging || !v.measured || mem.setpoint <= 0) return null;
    const drawn = max3(v.measured);
    if (mem.underdrawSince === null) {
        return drawn < mem.setpoint - params.underdrawMargin ? now : null;
    }
    return drawn >= mem.setpoint - params.underdrawMargin / 2 ? null : mem.underdrawSince;
}

function demandOf(
    v: EvseView,
    asked: number,
    underdrawSince: number | null,
    now: number,
    params: SiteParams,
    failSafe: boolean,
    increasesAllowed: boolean,
): number {
    const { cfg, mem } = v;
    let demand = asked;
    // A car that has drawn clearly less than it is given for a while is counted at its draw plus
    // a margin; it gets its full share back once it draws close to what it has.
    if (underdrawSince !== null && now - underdrawSince >= params.underdrawAfterMs) {
        const counted = Math.ceil((max3(v.measured!) + params.underdrawMargin) / 100) * 100;
        demand = Math.min(demand, Math.max(cfg.minCurrent, counted));
    }
    // Stale site data: fall to the fail-safe current and never rise until fresh data returns.
    if (failSafe) demand = Math.min(demand, cfg.failSafeCurrent, mem.setpoint);
    if (mem.pausedSince !== null && now - mem.pausedSince < params.minPauseTimeMs) demand = 0;
    if (demand > mem.setpoint) {
        if (!increasesAllowed) demand = mem.setpoint;
        else if (mem.setpoint > 0)
            demand = Math.min(demand, mem.setpoint + params.maxIncreasePerCycle);
        else demand = Math.min(demand, Math.max(cfg.minCurrent, params.maxIncreasePerCycle));
    }
    if (demand < cfg.minCurrent) demand = 0;
    return demand;
}

/**
 * Who gets power first: priority, then (within a priority) cars that started less than a pause
 * length ago, cars that have waited at least a pause length (longest first), cars that have
 * charged for longer (the one charging longest yields first), and newcomers (first come, first
 * served). This turns a shortage into a fair, deterministic rotation instead of oscillation.
 */
function admissionOrder(views: readonly EvseView[], minPauseMs: number, now: number): number[] {
    const n = views.length;
    const prio = new Float64Array(n);
    const rank = new Float64Array(n);
    const key = new Float64Array(n);
    const arrival = new Float64Array(n);
    for (let i = 0; i < n; i++) {
        const { mem, cfg } = views[i]!;
        prio[i] = cfg.prio;
        arrival[i] = mem.pluggedAt ?? now;
        if (mem.setpoint > 0) {
            const started = mem.startedAt ?? now;
            const fresh = now - started < minPauseMs;
            rank[i] = fresh ? 0 : 2;
            key[i] = fresh ? arrival[i]! : -started;
        } else {
            const waiting = mem.pausedSince ?? arrival[i]!;
            rank[i] = now - waiting >= minPauseMs ? 1 : 3;
            key[i] = waiting;
        }
    }
    const order: number[] = [];
    for (let i = 0; i < n; i++) order.push(i);
    return order.sort(
        (a, b) =>
            compare(prio[b]!, prio[a]!) ||
            compare(rank[a]!, rank[b]!) ||
            compare(key[a]!, key[b]!) ||
            compare(arrival[a]!, arrival[b]!) ||
            a - b,
    );
}

/**
 * The sign of a − b as -1, 0 or 1: a comparator that returns a difference of two times makes a
 * heap number on each of its thousands of calls per cycle until V8 has optimised it.
 */
function compare(a: number, b: number): number {
    return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Lowers single- and two-phase wallboxes on the most loaded phase until the difference to the
 * least loaded phase is within the limit: the largest are cut first, down to their minimum
 * (equal share from the top); if that is not enough, they pause, lowest priority and last
 * admitted first.
 */
function limitImbalance(
    s: Float64Array,
    evses: FillEvses,
    order: readonly number[],
    other: Phases3,
    limit: number,
): void {
    const yieldOrder = [...order].reverse().sort((a, b) => evses.prio[a]! - evses.prio[b]!);
    // Each round lowers the load on the most loaded phase, so this ends; the bound is a backstop.
    for (let round = 0; round < 3 * evses.size + 6; round++) {
        const total: [number, number, number] = [...other];
        for (let i = 0; i < evses.size; i++) {
            for (let p = 0; p < 3; p++) if (evses.phases[i]! & (1 << p)) total[p]! += s[i]!;
        }
        const hi = total.indexOf(Math.max(...total));
        const lo = total.indexOf(Math.min(...total));
        let excess = total[hi]! - total[lo]! - limit;
        if (excess <= 0) return;
        const culprits = yieldOrder.filter(
            (i) => s[i]! > 0 && evses.phases[i]! & (1 << hi) && !(evses.phases[i]! & (1 << lo)),
        );
        if (!culprits.length) return;
        const cutAt = (level: number) =>
            culprits.reduce(
                (sum, i) => sum + Math.max(0, s[i]! - Math.max(level, evses.min[i]!)),
                0,
            );
        // Highest common level whose cuts cover the excess (binary search on whole mA).
        let low = 0;
        let high = Math.max(...culprits.map((i) => s[i]!));
        while (low < high) {
            const mid = Math.ceil((low + high) / 2);
            if (cutAt(mid) >= excess) low = mid;
            else high = mid - 1;
        }
        excess -= cutAt(low);
        for (const i of culprits) s[i] = Math.min(s[i]!, Math.max(low, evses.min[i]!));
        for (const i of culprits) {
            if (excess <= 0) break;
            excess -= s[i]!;
            s[i] = 0;
        }
    }
}

/** The battery-save part of a wallbox's memory. */
type BatterySave = Pick<EvseMemory, 'saveAboveSince' | 'saveArmed' | 'saveBelowSince' | 'full'>;

const NO_SAVE: BatterySave = {
    saveAboveSince: null,
    saveArmed: false,
    saveBelowSince: null,
    full: false,
};

/**
 * Battery save (the vendor's "save battery"): a car that has drawn at least the threshold for
 * BATTERY_SAVE_ARM_MS and then draws less for BATTERY_SAVE_BELOW_MS, while it is given at least
 * the threshold, counts as full: it gets nothing until it is unplugged. A car held below the
 * threshold by the manager itself is not taken for full, and without a measured draw nothing
 * changes.
 */
function batterySave(v: EvseView, now: number): BatterySave {
    const { cfg, mem } = v;
    const threshold = cfg.batterySaveThreshold ?? 0;
    if (!v.plugged || threshold <= 0) return NO_SAVE;
    const state: BatterySave = {
        saveAboveSince: mem.saveAboveSince,
        saveArmed: mem.saveArmed,
        saveBelowSince: mem.saveBelowSince,
        full: mem.full,
    };
    if (mem.full || !v.measured) return state;
    if (max3(v.measured) >= threshold) {
        const since = mem.saveAboveSince ?? now;
        return {
            saveAboveSince: since,
            saveArmed: mem.saveArmed || now - since >= BATTERY_SAVE_ARM_MS,
            saveBelowSince: null,
            full: false,
        };
    }
    if (!mem.saveArmed || mem.setpoint < threshold) {
        return { ...NO_SAVE, saveArmed: mem.saveArmed };
    }
    const below = mem.saveBelowSince ?? now;
    return {
        saveAboveSince: null,
        saveArmed: true,
        saveBelowSince: below,
        full: now - below >= BATTERY_SAVE_BELOW_MS,
    };
}

function nextMemory(
    v: EvseView,
    setpoint: number,
    wanted: boolean,
    now: number,
    underdrawSince: number | null,
    save: BatterySave,
    phase?: PhaseState,
): EvseMemory {
    const { mem, plugged } = v;
    const learned = plugged && !phase?.resetLearned ? v.learned : 0;
    let pausedSince: number | null = null;
    if (plugged && setpoint === 0) {
        pausedSince = mem.setpoint > 0 && wanted ? now : mem.pausedSince;
    }
    return {
        setpoint,
        pausedSince,
        startedAt:
            setpoint > 0
                ? mem.setpoint > 0 && mem.startedAt !== null
                    ? mem.startedAt
                    : now
                : null,
        pluggedAt: plugged ? (mem.pluggedAt ?? now) : null,
        learnedPhases: learned,
        underdrawSince: plugged ? underdrawSince : null,
        lastDraw: v.measured ?? mem.lastDraw,
        lastDrawAt: v.measured ? now : mem.lastDrawAt,
        ...(plugged ? save : NO_SAVE),
        phaseCount: phase ? phase.phaseCount : mem.phaseCount,
        switching: phase ? phase.switching : mem.switching,
        wishPhases: phase ? phase.wishPhases : mem.wishPhases,
        wishSince: phase ? phase.wishSince : mem.wishSince,
        lastSwitchAt: phase ? phase.lastSwitchAt : mem.lastSwitchAt,
        switches: phase ? phase.switches : mem.switches,
        switchRefused: phase ? phase.switchRefused : mem.switchRefused,
    };
}

/**
 * What a wallbox gets when the manager gives up control of it (disable_policy): 0 stops charging,
 * 1 its minimum, −1 releases it at its configured maximum. The one source for what a disabled
 * wallbox is counted at and what the drivers write, so that both are the same number.
 */
export function policyCommand(cfg: EvseConfig, policy: DisablePolicy): EvseCommand {
    return {
        current: policy === 1 ? cfg.minCurrent : policy === -1 ? cfg.maxCurrent : 0,
        chargingEnabled: policy !== 0,
        released: policy === -1,
    };
}

/** Commands for every wallbox when the manager gives up control (stop, redeploy): disable_policy. */
export function releaseCommands(config: SiteConfig): Map<string, EvseCommand> {
    const policy = config.params.disablePolicy;
    return new Map(config.evses.map((e) => [e.id, policyCommand(e, policy)]));
}
