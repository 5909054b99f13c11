// Property tests: random sites and random sequences of cycles run against a physical model of the
// site (test/support/world.ts). The safety oracle below checks what the wires would carry, computed
// from the generated physics and the specification alone: each car at the full setpoint of its
// wallbox on the phases it really uses, the household as the meters showed it, and a limit of
// max_total_current − reserve_current − the overdraw penalty that the oracle tracks itself. Nothing
// the allocator reports about its own budget, loads or phase masks is trusted.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocate, releaseCommands } from '../../../lib/core/allocate';
import { emptyMemory, PHASE_LEARN_THRESHOLD } from '../../../lib/core/defaults';
import {
    MeterRole,
    type AllocationResult,
    type EvseSetpoint,
    type Phases3,
} from '../../../lib/core/types';
import {
    arbCycles,
    arbSite,
    buildingMask,
    onMask,
    World,
    ZERO,
    type Cycle,
    type CycleTruth,
    type TestSite,
} from '../../support/world';

const SCALE = Number(process.env.EVCM_PROPERTY_SCALE ?? '1');
const CASES = Math.round(10_000 * SCALE);
/** A fixed seed replays the same cases (the mutation run uses one); unset, every run explores anew. */
const SEED = process.env.EVCM_PROPERTY_SEED ? Number(process.env.EVCM_PROPERTY_SEED) : undefined;
/** `seed|path` from a failure: runs that counterexample again. */
const REPLAY = process.env.EVCM_PROPERTY_REPLAY?.split('|');
/** Set: a failure's counterexample is run once more with a trace of every cycle. */
const TRACE = !!process.env.EVCM_PROPERTY_TRACE;

/** How often the interesting paths were taken: a property that never binds proves nothing. */
const coverage = {
    cycles: 0,
    charging: 0,
    siteBinding: 0,
    groupBinding: 0,
    evseFeederBinding: 0,
    penaltyBinding: 0,
    powerOnlyBinding: 0,
    unknownPhasesCharging: 0,
    unmeteredUnderdraw: 0,
    imbalanceBinding: 0,
    failSafe: 0,
    paused: 0,
    unreachable: 0,
    phaseSwitching: 0,
    switchedToOne: 0,
};

/** The household as the manager can know it at one node, from the newest reading it has. */
interface Household {
    value: Phases3;
    /** Equal to the manager's own estimate (no assumption about an unmetered car in it). */
    exact: boolean;
    /** Whole-mA rounding of power-only meters' per-phase share (mA). */
    rounding: number;
}

const HOUSE_SIGN: Record<number, 1 | -1 | 0> = {
    [MeterRole.consumption]: 1,
    [MeterRole.production]: -1,
    [MeterRole.storageHome]: 0, // its charge counts, its discharge never offsets other loads
};

/**
 * Tracks, across the cycles of one case, what the specification says the manager may know and
 * must respect, and checks every decision against the physics.
 */
class Oracle {
    private readonly config: TestSite['config'];
    private readonly params: TestSite['config']['params'];
    private readonly nodes: string[];
    /** Wallbox positions below each node (its own group, the groups above it, the site). */
    private readonly below = new Map<string, number[]>();
    private readonly chains: string[][];
    private readonly metersOf = new Map<string, string[]>();
    /** Last current the manager returned per wallbox. */
    private readonly setpoint: number[];
    private readonly household = new Map<string, Household>();
    private readonly readingKey = new Map<string, string>();
    /** Overdraws measured at the site: each cuts the limit by its size for the penalty time. */
    private readonly overdraws: { until: number; amount: number }[] = [];
    private lastReductionAt = -Infinity;
    private readonly pausedSince: (number | null)[];
    /** Wallbox-side phases the manager has seen each car use since it was seen to arrive. */
    private readonly seenPhases: number[];

    constructor(
        private readonly site: TestSite,
        world: World,
        private readonly tracing = false,
    ) {
        this.config = site.config;
        this.params = site.config.params;
        const { evses, groups } = this.config;
        this.nodes = ['', ...groups.map((g) => g.id)];
        this.chains = evses.map((e) => world.chain(e.group));
        for (const n of this.nodes) this.below.set(n, []);
        this.chains.forEach((chain, i) => chain.forEach((n) => this.below.get(n)!.push(i)));
        const siteMeters =
            site.mode === 'grid' ? ['M1'] : site.mode === 'house' ? ['M1', 'M2', 'M3'] : [];
        this.metersOf.set('', siteMeters);
        for (const g of groups) this.metersOf.set(g.id, g.meter ? [g.meter] : []);
        this.setpoint = evses.map(() => 0);
        this.pausedSince = evses.map(() => null);
        this.seenPhases = evses.map(() => 0);
    }

    /** The household at `node` from a new reading: what the meters show minus the cars below. */
    private newHousehold(node: string, truth: CycleTruth): Household {
        const { evses } = this.config;
        const meters = this.metersOf.get(node)!;
        const powerOnly = meters.filter((m) => this.site.powerOnly.has(m)).length;
        if (node === '' && this.site.mode === 'house') {
            // Consumption minus production plus storage charge, each as its meter shows it.
            const value: [number, number, number] = [0, 0, 0];
            for (const id of meters) {
                const m = this.config.meters.find((x) => x.id === id)!;
                const shown = truth.meters.get(id)!.shown;
                for (let p = 0; p < 3; p++) {
                    const sign = HOUSE_SIGN[m.role]!;
                    value[p]! += sign === 0 ? Math.max(0, shown[p]!) : sign * shown[p]!;
                }
            }
            return { value, exact: true, rounding: powerOnly };
        }
        // A meter that includes the wallboxes: the true other load on the feeder. Where a wallbox
        // has no fresh measurement of its car while it reports charging, the specification has the
        // manager take the car to draw its setpoint (static load management): what such a car
        // leaves unused hides in the household the manager derives. That difference, and only
        // that, is allowed — on any phase the manager may count the car on.
        const value: [number, number, number] = [...truth.other.get(node)!];
        let exact = true;
        for (const i of this.below.get(node)!) {
            const e = evses[i]!;
            const w = truth.wallboxes[i]!;
            const charging = w.state === 3 || w.state === 4;
            // The manager separates a measured car exactly (an enabled one only while it can read
            // its wallbox); any other car's draw stays in the household it derives.
            const separated = w.measured && (w.readable || !e.enabled);
            if (e.enabled && w.readable && !w.measured && charging) {
                const assumed = onMask(
                    buildingMask(e.usedPhases || 7, e.phaseRotation),
                    this.setpoint[i]!,
                );
                for (let p = 0; p < 3; p++) {
                    const unused = assumed[p]! - w.draw[p]!;
                    if (unused !== 0) exact = false;
                    if (unused > 0) value[p]! -= unused;
                }
            } else if (!separated && w.draw.some((d) => d > 0)) exact = false;
        }
        if (!powerOnly) return { value, exact, rounding: 0 };
        // Power only: the phases cannot be told apart; the household is taken as balanced.
        const each = (value[0] + value[1] + value[2]) / 3;
        return { value: [each, each, each], exact, rounding: 3 * powerOnly };
    }

    /** One line per wallbox and node, to follow a replayed counterexample cycle by cycle. */
    private trace(truth: CycleTruth, result: AllocationResult, limits: readonly number[]): void {
        const lines = [`t=${truth.now} max=${truth.snapshot.maxTotalCurrent ?? '-'}`];
        this.config.evses.forEach((e, i) => {
            const w = truth.wallboxes[i]!;
            const s = result.setpoints.get(e.id)!;
            lines.push(
                `  ${e.id}${e.enabled ? '' : ' disabled'} ${this.site.metering[i]} used=${e.usedPhases} rot=${e.phaseRotation}` +
                    ` min=${e.minCurrent} max=${e.maxCurrent} prio=${e.prio} group=${e.group || '-'}` +
                    ` | car=${w.car ? w.car.phases : '-'} mask=${w.carMask} state=${w.state}` +
                    ` ${w.readable ? 'read' : 'UNREAD'} measured=${w.measured ?? '-'} draw=${w.draw}` +
                    ` seen=${this.seenPhases[i]} | ${this.setpoint[i]} -> ${s.current} ${s.state}` +
                    ` phases=${s.phases} limit=${limits[i]}`,
            );
        });
        for (const [id, m] of truth.meters)
            lines.push(`  ${id} fresh=${m.fresh} at=${m.takenAt} shown=${m.shown.map(Math.round)}`);
        lines.push(`  other=${[...truth.other].map(([n, v]) => `${n || 'site'}:${v}`).join(' ')}`);
        lines.push(
            `  allocator: budget=${result.site.budget} load=${result.site.nonEvseLoad} penalty=${result.site.penalty}`,
        );
        console.warn(lines.join('\n'));
    }

    check(truth: CycleTruth, result: AllocationResult, limits: readonly number[]): void {
        const { params, config } = this;
        const { evses } = config;
        const now = truth.now;
        const sp = (i: number): EvseSetpoint => result.setpoints.get(evses[i]!.id)!;

        if (this.tracing) this.trace(truth, result, limits);
        if (!params.lbEnabled) {
            for (const s of result.setpoints.values())
                assert.equal(s.write, false, 'observe mode writes nothing');
            return;
        }
        coverage.cycles++;

        // Which wallboxes the manager controls this cycle: enabled, with a fresh reading.
        const controlled = evses.map((e, i) => e.enabled && truth.wallboxes[i]!.readable);
        for (let i = 0; i < evses.length; i++) {
            const w = truth.wallboxes[i]!;
            // The phases the manager can know: seen in use since it saw the car arrive; a
            // wallbox it cannot read may have a different car by now.
            if (!w.readable || w.state < 2 || w.state > 4) this.seenPhases[i] = 0;
            if (w.readable && (w.state === 3 || w.state === 4) && w.measured)
                for (let p = 0; p < 3; p++)
                    if (w.measured[p]! >= PHASE_LEARN_THRESHOLD) this.seenPhases[i]! |= 1 << p;
        }

        // Households from new readings; a node with a stale or failing meter keeps its last one.
        const stale = new Set<string>();
        let siteReadingIsNew = false;
        for (const node of this.nodes) {
            const meters = this.metersOf.get(node)!;
            if (!meters.length) continue;
            if (!meters.every((m) => truth.meters.get(m)!.fresh)) {
                stale.add(node);
                continue;
            }
            const key = meters.map((m) => truth.meters.get(m)!.takenAt).join('/');
            if (this.readingKey.get(node) === key) continue;
            this.readingKey.set(node, key);
            this.household.set(node, this.newHousehold(node, truth));
            if (node === '') siteReadingIsNew = true;
        }
        const householdOf = (node: string): Household =>
            this.household.get(node) ?? { value: ZERO, exact: true, rounding: 0 };

        // Overdraw: a phase the grid meter measured above the maximum cuts the limit by that much
        // for overdraw_penalty_time. (Consumption/production meters measure no site current: the
        // oracle then tracks no penalty, which only makes it more lenient.)
        const maxTotal = truth.snapshot.maxTotalCurrent ?? params.maxTotalCurrent;
        const effectiveMax = (maxTotal * params.maxTotalCurPrc) / 100;
        if (this.site.mode === 'grid' && siteReadingIsNew && params.overdrawPenaltyMs > 0) {
            const shown = truth.meters.get('M1')!.shown;
            const over = Math.max(...shown) - effectiveMax;
            if (over > 0)
                this.overdraws.push({ until: now + params.overdrawPenaltyMs, amount: over });
        }
        let penalty = 0;
        for (const o of this.overdraws) if (now < o.until) penalty = Math.max(penalty, o.amount);

        // 1. Fuse: every node, every building phase, with each car at its wallbox's limit on the
        // phases it really uses.
        const worst = truth.wallboxes.map((w, i) => onMask(w.carMask, limits[i]!));
        const zeroOn = (node: string, p: number) =>
            this.below
                .get(node)!
                .every(
                    (i) =>
                        !controlled[i] ||
                        !(truth.wallboxes[i]!.carMask & (1 << p)) ||
                        sp(i).current === 0,
                );
        for (const node of this.nodes) {
            const metered = this.metersOf.get(node)!.length > 0;
            const load = metered ? householdOf(node) : undefined;
            const base =
                node === ''
                    ? effectiveMax - params.reserveCurrent
                    : config.groups.find((g) => g.id === node)!.maxCurrent;
            const limit = (node === '' ? base - penalty : base) + (load?.rounding ?? 0);
            for (let p = 0; p < 3; p++) {
                let cars = 0;
                for (const i of this.below.get(node)!) cars += worst[i]![p]!;
                const total = cars + (load ? load.value[p]! : 0);
                const allZero = zeroOn(node, p);
                if (!allZero && total > limit - 1000) {
                    if (node !== '') coverage.groupBinding++;
                    else {
                        coverage.siteBinding++;
                        if (penalty > 0) coverage.penaltyBinding++;
                        if (this.site.powerOnly.has('M1')) coverage.powerOnlyBinding++;
                    }
                }
                assert.ok(
                    total <= limit || allZero,
                    `fuse: node '${node}' L${p + 1}: ${total} > ${limit} (penalty ${penalty})`,
                );
                if (node === '' && params.maxTotalEvseCurrent > 0) {
                    if (!allZero && cars > params.maxTotalEvseCurrent - 1000)
                        coverage.evseFeederBinding++;
                    assert.ok(
                        cars <= params.maxTotalEvseCurrent || allZero,
                        `EVSE feeder L${p + 1}: ${cars} > ${params.maxTotalEvseCurrent}`,
                    );
                }
            }
        }

        const states = [...result.setpoints.values()];
        if (states.some((x) => x.current > 0 && x.state === 'charging')) coverage.charging++;
        if (states.some((x) => x.state === 'failsafe')) coverage.failSafe++;
        if (states.some((x) => x.state === 'paused')) coverage.paused++;
        if (states.some((x) => x.state === 'switching')) coverage.phaseSwitching++;
        if (
            truth.wallboxes.some(
                (w, i) =>
                    controlled[i] &&
                    w.car &&
                    evses[i]!.phaseSwitch &&
                    sp(i).phases === buildingMask(1, evses[i]!.phaseRotation) &&
                    sp(i).current > 0,
            )
        )
            coverage.switchedToOne++;
        if (
            truth.wallboxes.some(
                (w, i) => evses[i]!.enabled && !w.readable && limits[i]! > 0 && w.car,
            )
        )
            coverage.unreachable++;
        if (
            evses.some(
                (e, i) =>
                    controlled[i] &&
                    e.usedPhases === 0 &&
                    this.seenPhases[i] === 0 &&
                    truth.wallboxes[i]!.car !== undefined &&
                    truth.wallboxes[i]!.car!.phases !== 7 &&
                    sp(i).current > 0,
            )
        )
            coverage.unknownPhasesCharging++;
        if (
            truth.wallboxes.some(
                (w, i) =>
                    controlled[i] &&
                    !w.measured &&
                    (w.state === 3 || w.state === 4) &&
                    Math.max(...w.draw) < this.setpoint[i]!,
            )
        )
            coverage.unmeteredUnderdraw++;

        const wanted = (i: number) => {
            const e = evses[i]!;
            const w = truth.wallboxes[i]!;
            const cap = truth.snapshot.limits?.get(e.id) ?? Infinity;
            // A wallbox that switches phases has a cap per phase count: wanted under both.
            const pl = e.phaseSwitch ? truth.snapshot.phaseLimits?.get(e.id) : undefined;
            const byPhases = pl ? Math.min(pl.one, pl.three) : Infinity;
            return (
                w.state >= 2 &&
                w.state <= 4 &&
                Math.min(e.maxCurrent, cap, byPhases) >= e.minCurrent
            );
        };
        let reduced = false;
        let raised = false;
        for (let i = 0; i < evses.length; i++) {
            const e = evses[i]!;
            const s = sp(i);
            const prev = this.setpoint[i]!;
            if (!e.enabled) {
                // 7. A disabled wallbox gets disable_policy: 0 off, 1 its minimum, −1 released.
                const policy = params.disablePolicy;
                assert.equal(
                    s.current,
                    policy === 1 ? e.minCurrent : policy === -1 ? e.maxCurrent : 0,
                );
                assert.equal(s.chargingEnabled, policy !== 0);
                assert.equal(s.released, policy === -1);
                continue;
            }
            if (!controlled[i]) continue;
            assert.equal(s.write, true, `a controlled wallbox is written: ${e.id}`);
            assert.equal(s.chargingEnabled, s.current > 0);
            assert.equal(s.released, false);
            // 2. Never 1…min−1 mA, never above the maximum.
            assert.ok(
                s.current === 0 || (s.current >= e.minCurrent && s.current <= e.maxCurrent),
                `minimum: ${e.id} ${s.current}`,
            );
            assert.ok(s.current === 0 || s.current >= 6000, 'IEC 61851 minimum');
            // 8. A phase switch stops the car throughout, and only where the wallbox switches.
            if (s.state === 'switching') {
                assert.ok(e.phaseSwitch, `${e.id} switches phases without switch_phases`);
                assert.equal(s.current, 0, `${e.id} charges during a phase switch`);
            }
            // 3. A stale or failing meter on its chain: fail-safe current, never rising.
            if (this.chains[i]!.some((n) => stale.has(n))) {
                assert.ok(
                    s.current <= prev && s.current <= e.failSafeCurrent,
                    `fail-safe: ${e.id} ${prev} → ${s.current}`,
                );
            }
            // 4. Up with care: not within the hold time after a reduction, and by steps.
            if (s.current > prev) {
                raised = true;
                assert.ok(
                    now - this.lastReductionAt >= params.increaseHoldMs,
                    `hold: ${e.id} raised ${now - this.lastReductionAt} ms after a reduction`,
                );
                const step =
                    prev > 0
                        ? params.maxIncreasePerCycle
                        : Math.max(e.minCurrent, params.maxIncreasePerCycle);
                assert.ok(s.current - prev <= step, `ramp: ${e.id} ${prev} → ${s.current}`);
            }
            if (s.current < prev) reduced = true;
            // 5. Pauses are real.
            const since = this.pausedSince[i]!;
            if (since !== null && now - since < params.minPauseTimeMs)
                assert.equal(s.current, 0, `pause: ${e.id}`);
            // A limit from rules, overrides or budgets is never exceeded.
            const cap = truth.snapshot.limits?.get(e.id);
            if (cap !== undefined) assert.ok(s.current <= cap, `limit: ${e.id}`);
            const pl = e.phaseSwitch ? truth.snapshot.phaseLimits?.get(e.id) : undefined;
            if (pl) assert.ok(s.current <= Math.max(pl.one, pl.three), `phase limit: ${e.id}`);
        }
        // 4b. Capacity freed by a reduction is not handed on in the same cycle.
        assert.ok(!(reduced && raised), 'a reduction and a raise in the same cycle');

        // 6. Imbalance over the phases the manager knows (configured, or seen in use; all three
        // until then), with the uncontrolled wallboxes at what they may draw.
        // (Not checked while a wallbox that switches phases charges: which phases the manager
        // can know for it after a switch whose answer was lost is not modelled here.)
        if (
            params.maxImbalance > 0 &&
            truth.wallboxes.every((w) => w.readable) &&
            !evses.some((e, i) => e.phaseSwitch && sp(i).current > 0)
        ) {
            const site = householdOf('');
            if (!params.imbalanceAdd || site.exact) {
                const known = evses.map((e, i) =>
                    buildingMask(e.usedPhases || this.seenPhases[i] || 7, e.phaseRotation),
                );
                const t: [number, number, number] = params.imbalanceAdd
                    ? [...site.value]
                    : [0, 0, 0];
                for (let i = 0; i < evses.length; i++) {
                    const value = evses[i]!.enabled ? sp(i).current : limits[i]!;
                    for (let p = 0; p < 3; p++) if (known[i]! & (1 << p)) t[p]! += value;
                }
                const hi = t.indexOf(Math.max(...t));
                const lo = t.indexOf(Math.min(...t));
                const culpritsLeft = evses.some(
                    (e, i) =>
                        e.enabled &&
                        sp(i).current > 0 &&
                        known[i]! & (1 << hi) &&
                        !(known[i]! & (1 << lo)),
                );
                if (culpritsLeft && t[hi]! - t[lo]! > params.maxImbalance - 1000)
                    coverage.imbalanceBinding++;
                assert.ok(
                    t[hi]! - t[lo]! <= params.maxImbalance + site.rounding || !culpritsLeft,
                    `imbalance ${t.join('/')} > ${params.maxImbalance}`,
                );
            }
        }

        // Memory for the next cycle.
        if (reduced) this.lastReductionAt = now;
        for (let i = 0; i < evses.length; i++) {
            const s = sp(i).current;
            const w = truth.wallboxes[i]!;
            if (controlled[i]) {
                const plugged = w.state >= 2 && w.state <= 4;
                if (!plugged || s > 0) this.pausedSince[i] = null;
                // A stop for a phase switch is not a pause (no pause time follows it).
                else if (this.setpoint[i]! > 0 && wanted(i) && sp(i).state !== 'switching')
                    this.pausedSince[i] = now;
            }
            this.setpoint[i] = s;
        }
    }
}

/** One case: the world and the allocator cycle by cycle, the oracle checking each decision. */
function runCase(site: TestSite, cycles: readonly Cycle[], tracing = false): void {
    const world = new World(site);
    const oracle = new Oracle(site, world, tracing);
    let memory = emptyMemory();
    for (const cycle of cycles) {
        const truth = world.step(cycle);
        const result = allocate(truth.snapshot, site.config, memory);
        world.apply(result);
        oracle.check(truth, result, world.limits());
        memory = result.memory;
    }
}

describe('allocator invariants (property tests)', function () {
    this.timeout(600_000 * Math.max(1, SCALE));

    it(`hold against an independent oracle on ${CASES} random sites and cycle sequences`, () => {
        fc.assert(
            fc.property(arbSite, arbCycles, (site, cycles) => runCase(site, cycles)),
            {
                numRuns: CASES,
                ...(SEED !== undefined ? { seed: SEED } : {}),
                ...(REPLAY ? { seed: Number(REPLAY[0]), path: REPLAY[1] } : {}),
                // The counterexample (a site and up to 16 cycles of events) runs to thousands of
                // lines; the failed check, the seed and the path replay it.
                reporter: (run) => {
                    if (!run.failed) return;
                    const site = run.counterexample?.[0];
                    if (TRACE && run.counterexample) {
                        try {
                            runCase(...run.counterexample, true);
                        } catch {
                            // the same failure, now traced
                        }
                    }
                    throw new Error(
                        `${run.numRuns} cases, shrunk ${run.numShrinks} times: ${
                            run.errorInstance instanceof Error
                                ? run.errorInstance.message
                                : String(run.errorInstance)
                        }\n  site: ${site?.config.evses.length} wallboxes, ${site?.config.groups.length} groups, meters ${site?.mode}` +
                            `\n  replay: { seed: ${run.seed}, path: '${run.counterexamplePath}' }`,
                    );
                },
            },
        );
        if (process.env.EVCM_PROPERTY_COVERAGE) console.warn(coverage);
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
            fc.property(arbSite, ({ config }) => {
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
