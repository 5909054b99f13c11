// A physical site for the allocator's property tests: wallboxes whose cars draw what their wallbox
// allows or less, on the phases they really use; a household; sub-feeders with loads of their own;
// and meters that measure all of it, sometimes late, stale, failing or with power only. The manager
// gets nothing but the readings made here; the oracle checks its setpoints against this physics.
import fc from 'fast-check';
import { DEFAULT_PARAMS } from '../../lib/core/defaults';
import {
    MeterRole,
    type AllocationResult,
    type DeviceSample,
    type EvseConfig,
    type EvseReading,
    type EvseState,
    type GroupConfig,
    type MeterConfig,
    type MeterReading,
    type PhaseSwitchReport,
    type Phases3,
    type SiteConfig,
    type Snapshot,
} from '../../lib/core/types';

// ---- phases, written from the specification rather than taken from lib/core ----

/** Building phase (0..2) of a wallbox's or meter's own phase `i`: at 120° its L1 is building L2. */
export const toBuilding = (i: number, rotation: number): number => (i + rotation / 120) % 3;

/** A wallbox-side phase mask as building phases. */
export function buildingMask(mask: number, rotation: number): number {
    let out = 0;
    for (let i = 0; i < 3; i++) if (mask & (1 << i)) out |= 1 << toBuilding(i, rotation);
    return out;
}

/** `value` on each building phase in `mask`. */
export const onMask = (mask: number, value: number): Phases3 => [
    mask & 1 ? value : 0,
    mask & 2 ? value : 0,
    mask & 4 ? value : 0,
];

export const plus = (a: Phases3, b: Phases3): Phases3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const ZERO: Phases3 = [0, 0, 0];

// ---- the site ----

/** Where a wallbox's car current is measured: by the wallbox, by a role-4 meter, or not at all. */
export type Metering = 'own' | 'attached' | 'none';
export type MeterMode = 'grid' | 'house' | 'none';

export interface TestSite {
    config: SiteConfig;
    mode: MeterMode;
    /** By wallbox position. */
    metering: readonly Metering[];
    /** Whether each wallbox starts with a car, and which (an index into the car choices). */
    startCar: readonly (number | null)[];
    /** Meters that report power only, no phase currents. */
    powerOnly: ReadonlySet<string>;
    /** Where each wallbox's contactor starts (wallboxes that switch phases). */
    startContactor: readonly (1 | 3)[];
}

const rotation = fc.constantFrom(0 as const, 120 as const, 240 as const);
/** true `weight` times as often as false. */
export const mostly = (weight: number) =>
    fc.oneof(
        { arbitrary: fc.constant(true), weight },
        { arbitrary: fc.constant(false), weight: 1 },
    );
const six = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: 6, maxLength: 6 });

export const arbSite: fc.Arbitrary<TestSite> = fc
    .record({
        groupCount: fc.integer({ min: 0, max: 6 }),
        groupParents: six(fc.nat()),
        groupLimits: six(fc.integer({ min: 0, max: 80_000 })),
        groupMeters: six(fc.boolean()),
        groupMeterRotation: six(rotation),
        groupMeterCurrents: six(mostly(4)),
        meterMode: fc.constantFrom<MeterMode>('grid', 'house', 'none', 'grid'),
        siteRotation: fc.array(rotation, { minLength: 3, maxLength: 3 }),
        siteCurrents: fc.array(mostly(4), { minLength: 3, maxLength: 3 }),
        evses: fc.array(
            fc.record({
                groupPick: fc.nat(),
                prio: fc.integer({ min: 0, max: 3 }),
                min: fc.integer({ min: 6000, max: 10_000 }),
                extra: fc.integer({ min: 0, max: 26_000 }),
                rotation,
                usedPhases: fc.constantFrom(0, 0, 1, 2, 3, 4, 6, 7, 7),
                failSafe: fc.constantFrom('zero', 'min', 'max'),
                enabled: mostly(9),
                metering: fc.constantFrom<Metering>('own', 'own', 'attached', 'none'),
                startCar: fc.option(fc.nat(), { freq: 3 }),
                /** Phase switching: mostly none, else automatic or fixed. */
                switching: fc.constantFrom(
                    ...([
                        'none',
                        'none',
                        'none',
                        'none',
                        'none',
                        'none',
                        'auto',
                        'auto',
                        'one',
                        'three',
                    ] as const),
                ),
                contactor: fc.constantFrom(1 as const, 3 as const),
                /** Battery save: off mostly, else a threshold cars pass in both directions. */
                saveThreshold: fc.oneof(
                    { arbitrary: fc.constant(0), weight: 3 },
                    { arbitrary: fc.integer({ min: 1000, max: 16_000 }), weight: 1 },
                ),
            }),
            { minLength: 1, maxLength: 40 },
        ),
        params: fc.record({
            maxTotalCurrent: fc.integer({ min: 0, max: 120_000 }),
            reserveCurrent: fc.integer({ min: 0, max: 6000 }),
            maxTotalEvseCurrent: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100_000 })),
            maxTotalCurPrc: fc.oneof(
                { arbitrary: fc.constant(100), weight: 3 },
                { arbitrary: fc.integer({ min: 1, max: 100 }), weight: 1 },
            ),
            maxImbalance: fc.oneof(fc.constant(0), fc.integer({ min: 1000, max: 30_000 })),
            imbalanceAdd: fc.boolean(),
            minPauseTimeMs: fc.integer({ min: 0, max: 600_000 }),
            lbEnabled: mostly(19),
            disablePolicy: fc.constantFrom(-1 as const, 0 as const, 1 as const),
            increaseHoldMs: fc.oneof(
                { arbitrary: fc.constant(0), weight: 1 },
                { arbitrary: fc.integer({ min: 0, max: 20_000 }), weight: 2 },
            ),
            maxIncreasePerCycle: fc.oneof(
                { arbitrary: fc.integer({ min: 100, max: 20_000 }), weight: 2 },
                { arbitrary: fc.constant(100_000), weight: 1 },
            ),
            overdrawPenaltyMs: fc.oneof(
                { arbitrary: fc.constant(300_000), weight: 3 },
                { arbitrary: fc.integer({ min: 0, max: 600_000 }), weight: 1 },
            ),
            underdrawAfterMs: fc.integer({ min: 0, max: 120_000 }),
            underdrawMargin: fc.integer({ min: 0, max: 4000 }),
            phaseUpDelayMs: fc.integer({ min: 0, max: 60_000 }),
            phaseDownDelayMs: fc.integer({ min: 0, max: 60_000 }),
            phaseSwitchIntervalMs: fc.integer({ min: 0, max: 120_000 }),
            phaseSwitchMaxPerSession: fc.integer({ min: 0, max: 4 }),
            phaseUpThreshold: fc.integer({ min: 0, max: 3000 }),
            // At least the longest time a car here takes to follow a stop (5 s): the bounded
            // wait of a wallbox without a meter relies on it.
            phaseStopWaitMs: fc.integer({ min: 5000, max: 20_000 }),
            phaseSettleMs: fc.integer({ min: 0, max: 30_000 }),
        }),
    })
    .map((g): TestSite => {
        const groups: GroupConfig[] = [];
        const depth: number[] = [];
        const meters: MeterConfig[] = [];
        const powerOnly = new Set<string>();
        const meter = (
            id: string,
            role: MeterConfig['role'],
            phaseRotation: MeterConfig['phaseRotation'],
            currents: boolean,
        ) => {
            meters.push({ id, enabled: true, role, phaseRotation, staleAfterMs: 5000 });
            if (!currents) powerOnly.add(id);
        };
        if (g.meterMode === 'grid')
            meter('M1', MeterRole.gridDemand, g.siteRotation[0]!, g.siteCurrents[0]!);
        if (g.meterMode === 'house') {
            meter('M1', MeterRole.consumption, g.siteRotation[0]!, g.siteCurrents[0]!);
            meter('M2', MeterRole.production, g.siteRotation[1]!, g.siteCurrents[1]!);
            meter('M3', MeterRole.storageHome, g.siteRotation[2]!, g.siteCurrents[2]!);
        }
        for (let i = 0; i < g.groupCount; i++) {
            // A parent among the earlier groups, keeping at most three levels.
            const candidates = groups.map((_, j) => j).filter((j) => depth[j]! < 3);
            const pick = g.groupParents[i]! % (candidates.length + 1);
            const parent = pick === candidates.length ? -1 : candidates[pick]!;
            depth.push(parent < 0 ? 1 : depth[parent]! + 1);
            const id = `M${100 + i}`;
            if (g.groupMeters[i])
                meter(id, MeterRole.display, g.groupMeterRotation[i]!, g.groupMeterCurrents[i]!);
            groups.push({
                id: `E${100 + i}`,
                group: parent < 0 ? '' : `E${100 + parent}`,
                maxCurrent: g.groupLimits[i]!,
                ...(g.groupMeters[i] ? { meter: id } : {}),
            });
        }
        const evses: EvseConfig[] = g.evses.map((e, i) => {
            const max = e.min + e.extra;
            const attach = e.metering === 'attached' ? `M${200 + i}` : undefined;
            // A role-4 meter measures on its wallbox's phases.
            if (attach) meter(attach, MeterRole.evConsumption, 0, true);
            const pick = e.groupPick % (groups.length + 1);
            return {
                id: `E${i + 1}`,
                enabled: e.enabled,
                group: pick === groups.length ? '' : groups[pick]!.id,
                prio: e.prio,
                minCurrent: e.min,
                maxCurrent: max,
                phaseRotation: e.rotation,
                usedPhases: e.usedPhases,
                failSafeCurrent: e.failSafe === 'zero' ? 0 : e.failSafe === 'min' ? e.min : max,
                staleAfterMs: 5000,
                ...(attach ? { attach } : {}),
                ...(e.saveThreshold ? { batterySaveThreshold: e.saveThreshold } : {}),
                ...(e.switching === 'none'
                    ? {}
                    : {
                          phaseSwitch:
                              e.switching === 'auto'
                                  ? {}
                                  : { fixed: e.switching === 'one' ? (1 as const) : (3 as const) },
                      }),
            };
        });
        return {
            config: { params: { ...DEFAULT_PARAMS, ...g.params }, evses, groups, meters },
            mode: g.meterMode,
            metering: g.evses.map((e) => e.metering),
            startCar: g.evses.map((e) => e.startCar),
            powerOnly,
            startContactor: g.evses.map((e) => e.contactor),
        };
    });

// ---- what happens in one cycle ----

/** Whether a device's reading arrives: mostly fresh, sometimes old, missing or failing. */
const deviceKind = fc.oneof(
    { arbitrary: fc.constant('fresh' as const), weight: 40 },
    { arbitrary: fc.constant('old' as const), weight: 1 },
    { arbitrary: fc.constant('missing' as const), weight: 1 },
    { arbitrary: fc.constant('failing' as const), weight: 1 },
);
/** Meters may also repeat their last reading (a pushed meter that has not pushed again). */
const meterKind = fc.oneof(
    { arbitrary: deviceKind, weight: 43 },
    { arbitrary: fc.constant('repeat' as const), weight: 3 },
);

const arbWallboxEvent = fc.record({
    kind: deviceKind,
    attachKind: deviceKind,
    ageMs: fc.integer({ min: 0, max: 4000 }),
    /** A car leaves, or one arrives at an empty wallbox. */
    presence: fc.oneof(
        { arbitrary: fc.constant('stay' as const), weight: 30 },
        { arbitrary: fc.constant('leave' as const), weight: 1 },
        { arbitrary: fc.constant('arrive' as const), weight: 3 },
    ),
    car: fc.nat(),
    /** How long the car takes to follow a reduction (ms). */
    followMs: fc.integer({ min: 0, max: 5000 }),
    /** What the car would draw if allowed: all it is given, a share of it, or nothing. */
    wants: fc.oneof(
        { arbitrary: fc.constant(Infinity), weight: 6 },
        { arbitrary: fc.integer({ min: 0, max: 32_000 }), weight: 3 },
        { arbitrary: fc.constant(0), weight: 1 },
    ),
    /** A car that wants nothing stays in state C rather than going to B. */
    idleInC: fc.boolean(),
    fault: fc.oneof(
        { arbitrary: fc.constant(false), weight: 40 },
        { arbitrary: fc.constant(true), weight: 1 },
    ),
    stateD: fc.oneof(
        { arbitrary: fc.constant(false), weight: 8 },
        { arbitrary: fc.constant(true), weight: 1 },
    ),
    /** Phase switching: the wallbox refuses the switch, or its answer is lost. */
    switchAnswer: fc.oneof(
        { arbitrary: fc.constant('ok' as const), weight: 8 },
        { arbitrary: fc.constant('refuse' as const), weight: 1 },
        { arbitrary: fc.constant('lost' as const), weight: 1 },
    ),
    /** A PV cap per phase count (rules that turn power into current), for switching wallboxes. */
    pvW: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 2 },
        { arbitrary: fc.integer({ min: 0, max: 15_000 }), weight: 3 },
    ),
    /** A cap from rules, overrides or budgets. */
    limit: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 8 },
        { arbitrary: fc.integer({ min: 0, max: 40_000 }), weight: 1 },
    ),
});
const arbMeterEvent = fc.record({ kind: meterKind, ageMs: fc.integer({ min: 0, max: 4000 }) });
const phases3 = (min: number, max: number) =>
    fc.tuple(
        fc.integer({ min, max }),
        fc.integer({ min, max }),
        fc.integer({ min, max }),
    ) as fc.Arbitrary<Phases3>;

export const arbCycle = fc.record({
    dt: fc.oneof(
        { arbitrary: fc.integer({ min: 100, max: 3000 }), weight: 4 },
        { arbitrary: fc.integer({ min: 3000, max: 400_000 }), weight: 1 },
    ),
    /** max_total_current from a formula this cycle. */
    maxTotalCurrent: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 6 },
        { arbitrary: fc.integer({ min: 0, max: 100_000 }), weight: 1 },
    ),
    /** Non-wallbox load at the site's connection (with a grid meter: PV makes it negative). */
    household: phases3(-10_000, 50_000),
    consumption: phases3(0, 50_000),
    production: phases3(0, 20_000),
    /** Storage: positive charges, negative discharges. */
    storage: phases3(-10_000, 10_000),
    /** Other loads on each metered sub-feeder. */
    groupOther: six(phases3(-3000, 20_000)),
    wallboxes: fc.array(arbWallboxEvent, { minLength: 16, maxLength: 16 }),
    meters: fc.array(arbMeterEvent, { minLength: 8, maxLength: 8 }),
});
export type Cycle = typeof arbCycle extends fc.Arbitrary<infer T> ? T : never;
export const arbCycles = fc.array(arbCycle, { minLength: 1, maxLength: 20 });

// ---- the physics ----

export interface Car {
    /** Wallbox-side phases it charges on. */
    phases: number;
    /** How long it takes to follow a reduction (ms). */
    followMs: number;
}

/** What one wallbox and its car did this cycle, and what the manager could see of it. */
export interface WallboxTruth {
    car: Car | undefined;
    /** Building phases the car really charges on (0 without a car): its own phases that the
     *  wallbox's contactor connects. */
    carMask: number;
    /** What the car draws now, building phases. */
    draw: Phases3;
    /** The manager has a fresh reading of the wallbox. */
    readable: boolean;
    /** The state in that reading. */
    state: EvseState;
    /** Wallbox-side car currents from a fresh measurement (its own meter or its role-4 meter). */
    measured: Phases3 | undefined;
}

export interface MeterTruth {
    fresh: boolean;
    takenAt: number | undefined;
    /** What the reading shows per building phase; a power-only meter shows its average. */
    shown: Phases3;
}

export interface CycleTruth {
    now: number;
    snapshot: Snapshot;
    wallboxes: WallboxTruth[];
    meters: Map<string, MeterTruth>;
    /** All non-wallbox load on each node's feeder ('' = the site), building phases. */
    other: Map<string, Phases3>;
}

interface Wallbox {
    car: Car | undefined;
    /** Current limit in force at the wallbox (mA; 0 = charging disabled). */
    limit: number;
    /** The limit before the last reduction, which a car may still draw for its follow time. */
    previousLimit: number;
    reducedAt: number;
    sample: DeviceSample<EvseReading> | undefined;
    /** The contactor: 1 connects the wallbox's L1 only. */
    contactor: 1 | 3;
    /** The last switch's answer, as the engine would hand it to the next decision. */
    report: PhaseSwitchReport | undefined;
    /** How the wallbox answers a switch in this cycle. */
    answer: 'ok' | 'refuse' | 'lost';
    /** What its car drew in the last step (building phases). */
    draw: Phases3;
    /** Automatic switches carried out in the session the manager can see, and the last one. */
    autoSwitches: number;
    lastAutoSwitchAt: number;
}

interface MeterState {
    sample: DeviceSample<MeterReading> | undefined;
    shown: Phases3;
}

const STALE_AFTER = 5000;

/** Car choices for a wallbox: its configured phases, or a single-phase car on them; any car if 0. */
function carPhases(usedPhases: number, pick: number): number {
    if (usedPhases === 0) return [1, 3, 7, 7][pick % 4]!;
    return [usedPhases, usedPhases, usedPhases & -usedPhases][pick % 3]!;
}

export class World {
    now = 1_000_000;
    readonly boxes: Wallbox[];
    private readonly meters = new Map<string, MeterState>();
    private readonly groups: Map<string, GroupConfig>;

    constructor(readonly site: TestSite) {
        const { evses, groups } = site.config;
        this.groups = new Map(groups.map((g) => [g.id, g]));
        this.boxes = evses.map((e, i) => {
            const start = site.startCar[i];
            return {
                car:
                    start === null || start === undefined
                        ? undefined
                        : { phases: carPhases(e.usedPhases, start), followMs: start % 5000 },
                limit: 0,
                previousLimit: 0,
                reducedAt: -Infinity,
                sample: undefined,
                contactor: site.startContactor[i] ?? 3,
                report: undefined,
                answer: 'ok' as const,
                draw: ZERO,
                autoSwitches: 0,
                lastAutoSwitchAt: -Infinity,
            };
        });
    }

    /** A group's chain up to the site, nearest first, '' last. */
    chain(group: string): string[] {
        const out: string[] = [];
        for (let g = group; g && this.groups.has(g); g = this.groups.get(g)!.group) out.push(g);
        out.push('');
        return out;
    }

    /** Advances to the next cycle: cars come, go and draw; devices report (or not). */
    step(cycle: Cycle): CycleTruth {
        const { config, mode, metering, powerOnly } = this.site;
        this.now += cycle.dt;
        const now = this.now;
        const evseSamples = new Map<string, DeviceSample<EvseReading>>();
        const meterSamples = new Map<string, DeviceSample<MeterReading>>();
        const meterTruth = new Map<string, MeterTruth>();
        const limits = new Map<string, number>();
        const phaseLimits = new Map<string, { one: number; three: number }>();
        const phaseSwitches = new Map<string, PhaseSwitchReport>();
        const sample = <R>(
            kind: string,
            reading: R,
            age: number,
            previous: DeviceSample<R> | undefined,
        ): DeviceSample<R> | undefined => {
            switch (kind) {
                case 'fresh':
                    return { reading, takenAt: now - age };
                case 'old':
                    return { reading, takenAt: now - STALE_AFTER - 1000 - age };
                case 'failing':
                    return previous ? { ...previous, error: 'timeout' } : { error: 'timeout' };
                case 'repeat':
                    return previous;
                default:
                    return undefined;
            }
        };
        const isFresh = (s: DeviceSample<unknown> | undefined) =>
            !!s?.reading &&
            s.takenAt !== undefined &&
            s.error === undefined &&
            now - s.takenAt <= STALE_AFTER;

        const wallboxes: WallboxTruth[] = config.evses.map((e, i) => {
            const ev = cycle.wallboxes[i % cycle.wallboxes.length]!;
            const box = this.boxes[i]!;
            if (box.car && ev.presence === 'leave') box.car = undefined;
            else if (!box.car && ev.presence === 'arrive')
                box.car = { phases: carPhases(e.usedPhases, ev.car), followMs: ev.followMs };
            const car = box.car;
            // A car follows a reduction only after its follow time; a raise it may take at once.
            const allowed =
                car && now - box.reducedAt < car.followMs
                    ? Math.max(box.limit, box.previousLimit)
                    : box.limit;
            // The contactor connects the wallbox's L1 alone, or all three.
            const phases = car ? car.phases & (box.contactor === 1 ? 0b001 : 0b111) : 0;
            let state: EvseState = 1;
            let amps = 0;
            if (car) {
                if (ev.fault) state = 5;
                else if (phases && allowed > 0 && (ev.wants > 0 || ev.idleInC)) {
                    state = ev.stateD ? 4 : 3;
                    amps = Math.min(allowed, ev.wants);
                } else state = 2;
            }
            const own = onMask(phases, amps);
            if (ev.limit !== undefined) limits.set(e.id, ev.limit);
            box.answer = ev.switchAnswer;
            if (e.phaseSwitch && ev.pvW !== undefined) {
                phaseLimits.set(e.id, {
                    one: Math.floor((ev.pvW / 230) * 1000),
                    three: Math.floor((ev.pvW / 230 / 3) * 1000),
                });
            }
            if (e.phaseSwitch && box.report) phaseSwitches.set(e.id, box.report);
            const reading: EvseReading = {
                state,
                ...(metering[i] === 'own' ? { currents: own } : {}),
                // Some wallboxes report their contactor.
                ...(e.phaseSwitch && ev.car % 2 ? { phases: box.contactor } : {}),
            };
            box.sample = sample(ev.kind, reading, ev.ageMs, box.sample);
            if (box.sample) evseSamples.set(e.id, box.sample);
            const readable = isFresh(box.sample);
            let measured = readable && metering[i] === 'own' ? own : undefined;
            if (e.attach) {
                const prev = this.meters.get(e.attach)?.sample;
                const s = sample(ev.attachKind, { currents: own, powerW: 0 }, ev.ageMs, prev);
                this.meters.set(e.attach, { sample: s, shown: ZERO });
                if (s) meterSamples.set(e.attach, s);
                if (isFresh(s)) measured = own;
            }
            const carMask = car ? buildingMask(phases, e.phaseRotation) : 0;
            box.draw = onMask(carMask, amps);
            // A session as the manager sees it ends when the wallbox shows no car.
            if (readable && (state < 2 || state > 4)) box.autoSwitches = 0;
            return {
                car,
                carMask,
                draw: onMask(carMask, amps),
                readable,
                state,
                measured,
            };
        });

        // Non-wallbox load per feeder: a metered sub-feeder has loads of its own; every feeder
        // carries those of the feeders below it. Without a site meter nothing else is connected.
        const other = new Map<string, Phases3>();
        const top: Phases3 =
            mode === 'grid' ? cycle.household : mode === 'house' ? cycle.consumption : ZERO;
        other.set('', top);
        const groups = config.groups;
        for (let j = 0; j < groups.length; j++) other.set(groups[j]!.id, ZERO);
        for (let j = groups.length - 1; j >= 0; j--) {
            const g = groups[j]!;
            const own = mode !== 'none' && g.meter ? cycle.groupOther[j]! : ZERO;
            const below = plus(other.get(g.id)!, own);
            other.set(g.id, below);
            const parent = g.group || '';
            other.set(parent, plus(other.get(parent)!, below));
        }
        const carsBelow = (node: string): Phases3 => {
            let sum = ZERO;
            for (let i = 0; i < config.evses.length; i++)
                if (this.chain(config.evses[i]!.group).includes(node))
                    sum = plus(sum, wallboxes[i]!.draw);
            return sum;
        };

        let k = 0;
        const voltage = config.params.voltage;
        const report = (m: MeterConfig, building: Phases3) => {
            const ev = cycle.meters[k++ % cycle.meters.length]!;
            const prev = this.meters.get(m.id);
            let reading: MeterReading;
            let shown: Phases3;
            if (powerOnly.has(m.id)) {
                const powerW = Math.round(
                    ((building[0] + building[1] + building[2]) * voltage) / 1000,
                );
                const each = (powerW * 1000) / voltage / 3;
                reading = { powerW };
                shown = [each, each, each];
            } else {
                // The meter reports on its own phases: its phase i is building phase toBuilding(i).
                const own = [0, 1, 2].map((i) => building[toBuilding(i, m.phaseRotation)]!);
                reading = { currents: own as unknown as Phases3, powerW: 0 };
                shown = building;
            }
            const s = sample(ev.kind, reading, ev.ageMs, prev?.sample);
            const state: MeterState =
                ev.kind === 'repeat' && prev ? prev : { sample: s, shown: s ? shown : ZERO };
            this.meters.set(m.id, state);
            if (state.sample) meterSamples.set(m.id, state.sample);
            meterTruth.set(m.id, {
                fresh: isFresh(state.sample),
                takenAt: state.sample?.takenAt,
                shown: state.shown,
            });
        };
        for (const m of config.meters) {
            if (m.role === MeterRole.gridDemand) report(m, plus(other.get('')!, carsBelow('')));
            else if (m.role === MeterRole.consumption) report(m, other.get('')!);
            else if (m.role === MeterRole.production) report(m, cycle.production);
            else if (m.role === MeterRole.storageHome) report(m, cycle.storage);
        }
        for (const g of groups)
            if (g.meter) {
                const m = config.meters.find((x) => x.id === g.meter)!;
                report(m, plus(other.get(g.id)!, carsBelow(g.id)));
            }

        const snapshot: Snapshot = {
            now,
            evses: evseSamples,
            meters: meterSamples,
            limits,
            ...(phaseLimits.size ? { phaseLimits } : {}),
            ...(phaseSwitches.size ? { phaseSwitches } : {}),
            ...(cycle.maxTotalCurrent !== undefined
                ? { maxTotalCurrent: cycle.maxTotalCurrent }
                : {}),
        };
        return { now, snapshot, wallboxes, meters: meterTruth, other };
    }

    /** The wallboxes take the commands that are written. */
    apply(result: AllocationResult): void {
        const evses = this.site.config.evses;
        for (let i = 0; i < evses.length; i++) {
            const sp = result.setpoints.get(evses[i]!.id)!;
            if (!sp.write) continue;
            const box = this.boxes[i]!;
            if (sp.switching === 'switch' && sp.phaseCount) this.switchPhases(i, sp.phaseCount);
            const limit = sp.released ? evses[i]!.maxCurrent : sp.chargingEnabled ? sp.current : 0;
            if (limit < box.limit) {
                // A second reduction before the car followed the first: it may still draw the higher.
                const stillFollowing = this.now - box.reducedAt < 5000;
                box.previousLimit = stillFollowing
                    ? Math.max(box.previousLimit, box.limit)
                    : box.limit;
                box.reducedAt = this.now;
            }
            box.limit = limit;
        }
    }

    /**
     * The engine's step of a switch: the contactor moves only while the command in force is no
     * charging and the car draws nothing — never under load. The answer reaches the next cycle.
     */
    private switchPhases(i: number, to: 1 | 3): void {
        const box = this.boxes[i]!;
        const cfg = this.site.config.evses[i]!;
        if (box.limit !== 0) return; // the stop is not confirmed yet: the engine waits
        // Under load: 1 A or more on a phase (less is taken as a car that has stopped; meters
        // show a few mA of standby).
        if (box.draw.some((d) => d >= 1000)) {
            throw new Error(`${cfg.id}: phase switch under load (${box.draw.join('/')} mA)`);
        }
        if (box.answer === 'refuse') {
            box.report = { phases: to, at: this.now, error: 'refused' };
            return;
        }
        const automatic = cfg.phaseSwitch?.fixed === undefined;
        if (box.contactor !== to && automatic && box.answer === 'ok') {
            const p = this.site.config.params;
            if (box.autoSwitches >= p.phaseSwitchMaxPerSession)
                throw new Error(`${cfg.id}: more than ${p.phaseSwitchMaxPerSession} switches`);
            if (this.now - box.lastAutoSwitchAt < p.phaseSwitchIntervalMs)
                throw new Error(
                    `${cfg.id}: switched ${this.now - box.lastAutoSwitchAt} ms after the last`,
                );
            box.autoSwitches++;
            box.lastAutoSwitchAt = this.now;
        }
        box.contactor = to;
        // A lost answer: the contactor moved, the manager never hears of it.
        box.report = box.answer === 'lost' ? box.report : { phases: to, at: this.now };
    }

    /** Limits in force once every car has followed (mA per wallbox). */
    limits(): number[] {
        return this.boxes.map((b) => b.limit);
    }
}
