// The limits stage of the control cycle (sense → limits → decide → act → publish): everything
// that caps a wallbox besides the physics, in one place and one order, owned by the Site so that
// the safety caps (authorisation, used-up budgets, override C) hold with or without the /cnf API.
//
// Each cycle: sessions end for unplugged cars → cards at the wallboxes' readers count as entered
// → budgets are charged with what was used → formula and rule caps → authorisation caps →
// overrides and plans → one map, the lowest cap of each wallbox winning.
import type { CycleLimits, LimitsStage } from '../core/engine';
import type { EvseReading, MeterReading, PhaseLimits } from '../core/types';
import type { Formula, Resolver } from '../rules/formula';
import {
    combineRuleResults,
    evaluateRules,
    localTime,
    NEW_RULE_STATE,
    type ChargingRule,
    type RuleEnvironment,
    type RuleState,
} from '../rules/rules';
import { planEnergy } from '../prices/planner';
import { siteSurplus, type StorageSample } from '../rules/surplus';
import type { Authorisation } from '../users/authorisation';
import { BudgetLedger } from '../users/budget';
import {
    OVERRIDE,
    overrideCap,
    planCap,
    type Override,
    type Plan,
    type PlanTarget,
} from './controls';
import { evaluateLimit, parseSiteFormula, siteResolver } from './formula-scope';
import {
    isEvse,
    isGroup,
    isMeter,
    staticMaxCurrent,
    type DeviceEntry,
    type EvseEntry,
} from './schema';
import type { Site } from './site';

export class SiteLimits implements LimitsStage {
    /** override_device per wallbox; ends when the car is unplugged. */
    readonly overrides = new Map<string, Override>();
    /** Charging plans per wallbox (set_cplan). */
    readonly plans = new Map<string, Plan>();
    /** Energy and time used against users' and cards' budgets. */
    readonly budgets = new BudgetLedger();
    /** Problems of the last cycle's formulas (limits, rules, variables), one line each. */
    formulaErrors: readonly string[] = [];
    private overridesEnded = 0;
    /** Wallboxes whose session was ended because its budget was used up. */
    private readonly budgetStopped = new Set<string>();
    private readonly ruleStates = new Map<string, RuleState>();
    private readonly formulas = new Map<string, Formula>();
    /** max_total_current and formula-valued wallbox maxima of the last cycle (mA). */
    private maxTotalNow: number;
    private readonly evseMaxNow = new Map<string, number>();
    /** What the home batteries have shown they can take (W), for battery first. */
    private storageChargeW = 0;

    constructor(
        private readonly site: Site,
        readonly authorisation: Authorisation,
        /** Another source of caps (a flow, a test): merged in here, the lower cap winning. */
        private readonly external?: LimitsStage,
    ) {
        // A formula counts as 0 until its first evaluation: nothing charges on a value nobody set.
        const total = site.params.max_total_current;
        this.maxTotalNow = typeof total === 'number' ? total : 0;
    }

    /** Bumped when a cycle ends overrides or enters cards (views that cache key on it). */
    get revision(): number {
        return this.overridesEnded + this.authorisation.revision;
    }

    /** max_total_current in force (mA): the number, or the formula's value in the last cycle. */
    get maxTotalCurrentNow(): number {
        return this.maxTotalNow;
    }

    /** A wallbox's maximum in force (mA): the number, or its formula's value in the last cycle. */
    maxChargingCurrentNow(e: EvseEntry): number {
        return typeof e.max_charging_cur === 'number'
            ? e.max_charging_cur
            : (this.evseMaxNow.get(e.dev_id) ?? 0);
    }

    /** The site's parameters or devices changed: formulas are parsed afresh. */
    configChanged(): void {
        const total = this.site.params.max_total_current;
        if (typeof total === 'number') this.maxTotalNow = total;
        this.formulas.clear();
    }

    deviceRemoved(devId: string): void {
        this.evseMaxNow.delete(devId);
    }

    /** This cycle's caps. Called by the engine once per cycle, after sensing. */
    limits(now: number): CycleLimits {
        const auth = this.authorisation;
        for (const id of auth.forgetUnplugged()) {
            if (this.overrides.delete(id)) this.overridesEnded++;
        }
        auth.takeReaderCards(now);
        this.site.trackSessions(now);
        const budgetSpent = this.recordBudgets(now);

        const own = this.formulaAndRuleCaps(now);
        const limits = own.limits;
        const phaseLimits = own.phaseLimits;
        const cap = (id: string, mA: number): void => {
            limits.set(id, Math.min(mA, limits.get(id) ?? Infinity));
        };
        for (const id of auth.unauthorised()) cap(id, 0);
        for (const id of budgetSpent) {
            cap(id, 0);
            // A wallbox that runs sessions of its own (OCPP) has this one ended (asked again each
            // cycle until it did).
            if (!this.budgetStopped.has(id)) {
                this.budgetStopped.add(id);
                void this.site.stopSession(id).then((ended) => {
                    if (!ended) this.budgetStopped.delete(id);
                });
            }
        }
        for (const id of this.budgetStopped) {
            if (!budgetSpent.includes(id)) this.budgetStopped.delete(id);
        }
        for (const [id, o] of this.overrides) {
            const c = overrideCap(o);
            if (c !== null) cap(id, c);
        }
        if (this.plans.size) {
            const t = new Date(now);
            const minute = t.getHours() * 60 + t.getMinutes();
            for (const [id, plan] of this.plans) {
                const c = planCap(plan, minute);
                if (c !== null) cap(id, c);
                if (!plan.target) continue;
                if (now >= plan.target.departure) {
                    // Departed: the target ends, the wallbox charges as it would without it.
                    delete plan.target;
                    if (!plan.cplan.length) this.plans.delete(id);
                    continue;
                }
                const e = this.site.device(id);
                if (e && isEvse(e) && !this.targetAllows(e, plan.target, now)) cap(id, 0);
            }
        }

        let maxTotal = own.maxTotalCurrent ?? Infinity;
        if (this.external) {
            const outside = this.external.limits(now);
            outside.limits?.forEach((mA, id) => cap(id, mA));
            maxTotal = Math.min(maxTotal, outside.maxTotalCurrent ?? Infinity);
        }
        const out: CycleLimits =
            maxTotal < Infinity ? { limits, maxTotalCurrent: maxTotal } : { limits };
        if (phaseLimits.size) out.phaseLimits = phaseLimits;
        const choice = this.phaseChoice();
        if (choice.size) out.phaseChoice = choice;
        return out;
    }

    /**
     * Phases chosen for a session at wallboxes that switch: override_device `phases`, else the
     * card entered there (its `used_phases`, 0 = no choice: one phase bit is one phase, more are
     * three).
     */
    private phaseChoice(): Map<string, 1 | 3> {
        const out = new Map<string, 1 | 3>();
        for (const e of this.site.evses) {
            if (!e.switch_phases) continue;
            const chosen = this.overrides.get(e.dev_id)?.phases;
            if (chosen) {
                out.set(e.dev_id, chosen);
                continue;
            }
            const entered = this.authorisation.rfids.get(e.dev_id)?.rfid;
            const card = entered
                ? this.authorisation.userAt(e.dev_id)?.rfids.find((r) => r.id === entered)
                : undefined;
            const bits = card?.used_phases ?? 0;
            if (bits) out.set(e.dev_id, (bits & (bits - 1)) === 0 ? 1 : 3);
        }
        return out;
    }

    /**
     * A plan's target this cycle: counts what the car charged since the last cycle, then decides
     * from the prices whether now is among the cheapest time for what is still missing. The
     * power assumed is the wallbox's maximum on the phases it is counted on, within the site's
     * limit; the allocator keeps the fuse whatever the plan says.
     */
    private targetAllows(e: EvseEntry, target: PlanTarget, now: number): boolean {
        const site = this.site;
        const r = site.manager.deviceState(e.dev_id).sample.reading as EvseReading | undefined;
        const counter = r?.totalEnergyWh;
        if (counter !== undefined) {
            // A counter that went down (a wallbox that restarted) starts counting again from there.
            if (target.lastCounterWh !== undefined && counter >= target.lastCounterWh) {
                target.chargedWh += counter - target.lastCounterWh;
            }
            target.lastCounterWh = counter;
        } else if (target.lastAt !== undefined && (r?.state === 3 || r?.state === 4)) {
            target.chargedWh += (Math.max(0, r.powerW ?? 0) * (now - target.lastAt)) / 3_600_000;
        }
        target.lastAt = now;

        const p = site.params;
        const siteMax = (this.maxTotalNow * p.max_total_cur_prc) / 100 - p.reserve_current;
        const evseFeeder = p.max_total_evse_current > 0 ? p.max_total_evse_current : Infinity;
        const current = Math.max(0, Math.min(this.maxChargingCurrentNow(e), siteMax, evseFeeder));
        const phases = phaseCountOf(
            site.manager.lastCycle?.result.setpoints.get(e.dev_id)?.phases,
            e,
        );
        const decision = planEnergy({
            now,
            departure: target.departure,
            energyWh: target.energyWh - target.chargedWh,
            powerW: (current / 1000) * phases * p.voltage,
            slots: site.prices.slots,
        });
        target.decision = decision;
        return decision.charge;
    }

    /**
     * Adds what each wallbox charged this cycle to its session's budget; returns the wallboxes
     * whose budget is used up.
     */
    private recordBudgets(now: number): string[] {
        const spent: string[] = [];
        const evses = this.site.evses;
        for (let i = 0; i < evses.length; i++) {
            const id = evses[i]!.dev_id;
            const session = this.authorisation.sessionBudgetAt(id);
            if (!session) continue;
            // The same count as the wallbox's session record: one figure for billing and budget.
            const step = this.site.sessions.step(id);
            if (step) this.budgets.charge(session, now, step.wh, step.chargingS);
            if (this.budgets.exhausted(session, now)) spent.push(id);
        }
        return spent;
    }

    /** Override E switches the wallbox's own charging rules off until the car is unplugged. */
    private evseRulesOff(devId: string): boolean {
        return ((this.overrides.get(devId)?.flags ?? 0) & OVERRIDE.evseRulesDisabled) !== 0;
    }

    /** The rules of the user identified at a wallbox; none under override U. */
    private userRulesAt(devId: string): readonly ChargingRule[] | undefined {
        if ((this.overrides.get(devId)?.flags ?? 0) & OVERRIDE.userRulesDisabled) return undefined;
        const rules = this.authorisation.userAt(devId)?.charging_rules;
        return rules?.length ? rules : undefined;
    }

    /**
     * What formulas and rules ask for this cycle: per-wallbox caps (formula-valued
     * max_charging_cur; EVSE and user charging rules, the smaller of the two) and a formula-valued
     * max_total_current. CM variables are calculated first, so that all of them read this
     * cycle's values.
     */
    private formulaAndRuleCaps(now: number): {
        limits: Map<string, number>;
        phaseLimits: Map<string, PhaseLimits>;
        maxTotalCurrent?: number;
    } {
        const limits = new Map<string, number>();
        // Wallboxes that switch phases: their rules' caps on one and on three phases.
        const phaseLimits = new Map<string, PhaseLimits>();
        const site = this.site;
        const p = site.params;
        const devices = site.devices;
        // Only the wallboxes with rules get an entry: most sites have none, every cycle.
        const withRules: {
            e: EvseEntry;
            own: readonly ChargingRule[] | undefined;
            user: readonly ChargingRule[] | undefined;
        }[] = [];
        const formulaMax: EvseEntry[] = [];
        for (let i = 0; i < devices.length; i++) {
            const e = devices[i]!;
            if (!isEvse(e)) continue;
            const own = this.evseRulesOff(e.dev_id) ? undefined : e.charging_rules;
            const user = this.userRulesAt(e.dev_id);
            if (own?.length || user?.length) withRules.push({ e, own, user });
            if (typeof e.max_charging_cur === 'string') formulaMax.push(e);
        }
        const formulaTotal = typeof p.max_total_current === 'string';
        if (!withRules.length && !formulaMax.length && !formulaTotal && !site.variables.size) {
            this.formulaErrors = [];
            return { limits, phaseLimits };
        }

        const errors: string[] = [];
        const power = (d: DeviceEntry) =>
            site.manager.deviceState(d.dev_id).sample.reading?.powerW ?? 0;
        const meters = devices.filter(isMeter).filter((m) => m.device_enabled && !m.group);
        const sum = (role: number) =>
            meters.filter((m) => m.role === role).reduce((t, m) => t + power(m), 0);
        const grid = meters.some((m) => m.role === 3);
        const gridW = sum(3);
        const evseW = devices.reduce((t, d) => (isEvse(d) ? t + power(d) : t), 0);
        const solarPowerW = sum(2);
        const storage: StorageSample[] = [];
        for (const m of meters) {
            if (m.role !== 5 && m.role !== 6) continue;
            const r = site.manager.deviceState(m.dev_id).sample.reading as MeterReading | undefined;
            if (!r) continue;
            storage.push({
                role: m.role,
                powerW: r.powerW,
                ...(r.soc !== undefined ? { soc: r.soc } : {}),
            });
        }
        const surplus = siteSurplus({
            ...(grid ? { gridW } : {}),
            evseW,
            productionW: solarPowerW,
            consumptionW: sum(1),
            storage,
            policy: { prioritySoc: p.battery_priority_soc, bufferSoc: p.battery_buffer_soc },
            chargePeakW: this.storageChargeW,
        });
        this.storageChargeW = surplus.chargePeakW;
        const surplusPowerW = surplus.surplusW;
        const setpoints = site.manager.lastCycle?.result.setpoints;
        let numCharging = 0;
        for (const sp of setpoints?.values() ?? []) if (sp.current > 0) numCharging++;

        const other = siteResolver({
            device: (id) => this.deviceView(id),
            gridDemandW: gridW,
            surplusW: surplusPowerW,
            storageHomeW: surplus.storageHomeW,
            storageAllW: surplus.storageAllW,
            maxTotalCurrent: this.maxTotalNow,
            numCharging,
            // Read when asked: `_set_price` may be a variable calculated in this cycle.
            price: () => site.priceNow(now),
        });
        if (site.variables.size) {
            for (const err of site.variables.evaluateAll(other).errors.values()) {
                errors.push(err.message);
            }
        }
        const resolve: Resolver = site.variables.resolver(other);

        let maxTotalCurrent: number | undefined;
        if (typeof p.max_total_current === 'string') {
            maxTotalCurrent = evaluateLimit(
                this.formula(p.max_total_current),
                resolve,
                10_000_000,
                'max_total_current',
                errors,
            );
            this.maxTotalNow = maxTotalCurrent;
        }
        for (const e of formulaMax) {
            const cap = evaluateLimit(
                this.formula(e.max_charging_cur as string),
                resolve,
                staticMaxCurrent(e.max_charging_cur),
                `${e.dev_id}.max_charging_cur`,
                errors,
            );
            this.evseMaxNow.set(e.dev_id, cap);
            limits.set(e.dev_id, cap);
        }

        const { weekday, minute } = localTime(now);
        const priceLevel = withRules.length ? site.priceNow(now).level : undefined;
        for (const { e, own, user } of withRules) {
            const env: RuleEnvironment = {
                weekday,
                minute,
                maxCurrent: this.maxChargingCurrentNow(e),
                minCurrent: e.min_charging_cur,
                phases: phaseCountOf(setpoints?.get(e.dev_id)?.phases, e),
                voltage: p.voltage,
                solarPowerW,
                surplusPowerW,
                batteryDrainW: surplus.drainW,
                resolve,
                ...(priceLevel === undefined ? {} : { priceLevel }),
            };
            // Rules that turn power into current give three times as much per phase on one phase:
            // both are asked (with the undercut state as it stands), the allocator chooses.
            const atPhases = (phases: number): number =>
                combineRuleResults(
                    this.peekRuleSet(e.dev_id, own, { ...env, phases }, now),
                    this.peekRuleSet(`${e.dev_id}/user`, user, { ...env, phases }, now),
                ) ?? Infinity;
            const byPhases = e.switch_phases ? { one: atPhases(1), three: atPhases(3) } : undefined;
            const evseResult = this.evaluateRuleSet(e.dev_id, own, env, now, errors);
            const userResult = this.evaluateRuleSet(`${e.dev_id}/user`, user, env, now, errors);
            const current = combineRuleResults(evseResult, userResult);
            if (byPhases) phaseLimits.set(e.dev_id, byPhases);
            else if (current !== null)
                limits.set(e.dev_id, Math.min(current, limits.get(e.dev_id) ?? Infinity));
        }
        this.formulaErrors = errors;
        return maxTotalCurrent === undefined
            ? { limits, phaseLimits }
            : { limits, phaseLimits, maxTotalCurrent };
    }

    /** One rule list's result (mA), null without enabled rules; keeps its undercut state. */
    private evaluateRuleSet(
        key: string,
        rules: readonly ChargingRule[] | undefined,
        env: RuleEnvironment,
        now: number,
        errors: string[],
    ): number | null {
        if (!rules?.length) {
            this.ruleStates.delete(key);
            return null;
        }
        const result = evaluateRules(rules, env, now, this.ruleStates.get(key) ?? NEW_RULE_STATE);
        this.ruleStates.set(key, result.state);
        for (const message of result.errors) errors.push(`${key} rule: ${message}`);
        return result.current;
    }

    /** A rule list's result for another environment, leaving its state alone; null without rules. */
    private peekRuleSet(
        key: string,
        rules: readonly ChargingRule[] | undefined,
        env: RuleEnvironment,
        now: number,
    ): number | null {
        if (!rules?.length) return null;
        return evaluateRules(rules, env, now, this.ruleStates.get(key) ?? NEW_RULE_STATE).current;
    }

    private formula(text: string): Formula {
        let f = this.formulas.get(text);
        if (!f) {
            f = parseSiteFormula(text); // checked when the setting was accepted
            this.formulas.set(text, f);
        }
        return f;
    }

    private deviceView(id: string) {
        const d = this.site.device(id);
        if (!d || isGroup(d)) return undefined;
        const state = this.site.manager.deviceState(id);
        return {
            kind: isEvse(d) ? ('evse' as const) : ('meter' as const),
            reading: state.sample.reading,
            comError: state.comError,
            ...(isEvse(d)
                ? { minCurrent: d.min_charging_cur, maxCurrent: this.maxChargingCurrentNow(d) }
                : {}),
        };
    }
}

/** Phases a car charges on, for turning PV power into current: what it is counted on, else its
 *  configured phases, else three. */
function phaseCountOf(mask: number | undefined, e: EvseEntry): number {
    const bits = mask || e.used_phases || 7;
    return (bits & 1) + ((bits >> 1) & 1) + ((bits >> 2) & 1);
}
