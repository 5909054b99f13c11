// Property tests: random sites and random sequences of cycles; the safety invariants of the
// design (fuse, minimum, stale input, ramps, pauses, imbalance, shutdown) must hold in every cycle.
// The accounting here is written independently of the allocator's.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocate, releaseCommands } from '../../../lib/core/allocate';
import { DEFAULT_PARAMS, emptyMemory } from '../../../lib/core/defaults';
import { rotatePhases } from '../../../lib/core/phases';
import {
    MeterRole,
    type AllocationResult,
    type AllocatorMemory,
    type DeviceSample,
    type EvseConfig,
    type EvseReading,
    type GroupConfig,
    type MeterConfig,
    type MeterReading,
    type Phases3,
    type SiteConfig,
    type Snapshot,
} from '../../../lib/core/types';

const SCALE = Number(process.env.EVCM_PROPERTY_SCALE ?? '1');
const rotation = fc.constantFrom(0 as const, 120 as const, 240 as const);
/** true `weight` times as often as false. */
const mostly = (weight: number) =>
    fc.oneof(
        { arbitrary: fc.constant(true), weight },
        { arbitrary: fc.constant(false), weight: 1 },
    );

const arbSite: fc.Arbitrary<SiteConfig> = fc
    .record({
        groupCount: fc.integer({ min: 0, max: 6 }),
        groupParents: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
        groupLimits: fc.array(fc.integer({ min: 0, max: 80_000 }), { minLength: 6, maxLength: 6 }),
        groupMeters: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        meterMode: fc.constantFrom('grid', 'house', 'none', 'grid'),
        gridRotation: rotation,
        evses: fc.array(
            fc.record({
                groupPick: fc.nat(),
                prio: fc.integer({ min: 0, max: 3 }),
                min: fc.integer({ min: 6000, max: 10_000 }),
                extra: fc.integer({ min: 0, max: 26_000 }),
                rotation,
                usedPhases: fc.constantFrom(0, 1, 2, 3, 4, 6, 7, 7),
                failSafe: fc.constantFrom('zero', 'min', 'max'),
                enabled: mostly(9),
                attach: fc.boolean(),
                /** Battery save: off mostly, else a threshold cars pass in both directions. */
                saveThreshold: fc.oneof(
                    { arbitrary: fc.constant(0), weight: 3 },
                    { arbitrary: fc.integer({ min: 1000, max: 16_000 }), weight: 1 },
                ),
            }),
            { minLength: 1, maxLength: 50 },
        ),
        params: fc.record({
            maxTotalCurrent: fc.integer({ min: 0, max: 120_000 }),
            reserveCurrent: fc.integer({ min: 0, max: 6000 }),
            maxTotalEvseCurrent: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100_000 })),
            maxTotalCurPrc: fc.integer({ min: 1, max: 100 }),
            maxImbalance: fc.oneof(fc.constant(0), fc.integer({ min: 1000, max: 30_000 })),
            imbalanceAdd: fc.boolean(),
            minPauseTimeMs: fc.integer({ min: 0, max: 600_000 }),
            lbEnabled: mostly(19),
            disablePolicy: fc.constantFrom(-1 as const, 0 as const, 1 as const),
            increaseHoldMs: fc.integer({ min: 0, max: 20_000 }),
            maxIncreasePerCycle: fc.integer({ min: 100, max: 20_000 }),
            underdrawAfterMs: fc.integer({ min: 0, max: 120_000 }),
            underdrawMargin: fc.integer({ min: 0, max: 4000 }),
        }),
    })
    .map((g) => {
        const groups: GroupConfig[] = [];
        const depth: number[] = [];
        for (let i = 0; i < g.groupCount; i++) {
            // A parent among the earlier groups, keeping at most three levels.
            const candidates = groups.map((_, j) => j).filter((j) => depth[j]! < 3);
            const pick = g.groupParents[i]! % (candidates.length + 1);
            const parent = pick === candidates.length ? -1 : candidates[pick]!;
            depth.push(parent < 0 ? 1 : depth[parent]! + 1);
            groups.push({
                id: `E${100 + i}`,
                group: parent < 0 ? '' : `E${100 + parent}`,
                maxCurrent: g.groupLimits[i]!,
                ...(g.groupMeters[i] ? { meter: `M${100 + i}` } : {}),
            });
        }
        const meters: MeterConfig[] = [];
        const m = (
            id: string,
            role: MeterConfig['role'],
            phaseRotation: MeterConfig['phaseRotation'] = 0,
        ) => meters.push({ id, enabled: true, role, phaseRotation, staleAfterMs: 5000 });
        if (g.meterMode === 'grid') m('M1', MeterRole.gridDemand, g.gridRotation);
        if (g.meterMode === 'house') {
            m('M1', MeterRole.consumption);
            m('M2', MeterRole.production);
            m('M3', MeterRole.storageHome);
        }
        for (const grp of groups) if (grp.meter) m(grp.meter, MeterRole.display);
        const evses: EvseConfig[] = g.evses.map((e, i) => {
            const max = e.min + e.extra;
            const attach = e.attach ? `M${200 + i}` : undefined;
            if (attach) m(attach, MeterRole.evConsumption);
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
            };
        });
        return {
            params: { ...DEFAULT_PARAMS, ...g.params },
            evses,
            groups,
            meters,
        };
    });

/** What happens to one device in one cycle: mostly fresh data, sometimes old, missing or failing. */
const arbKind = fc.oneof(
    { arbitrary: fc.constant('fresh' as const), weight: 40 },
    { arbitrary: fc.constant('old' as const), weight: 1 },
    { arbitrary: fc.constant('missing' as const), weight: 1 },
    { arbitrary: fc.constant('failing' as const), weight: 1 },
);
const arbDeviceEvent = fc.record({
    kind: arbKind,
    /** Car present and charging most of the time. */
    state: fc.oneof(
        { arbitrary: fc.constant<EvseReading['state']>(3), weight: 12 },
        { arbitrary: fc.constantFrom<EvseReading['state']>(1, 2, 4, 5, 6), weight: 3 },
    ),
    /** Phases the car really uses (wallbox side). */
    carPhases: fc.constantFrom(1, 1, 3, 7, 7, 7),
    /** Draw as a share of what the car was given (above 1: a car that overdraws). */
    drawShare: fc.oneof(
        { arbitrary: fc.constant(1), weight: 6 },
        { arbitrary: fc.integer({ min: 0, max: 110 }).map((x) => x / 100), weight: 3 },
    ),
    hasCurrents: mostly(5),
    ageMs: fc.integer({ min: 0, max: 4000 }),
    limit: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 8 },
        { arbitrary: fc.integer({ min: 0, max: 40_000 }), weight: 1 },
    ),
    /** Other load on a meter (household, sub-feeder, production). */
    other: fc.tuple(
        fc.integer({ min: -10_000, max: 50_000 }),
        fc.integer({ min: -10_000, max: 50_000 }),
        fc.integer({ min: -10_000, max: 50_000 }),
    ),
});

const arbCycles = fc.array(
    fc.record({
        dt: fc.oneof(
            { arbitrary: fc.integer({ min: 100, max: 3000 }), weight: 4 },
            { arbitrary: fc.integer({ min: 3000, max: 400_000 }), weight: 1 },
        ),
        events: fc.array(arbDeviceEvent, { minLength: 40, maxLength: 40 }),
        maxTotalCurrent: fc.oneof(
            { arbitrary: fc.constant(undefined), weight: 6 },
            { arbitrary: fc.integer({ min: 0, max: 100_000 }), weight: 1 },
        ),
    }),
    { minLength: 1, maxLength: 16 },
);

type DeviceEvent = typeof arbDeviceEvent extends fc.Arbitrary<infer T> ? T : never;
interface Cycle {
    dt: number;
    events: DeviceEvent[];
    maxTotalCurrent: number | undefined;
}

function sampleFor<R>(
    ev: DeviceEvent,
    reading: R,
    now: number,
    previous: DeviceSample<R> | undefined,
): DeviceSample<R> | undefined {
    switch (ev.kind) {
        case 'fresh':
            return { reading, takenAt: now - ev.ageMs };
        case 'old':
            return { reading, takenAt: now - 6000 - ev.ageMs };
        case 'failing':
            return previous ? { ...previous, error: 'timeout' } : { error: 'timeout' };
        default:
            return undefined;
    }
}

const add = (a: Phases3, b: Phases3): Phases3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];

/**
 * Readings consistent with a physical site: each car draws a share of what it was given on the
 * phases it really uses; every meter sees its own other load plus the cars below it.
 */
function buildSnapshot(
    config: SiteConfig,
    cycle: Cycle,
    now: number,
    prev: Snapshot | undefined,
    memory: AllocatorMemory,
): Snapshot {
    const evses = new Map<string, DeviceSample<EvseReading>>();
    const meters = new Map<string, DeviceSample<MeterReading>>();
    const limits = new Map<string, number>();
    let k = 0;
    const next = () => cycle.events[k++ % cycle.events.length]!;
    const carDraw = new Map<string, Phases3>();
    for (const e of config.evses) {
        const ev = next();
        const given = memory.evses.get(e.id)?.setpoint ?? 0;
        const charging = ev.state === 3 || ev.state === 4;
        const amps = charging ? Math.round(given * ev.drawShare) : 0;
        const draw: Phases3 = [0, 1, 2].map((p) =>
            ev.carPhases & (1 << p) ? amps : 0,
        ) as unknown as Phases3;
        carDraw.set(e.id, rotatePhases(draw, e.phaseRotation));
        const reading: EvseReading = {
            state: ev.state,
            ...(ev.hasCurrents ? { currents: draw } : {}),
        };
        const s = sampleFor(ev, reading, now, prev?.evses.get(e.id));
        if (s) evses.set(e.id, s);
        if (ev.limit !== undefined) limits.set(e.id, ev.limit);
        if (e.attach) {
            const m = sampleFor(
                next(),
                { currents: draw, powerW: 0 },
                now,
                prev?.meters.get(e.attach),
            );
            if (m) meters.set(e.attach, m);
        }
    }
    const groups = new Map(config.groups.map((g) => [g.id, g]));
    const below = (node: string) =>
        config.evses.filter((e) => {
            for (let g = e.group, n = 0; n < 10; g = groups.get(g)?.group ?? '', n++)
                if (g === node) return true;
            return node === '';
        });
    const carsBelow = (node: string) =>
        below(node).reduce((t, e) => add(t, carDraw.get(e.id)!), [0, 0, 0] as Phases3);
    const household = next().other;
    const put = (id: string, currents: Phases3) => {
        const ev = next();
        const reading: MeterReading = ev.hasCurrents
            ? { currents, powerW: 0 }
            : { powerW: Math.round(((currents[0] + currents[1] + currents[2]) * 230) / 1000) };
        const s = sampleFor(ev, reading, now, prev?.meters.get(id));
        if (s) meters.set(id, s);
    };
    for (const m of config.meters) {
        if (m.role === MeterRole.gridDemand) {
            const building = add(household, carsBelow(''));
            // The meter reports on its own phases: undo its rotation.
            const inv: Phases3 = [0, 0, 0].map(
                (_, i) => building[(i + m.phaseRotation / 120) % 3]!,
            ) as unknown as Phases3;
            put(m.id, inv);
        } else if (m.role === MeterRole.consumption) {
            put(m.id, household.map((x) => Math.max(0, x)) as unknown as Phases3);
        } else if (m.role === MeterRole.production || m.role === MeterRole.storageHome) {
            put(m.id, next().other.map((x) => Math.abs(x) / 4) as unknown as Phases3);
        }
    }
    for (const g of config.groups) {
        if (g.meter)
            put(
                g.meter,
                add(
                    next().other.map((x) => Math.abs(x) / 4) as unknown as Phases3,
                    carsBelow(g.id),
                ),
            );
    }
    return {
        now,
        evses,
        meters,
        limits,
        ...(cycle.maxTotalCurrent !== undefined ? { maxTotalCurrent: cycle.maxTotalCurrent } : {}),
    };
}

// ---- independent accounting ----

function fresh<R>(s: DeviceSample<R> | undefined, now: number, maxAge: number): R | undefined {
    return s?.reading &&
        s.takenAt !== undefined &&
        s.error === undefined &&
        now - s.takenAt <= maxAge
        ? s.reading
        : undefined;
}

function meterCurrents(r: MeterReading, rot: MeterConfig['phaseRotation']): Phases3 {
    if (r.currents) return rotatePhases(r.currents, rot);
    const each = Math.round((r.powerW * 1000) / 230 / 3);
    return [each, each, each];
}

/** How often the interesting paths were taken: a property that never binds proves nothing. */
const coverage = {
    cycles: 0,
    charging: 0,
    siteBinding: 0,
    groupBinding: 0,
    imbalanceBinding: 0,
    failSafe: 0,
    paused: 0,
    unreachable: 0,
};

interface Check {
    config: SiteConfig;
    snapshot: Snapshot;
    before: AllocatorMemory;
    result: AllocationResult;
    /** Last non-EVSE load per node from fresh data, kept across cycles by the test. */
    lastLoad: Map<string, Phases3>;
    /** The meter reading times that load came from: an unchanged reading keeps its load. */
    lastKey: Map<string, string>;
}

function checkCycle({ config, snapshot, before, result, lastLoad, lastKey }: Check): void {
    const { params } = config;
    const now = snapshot.now;
    const sp = (id: string) => result.setpoints.get(id)!;
    const mem = (id: string) => before.evses.get(id);
    const groups = new Map(config.groups.map((g) => [g.id, g]));
    const meters = new Map(config.meters.map((m) => [m.id, m]));
    const chainOf = (group: string): string[] => {
        const chain: string[] = [];
        for (let g = group; g && groups.has(g) && !chain.includes(g); g = groups.get(g)!.group)
            chain.push(g);
        return [...chain, ''];
    };
    const evsesBelow = (node: string) =>
        config.evses.filter((e) => chainOf(e.group).includes(node));

    // Draw used to separate wallboxes from other loads, and load that cannot be controlled.
    const draw = new Map<string, Phases3>();
    const fixed = new Map<string, Phases3>();
    for (const e of config.evses) {
        const s = sp(e.id);
        const r = fresh(snapshot.evses.get(e.id), now, e.staleAfterMs);
        const attached = e.attach ? fresh(snapshot.meters.get(e.attach), now, 5000) : undefined;
        const measured = attached?.currents ?? r?.currents;
        const on = (v: number): Phases3 =>
            [0, 1, 2].map((p) => (s.phases & (1 << p) ? v : 0)) as unknown as Phases3;
        const prev = mem(e.id);
        let f: Phases3 = [0, 0, 0];
        let d: Phases3;
        if (s.state === 'disabled' || s.state === 'released') {
            f = on(s.current);
            d = measured ? rotatePhases(measured, e.phaseRotation) : [0, 0, 0];
        } else if (s.state === 'unreachable') {
            const last = prev && prev.lastDrawAt !== null ? Math.max(...prev.lastDraw) : 0;
            f = on(Math.max(prev?.setpoint ?? 0, last));
            d = [0, 0, 0];
        } else {
            d = measured ? rotatePhases(measured, e.phaseRotation) : on(prev?.setpoint ?? 0);
        }
        draw.set(e.id, d);
        fixed.set(e.id, f);
    }
    const sum = (ids: readonly EvseConfig[], of: (e: EvseConfig) => Phases3): Phases3 => {
        const t: [number, number, number] = [0, 0, 0];
        for (const e of ids) for (let p = 0; p < 3; p++) t[p]! += of(e)[p]!;
        return t;
    };

    const grid = config.meters.filter((m) => m.role === MeterRole.gridDemand);
    const house = config.meters.filter((m) =>
        [MeterRole.consumption, MeterRole.production, MeterRole.storageHome].includes(m.role as 1),
    );
    const nodes = ['', ...config.groups.map((g) => g.id)];
    const metersOf = (node: string): MeterConfig[] => {
        if (node === '') return grid.length ? grid : house;
        const id = groups.get(node)!.meter;
        return id && meters.has(id) ? [meters.get(id)!] : [];
    };
    const readingKey = (node: string) =>
        metersOf(node)
            .map((m) => `${snapshot.meters.get(m.id)?.takenAt}/`)
            .join('');
    const staleNodes = new Set<string>();
    const loadOf = new Map<string, Phases3>();
    for (const node of nodes) {
        const below = evsesBelow(node);
        let raw: Phases3 | undefined;
        let withEvses = true;
        let metered = true;
        if (node === '' && grid.length) {
            const r = fresh(snapshot.meters.get('M1'), now, 5000);
            raw = r && meterCurrents(r, grid[0]!.phaseRotation);
        } else if (node === '' && house.length) {
            withEvses = false;
            const rs = house.map((m) => fresh(snapshot.meters.get(m.id), now, 5000));
            if (rs.every((r) => r)) {
                const [c, pr, st] = rs.map((r) => meterCurrents(r!, 0));
                raw = [0, 1, 2].map(
                    (p) => c![p]! - pr![p]! + Math.max(0, st![p]!),
                ) as unknown as Phases3;
            }
        } else if (node !== '' && groups.get(node)!.meter && meters.has(groups.get(node)!.meter!)) {
            const r = fresh(snapshot.meters.get(groups.get(node)!.meter!), now, 5000);
            raw = r && meterCurrents(r, 0);
        } else {
            metered = false;
        }
        if (!metered) {
            loadOf.set(node, [0, 0, 0]);
            continue;
        }
        const key = readingKey(node);
        if (raw && lastKey.get(node) === key) {
            loadOf.set(node, lastLoad.get(node)!);
        } else if (raw) {
            lastKey.set(node, key);
            const d = sum(below, (e) => draw.get(e.id)!);
            const l = withEvses
                ? ([0, 1, 2].map((p) => raw![p]! - d[p]!) as unknown as Phases3)
                : raw;
            loadOf.set(node, l);
            lastLoad.set(node, l);
        } else {
            staleNodes.add(node);
            loadOf.set(node, lastLoad.get(node) ?? [0, 0, 0]);
        }
    }

    const controlled = (s: ReturnType<typeof sp>) =>
        ['charging', 'paused', 'idle', 'failsafe'].includes(s.state);

    if (!params.lbEnabled) {
        for (const s of result.setpoints.values())
            assert.equal(s.write, false, 'observe mode writes nothing');
        return;
    }

    coverage.cycles++;
    const states = [...result.setpoints.values()];
    if (states.some((x) => x.current > 0 && x.state === 'charging')) coverage.charging++;
    if (states.some((x) => x.state === 'failsafe')) coverage.failSafe++;
    if (states.some((x) => x.state === 'paused')) coverage.paused++;
    if (states.some((x) => x.state === 'unreachable' && x.current > 0)) coverage.unreachable++;

    // 1. Fuse: every node, every phase.
    const budget = result.site.budget;
    for (const node of nodes) {
        const below = evsesBelow(node);
        const limits: number[] =
            node === '' ? [...budget] : [0, 1, 2].map(() => groups.get(node)!.maxCurrent);
        const set = sum(below, (e) =>
            controlled(sp(e.id))
                ? ([0, 1, 2].map((p) =>
                      sp(e.id).phases & (1 << p) ? sp(e.id).current : 0,
                  ) as unknown as Phases3)
                : [0, 0, 0],
        );
        const fix = sum(below, (e) => fixed.get(e.id)!);
        const load = loadOf.get(node)!;
        for (let p = 0; p < 3; p++) {
            const allZero = below.every(
                (e) =>
                    !controlled(sp(e.id)) ||
                    !(sp(e.id).phases & (1 << p)) ||
                    sp(e.id).current === 0,
            );
            const total = set[p]! + fix[p]! + load[p]!;
            if (!allZero && total > limits[p]! - 1000) {
                if (node === '') coverage.siteBinding++;
                else coverage.groupBinding++;
            }
            assert.ok(
                total <= limits[p]! || allZero,
                `fuse: node '${node}' L${p + 1}: ${total} > ${limits[p]}`,
            );
            if (node === '' && params.maxTotalEvseCurrent > 0) {
                assert.ok(
                    set[p]! + fix[p]! <= params.maxTotalEvseCurrent || allZero,
                    `EVSE feeder L${p + 1}`,
                );
            }
        }
    }
    // The budget is the configured share minus reserve and the active penalty.
    const maxTotal = snapshot.maxTotalCurrent ?? params.maxTotalCurrent;
    const base = Math.floor((maxTotal * params.maxTotalCurPrc) / 100) - params.reserveCurrent;
    assert.ok(
        budget.every((b) => b <= base),
        'penalty never raises the budget',
    );

    for (const e of config.evses) {
        const s = sp(e.id);
        const prev = mem(e.id);
        const prevSet = prev?.setpoint ?? 0;
        if (!controlled(s)) continue;
        // 2. Never 1…min−1 mA, never above the maximum.
        assert.ok(
            s.current === 0 || (s.current >= e.minCurrent && s.current <= e.maxCurrent),
            `minimum: ${e.id} ${s.current}`,
        );
        assert.ok(s.current === 0 || s.current >= 6000, 'IEC 61851 minimum');
        // 3. Stale site data: fail-safe current, never rising.
        if (chainOf(e.group).some((n) => staleNodes.has(n))) {
            assert.ok(
                s.current <= prevSet && s.current <= e.failSafeCurrent,
                `fail-safe: ${e.id} ${prevSet} → ${s.current}`,
            );
        }
        // 4. Up with care.
        if (s.current > prevSet) {
            assert.ok(now - before.lastReductionAt >= params.increaseHoldMs, `hold: ${e.id}`);
            const step =
                prevSet > 0
                    ? params.maxIncreasePerCycle
                    : Math.max(e.minCurrent, params.maxIncreasePerCycle);
            assert.ok(s.current - prevSet <= step, `ramp: ${e.id} ${prevSet} → ${s.current}`);
        }
        // 5. Pauses are real.
        if (
            prev?.pausedSince !== null &&
            prev?.pausedSince !== undefined &&
            now - prev.pausedSince < params.minPauseTimeMs
        ) {
            assert.equal(s.current, 0, `pause: ${e.id}`);
        }
        // A limit from rules, overrides or budgets is never exceeded.
        const limit = snapshot.limits?.get(e.id);
        if (limit !== undefined) assert.ok(s.current <= limit, `limit: ${e.id}`);
    }
    // 4b. No raise in a cycle that reduces another wallbox.
    const moved = config.evses.filter((e) => controlled(sp(e.id)));
    const reducedAny = moved.some((e) => sp(e.id).current < (mem(e.id)?.setpoint ?? 0));
    const raisedAny = moved.some((e) => sp(e.id).current > (mem(e.id)?.setpoint ?? 0));
    assert.ok(!(reducedAny && raisedAny), 'a reduction and a raise in the same cycle');

    // 6. Imbalance.
    if (params.maxImbalance > 0) {
        const t: [number, number, number] = [...sum(config.evses, (e) => fixed.get(e.id)!)];
        if (params.imbalanceAdd) for (let p = 0; p < 3; p++) t[p]! += loadOf.get('')![p]!;
        for (const e of moved)
            for (let p = 0; p < 3; p++) if (sp(e.id).phases & (1 << p)) t[p]! += sp(e.id).current;
        const hi = t.indexOf(Math.max(...t));
        const lo = t.indexOf(Math.min(...t));
        const culpritsLeft = moved.some(
            (e) =>
                sp(e.id).current > e.minCurrent - 1 &&
                sp(e.id).current > 0 &&
                sp(e.id).phases & (1 << hi) &&
                !(sp(e.id).phases & (1 << lo)),
        );
        if (culpritsLeft && t[hi]! - t[lo]! > params.maxImbalance - 1000)
            coverage.imbalanceBinding++;
        assert.ok(
            t[hi]! - t[lo]! <= params.maxImbalance || !culpritsLeft,
            `imbalance ${t.join('/')} > ${params.maxImbalance}`,
        );
    }

    // 7. Disabled wallboxes get disable_policy.
    const release = releaseCommands(config);
    for (const e of config.evses) {
        if (e.enabled) continue;
        const s = sp(e.id);
        const cmd = release.get(e.id)!;
        assert.equal(s.current, cmd.current);
        assert.equal(s.chargingEnabled, cmd.chargingEnabled);
        assert.equal(s.released, cmd.released);
    }
}

describe('allocator invariants (property tests)', function () {
    this.timeout(300_000 * SCALE);

    it(`hold on ${10_000 * SCALE} random sites and cycle sequences`, () => {
        fc.assert(
            fc.property(arbSite, arbCycles, (config, cycles) => {
                let memory = emptyMemory();
                let now = 1_000_000;
                let prev: Snapshot | undefined;
                const lastLoad = new Map<string, Phases3>();
                const lastKey = new Map<string, string>();
                for (const cycle of cycles) {
                    now += cycle.dt;
                    const snapshot = buildSnapshot(config, cycle, now, prev, memory);
                    const result = allocate(snapshot, config, memory);
                    checkCycle({ config, snapshot, before: memory, result, lastLoad, lastKey });
                    memory = result.memory;
                    prev = snapshot;
                }
            }),
            { numRuns: 10_000 * SCALE },
        );
        // Every path the invariants guard must have been exercised often.
        for (const [path, count] of Object.entries(coverage)) {
            assert.ok(
                count >= coverage.cycles * 0.002,
                `only ${count} of ${coverage.cycles} cycles exercised ${path}`,
            );
        }
    });

    it('shutdown applies disable_policy to every wallbox', () => {
        fc.assert(
            fc.property(arbSite, (config) => {
                const cmds = releaseCommands(config);
                for (const e of config.evses) {
                    const c = cmds.get(e.id)!;
                    const policy = config.params.disablePolicy;
                    if (policy === 0)
                        assert.deepEqual(c, {
                            current: 0,
                            chargingEnabled: false,
                            released: false,
                        });
                    if (policy === 1)
                        assert.deepEqual(c, {
                            current: e.minCurrent,
                            chargingEnabled: true,
                            released: false,
                        });
                    if (policy === -1)
                        assert.deepEqual(c, {
                            current: e.maxCurrent,
                            chargingEnabled: true,
                            released: true,
                        });
                }
            }),
            { numRuns: 500 },
        );
    });
});
