// A Site is one charging manager as users configure it: vendor-style parameters and device table,
// turned into the core's SiteConfig and a driver per device. Every change is validated whole
// before anything is swapped in: a rejected change leaves the running site untouched.
import { systemClock, type Clock } from '../core/clock';
import { DEFAULT_PARAMS } from '../core/defaults';
import { ChargingManager, type CycleInputs } from '../core/engine';
import type {
    DeviceDriver,
    DeviceFailSafe,
    EvseConfig,
    EvseReading,
    GroupConfig,
    MeterConfig,
    MeterReading,
    SiteConfig,
    SiteParams,
} from '../core/types';
import { createModbusDriver, isModbusDevType, type DriverContext } from '../devices/factory';
import { SimEvse, SimMeter, SimWorld } from '../devices/sim';
import { BusPool } from '../modbus/pool';
import type { Formula, Resolver } from '../rules/formula';
import {
    combineRuleResults,
    evaluateRules,
    localTime,
    NEW_RULE_STATE,
    pvSurplusW,
    type ChargingRule,
    type RuleEnvironment,
    type RuleState,
} from '../rules/rules';
import { CmVariables } from '../rules/variables';
import { evaluateLimit, parseSiteFormula, siteResolver } from './formula-scope';
import {
    describeIssues,
    isEvse,
    isGroup,
    isMeter,
    parseDevice,
    ParamsSchema,
    type DeviceEntry,
    type EvseEntry,
    type Params,
    staticMaxCurrent,
} from './schema';

export class SiteConfigError extends Error {
    readonly code = 'SITE_CONFIG';
}

/** Validates parameters; throws a SiteConfigError that names the field. */
export function parseParams(input: unknown): Params {
    const r = ParamsSchema.safeParse(input ?? {});
    if (!r.success) throw new SiteConfigError(describeIssues(r.error, 'params'));
    return r.data;
}

/** Validates a whole device table: every entry, unique ids, references that exist. */
export function parseDevices(input: unknown): DeviceEntry[] {
    if (!Array.isArray(input)) throw new SiteConfigError('devices must be an array');
    const devices: DeviceEntry[] = [];
    input.forEach((raw, i) => {
        const r = parseDevice(raw);
        if (!r.success) throw new SiteConfigError(describeIssues(r.error, `devices[${i}]`));
        devices.push(r.data);
    });
    const ids = new Set<string>();
    for (const d of devices) {
        if (ids.has(d.dev_id)) throw new SiteConfigError(`duplicate dev_id ${d.dev_id}`);
        ids.add(d.dev_id);
    }
    const groups = new Set(devices.filter(isGroup).map((g) => g.dev_id));
    for (const d of devices) {
        if (d.group && !groups.has(d.group)) {
            throw new SiteConfigError(`${d.dev_id}: group ${d.group} is not an evse_group`);
        }
        if (isEvse(d) && d.attach && !devices.some((m) => m.dev_id === d.attach && isMeter(m))) {
            throw new SiteConfigError(`${d.dev_id}: attach ${d.attach} is not a meter`);
        }
    }
    return devices;
}

const DEFAULT_STALE_S: Record<string, number> = { evse_ajax: 60, meter_ajax: 60 };

/** How long a wallbox with its own fail-safe waits for the manager before using it (s); the
 *  vendor's charging manager programs 3 minutes. */
export const DEFAULT_FAIL_SAFE_DURATION_S = 180;

/**
 * The fail-safe a wallbox holds itself, for when the manager is gone: fail_safe_cur (default the
 * minimum) after fail_safe_duration without communication. None in observe mode, where the
 * manager commands nothing and leaves the device's own setting alone.
 */
export function deviceFailSafe(e: EvseEntry, params: Params): DeviceFailSafe | null {
    if (!params.lb_enabled) return null;
    return {
        current: e.fail_safe_cur ?? e.min_charging_cur,
        timeoutMs: (e.fail_safe_duration ?? DEFAULT_FAIL_SAFE_DURATION_S) * 1000,
    };
}

/**
 * The engine reads every wallbox each cycle and re-writes it after a third of its fail-safe time:
 * a fail-safe time of less than three cycles would trip while the manager runs.
 */
export function checkFailSafeTimes(params: Params, devices: readonly DeviceEntry[]): void {
    for (const d of devices) {
        if (!isEvse(d) || d.fail_safe_duration === undefined) continue;
        if (d.fail_safe_duration * 1000 < 3 * params.cycle_ms) {
            throw new SiteConfigError(
                `${d.dev_id}: fail_safe_duration ${d.fail_safe_duration} s is shorter than three control cycles (cycle_ms ${params.cycle_ms})`,
            );
        }
    }
}

/** The core's view of the site. */
export function toSiteConfig(params: Params, devices: readonly DeviceEntry[]): SiteConfig {
    const core: SiteParams = {
        ...DEFAULT_PARAMS,
        maxTotalCurrent: staticMaxTotal(params),
        reserveCurrent: params.reserve_current,
        maxTotalEvseCurrent: params.max_total_evse_current,
        maxTotalCurPrc: params.max_total_cur_prc,
        maxImbalance: params.max_imbalance,
        imbalanceAdd: params.imbalance_add,
        minPauseTimeMs: params.min_pause_time * 1000,
        lbEnabled: params.lb_enabled,
        disablePolicy: params.disable_policy as -1 | 0 | 1,
        increaseHoldMs: params.increase_hold_time * 1000,
        maxIncreasePerCycle: params.max_increase_per_cycle,
        overdrawPenaltyMs: params.overdraw_penalty_time * 1000,
        underdrawAfterMs: params.underdraw_time * 1000,
        underdrawMargin: params.underdraw_margin,
        voltage: params.voltage,
    };
    const staleMs = (d: DeviceEntry) => (d.stale_after ?? DEFAULT_STALE_S[d.dev_type] ?? 10) * 1000;
    const evses: EvseConfig[] = devices.filter(isEvse).map((e) => ({
        id: e.dev_id,
        enabled: e.device_enabled,
        group: e.group,
        prio: e.prio,
        minCurrent: e.min_charging_cur,
        maxCurrent: staticMaxCurrent(e.max_charging_cur),
        phaseRotation: e.phase_rotation as 0 | 120 | 240,
        usedPhases: e.used_phases,
        failSafeCurrent: e.fail_safe_cur ?? e.min_charging_cur,
        staleAfterMs: staleMs(e),
        ...(e.attach ? { attach: e.attach } : {}),
        ...(e.battery_save_threshold ? { batterySaveThreshold: e.battery_save_threshold } : {}),
    }));
    const meters: MeterConfig[] = devices.filter(isMeter).map((m) => ({
        id: m.dev_id,
        enabled: m.device_enabled,
        // A grid-demand meter inside a group measures that group's feeder, not the site.
        role: (m.group && m.role === 3 ? 0 : m.role) as MeterConfig['role'],
        phaseRotation: m.phase_rotation as 0 | 120 | 240,
        staleAfterMs: staleMs(m),
    }));
    const groups: GroupConfig[] = devices.filter(isGroup).map((g) => {
        const meter = devices.find(
            (m) => isMeter(m) && m.group === g.dev_id && m.role === 3 && m.device_enabled,
        );
        return {
            id: g.dev_id,
            group: g.group,
            maxCurrent: g.device_enabled ? g.max_charging_cur : Infinity,
            ...(meter ? { meter: meter.dev_id } : {}),
        };
    });
    return { params: core, evses, meters, groups };
}

export interface SiteOptions {
    params?: unknown;
    devices?: unknown;
    clock?: Clock;
    /** Shared Modbus buses (one pool per process); a private pool is made when absent. */
    pool?: BusPool;
    inputs?: CycleInputs;
    /** Host that the Power Brain names (`evse`, `meter1`, `meter2`) refer to. */
    powerBrainHost?: string;
    /** A pushed meter reading that shows an overload decides at once (default true); false =
     *  it waits for the next cycle. */
    reactOnArrival?: boolean;
}

export class Site {
    readonly manager: ChargingManager;
    readonly world: SimWorld;
    /** CM variables (set_cm_vars): formulas read them as CM.<name>. */
    readonly variables = new CmVariables();
    /** Problems of the last cycle's formulas (limits, rules, variables), one line each. */
    formulaErrors: readonly string[] = [];
    private paramsValue: Params;
    private devicesValue: DeviceEntry[];
    private readonly pool: BusPool;
    private readonly ownPool: boolean;
    private readonly driverContext: DriverContext;
    private readonly ruleStates = new Map<string, RuleState>();
    private readonly formulas = new Map<string, Formula>();
    /** max_total_current and formula-valued wallbox maxima of the last cycle (mA). */
    private maxTotalNow: number;
    private readonly evseMaxNow = new Map<string, number>();
    private evseRulesOff: (devId: string) => boolean = () => false;
    private userRules: (devId: string) => readonly ChargingRule[] | null = () => null;

    constructor(opts: SiteOptions = {}) {
        this.paramsValue = parseParams(opts.params);
        this.devicesValue = parseDevices(opts.devices ?? []);
        checkFailSafeTimes(this.paramsValue, this.devicesValue);
        this.maxTotalNow = staticMaxTotal(this.paramsValue);
        const clock = opts.clock ?? systemClock;
        this.world = new SimWorld(clock);
        this.ownPool = !opts.pool;
        this.pool = opts.pool ?? new BusPool({});
        this.driverContext = {
            pool: this.pool,
            ...(opts.powerBrainHost ? { powerBrainHost: opts.powerBrainHost } : {}),
        };
        const external = opts.inputs;
        this.manager = new ChargingManager({
            config: toSiteConfig(this.paramsValue, this.devicesValue),
            clock,
            cycleMs: this.paramsValue.cycle_ms,
            reactOnArrival: opts.reactOnArrival,
            inputs: (now) => {
                const outside = external?.(now) ?? {};
                const own = this.cycleInputs(now);
                // own.limits is made for this cycle: the outside caps are merged into it, not
                // into yet another copy.
                const limits = own.limits;
                outside.limits?.forEach((cap, id) => {
                    limits.set(id, Math.min(cap, limits.get(id) ?? Infinity));
                });
                const maxTotal = Math.min(
                    outside.maxTotalCurrent ?? Infinity,
                    own.maxTotalCurrent ?? Infinity,
                );
                return {
                    ...outside,
                    limits,
                    ...(maxTotal < Infinity ? { maxTotalCurrent: maxTotal } : {}),
                };
            },
            drivers: this.devicesValue.flatMap((d) => this.createDriver(d) ?? []),
        });
    }

    get params(): Readonly<Params> {
        return this.paramsValue;
    }

    get devices(): readonly DeviceEntry[] {
        return this.devicesValue;
    }

    device(devId: string): DeviceEntry | undefined {
        return this.devicesValue.find((d) => d.dev_id === devId);
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

    start(): void {
        this.manager.start();
    }

    /** Gives up control (disable_policy), closes the drivers and, if it owns them, the buses. */
    async stop(): Promise<void> {
        await this.manager.stop();
        if (this.ownPool) await this.pool.close();
    }

    /** Changes parameters; all fields are checked before any takes effect. */
    setParams(patch: Record<string, unknown>): Params {
        const next = parseParams({ ...this.paramsValue, ...patch });
        checkFailSafeTimes(next, this.devicesValue);
        this.paramsValue = next;
        if (typeof next.max_total_current === 'number') this.maxTotalNow = next.max_total_current;
        this.formulas.clear();
        this.manager.updateConfig(toSiteConfig(next, this.devicesValue));
        this.updateFailSafes();
        return next;
    }

    /** Adds or replaces one device (merging into an existing entry with the same dev_id). */
    async setDevice(input: Record<string, unknown>): Promise<DeviceEntry> {
        const existing = this.devicesValue.find((d) => d.dev_id === input.dev_id);
        const merged = existing ? { ...existing, ...input } : input;
        const devices = parseDevices(
            existing
                ? this.devicesValue.map((d) => (d === existing ? merged : d))
                : [...this.devicesValue, merged],
        );
        checkFailSafeTimes(this.paramsValue, devices);
        const entry = devices.find((d) => d.dev_id === input.dev_id)!;
        const needsDriver =
            !existing ||
            existing.dev_type !== entry.dev_type ||
            existing.address !== entry.address ||
            existing.id !== entry.id;
        const driver = needsDriver ? this.createDriver(entry) : undefined;
        this.devicesValue = devices;
        this.formulas.clear();
        this.manager.updateConfig(toSiteConfig(this.paramsValue, devices));
        if (driver) await this.manager.setDriver(driver);
        else if (needsDriver) await this.manager.removeDriver(entry.dev_id);
        this.updateFailSafes();
        return entry;
    }

    /** Hands every wallbox driver that holds a fail-safe of its own the one now configured. */
    private updateFailSafes(): void {
        for (const d of this.devicesValue) {
            if (!isEvse(d)) continue;
            const driver = this.manager.driver(d.dev_id);
            if (driver?.kind === 'evse') driver.setFailSafe?.(deviceFailSafe(d, this.paramsValue));
        }
    }

    async deleteDevice(devId: string): Promise<void> {
        if (!this.device(devId)) throw new SiteConfigError(`unknown device ${devId}`);
        const devices = parseDevices(this.devicesValue.filter((d) => d.dev_id !== devId));
        this.devicesValue = devices;
        this.evseMaxNow.delete(devId);
        this.manager.updateConfig(toSiteConfig(this.paramsValue, devices));
        await this.manager.removeDriver(devId);
    }

    /** Which wallboxes have their own charging rules switched off (override flag E). */
    setEvseRulesDisabled(off: (devId: string) => boolean): void {
        this.evseRulesOff = off;
    }

    /** The charging rules of the user charging at a wallbox, or null (none, or override U). */
    setUserRules(rulesAt: (devId: string) => readonly ChargingRule[] | null): void {
        this.userRules = rulesAt;
    }

    /**
     * What formulas and rules ask for this cycle: per-wallbox caps (formula-valued
     * max_charging_cur; EVSE and user charging rules, the smaller of the two) and a formula-valued
     * max_total_current. CM variables are calculated first, so that all of them read this
     * cycle's values.
     */
    cycleInputs(now: number): { limits: Map<string, number>; maxTotalCurrent?: number } {
        const limits = new Map<string, number>();
        const p = this.paramsValue;
        // Only the wallboxes with rules get an entry: most sites have none, every cycle.
        const withRules: {
            e: EvseEntry;
            own: readonly ChargingRule[] | undefined;
            user: readonly ChargingRule[] | undefined;
        }[] = [];
        const formulaMax: EvseEntry[] = [];
        for (let i = 0; i < this.devicesValue.length; i++) {
            const e = this.devicesValue[i]!;
            if (!isEvse(e)) continue;
            const own = this.evseRulesOff(e.dev_id) ? undefined : e.charging_rules;
            const user = this.userRules(e.dev_id) ?? undefined;
            if (own?.length || user?.length) withRules.push({ e, own, user });
            if (typeof e.max_charging_cur === 'string') formulaMax.push(e);
        }
        const formulaTotal = typeof p.max_total_current === 'string';
        if (!withRules.length && !formulaMax.length && !formulaTotal && !this.variables.size) {
            this.formulaErrors = [];
            return { limits };
        }

        const errors: string[] = [];
        const power = (d: DeviceEntry) =>
            this.manager.deviceState(d.dev_id).sample.reading?.powerW ?? 0;
        const meters = this.devicesValue
            .filter(isMeter)
            .filter((m) => m.device_enabled && !m.group);
        const sum = (role: number) =>
            meters.filter((m) => m.role === role).reduce((t, m) => t + power(m), 0);
        const grid = meters.some((m) => m.role === 3);
        const gridW = sum(3);
        const evseW = this.devicesValue.reduce((t, d) => (isEvse(d) ? t + power(d) : t), 0);
        const solarPowerW = sum(2);
        const surplusPowerW = grid
            ? pvSurplusW({ gridW, evseW })
            : pvSurplusW({ productionW: solarPowerW, consumptionW: sum(1) });
        const setpoints = this.manager.lastCycle?.result.setpoints;
        let numCharging = 0;
        for (const sp of setpoints?.values() ?? []) if (sp.current > 0) numCharging++;

        const other = siteResolver({
            device: (id) => this.deviceView(id),
            gridDemandW: gridW,
            surplusW: surplusPowerW,
            maxTotalCurrent: this.maxTotalNow,
            numCharging,
        });
        if (this.variables.size) {
            for (const err of this.variables.evaluateAll(other).errors.values()) {
                errors.push(err.message);
            }
        }
        const resolve: Resolver = this.variables.resolver(other);

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
                resolve,
            };
            const evseResult = this.evaluateRuleSet(e.dev_id, own, env, now, errors);
            const userResult = this.evaluateRuleSet(`${e.dev_id}/user`, user, env, now, errors);
            const current = combineRuleResults(evseResult, userResult);
            if (current !== null)
                limits.set(e.dev_id, Math.min(current, limits.get(e.dev_id) ?? Infinity));
        }
        this.formulaErrors = errors;
        return maxTotalCurrent === undefined ? { limits } : { limits, maxTotalCurrent };
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

    private formula(text: string): Formula {
        let f = this.formulas.get(text);
        if (!f) {
            f = parseSiteFormula(text); // checked when the setting was accepted
            this.formulas.set(text, f);
        }
        return f;
    }

    private deviceView(id: string) {
        const d = this.device(id);
        if (!d || isGroup(d)) return undefined;
        const state = this.manager.deviceState(id);
        return {
            kind: isEvse(d) ? ('evse' as const) : ('meter' as const),
            reading: state.sample.reading,
            comError: state.comError,
            ...(isEvse(d)
                ? { minCurrent: d.min_charging_cur, maxCurrent: this.maxChargingCurrentNow(d) }
                : {}),
        };
    }

    /** A value pushed for an HTTP-input device (meter_ajax / evse_ajax). */
    push(devId: string, reading: MeterReading | EvseReading): void {
        const d = this.device(devId);
        if (!d) throw new SiteConfigError(`unknown device ${devId}`);
        if (d.dev_type !== 'meter_ajax' && d.dev_type !== 'evse_ajax') {
            throw new SiteConfigError(`${devId} is a ${d.dev_type}, not an HTTP input device`);
        }
        this.manager.pushReading(devId, reading);
    }

    private createDriver(d: DeviceEntry): DeviceDriver | undefined {
        if (d.dev_type === 'evse_sim' && isEvse(d)) {
            return new SimEvse(this.world, {
                id: d.dev_id,
                phaseRotation: d.phase_rotation as 0 | 120 | 240,
                car: d.sim_plugged
                    ? {
                          batteryWh: d.sim_battery_wh,
                          soc: d.sim_soc,
                          maxCurrent: d.sim_car_current,
                          phases: d.sim_car_phases as 1 | 2 | 3,
                      }
                    : null,
            });
        }
        if (d.dev_type === 'meter_sim' && isMeter(d)) {
            this.world.household = {
                baseCurrent: [d.sim_base_current, d.sim_base_current, d.sim_base_current],
                stepCurrent: d.sim_step_current,
                stepMs: d.sim_step_s * 1000,
                seed: d.sim_seed,
                appliances: d.sim_appliances,
                ...(d.sim_from_start ? { origin: this.world.clock.now() } : {}),
            };
            if (d.sim_pv_peak_w) this.world.pv = { peakW: d.sim_pv_peak_w };
            return new SimMeter(this.world, { id: d.dev_id, role: d.role as MeterConfig['role'] });
        }
        if (isModbusDevType(d.dev_type)) {
            return createModbusDriver(
                {
                    dev_type: d.dev_type,
                    dev_id: d.dev_id,
                    address: d.address,
                    id: d.id,
                    ...(isMeter(d) && d.registers !== undefined
                        ? { registers: d.registers as never }
                        : {}),
                    ...(isEvse(d) ? { failSafe: deviceFailSafe(d, this.paramsValue) } : {}),
                },
                this.driverContext,
            );
        }
        return undefined; // HTTP input devices and groups have no driver
    }
}

/** max_total_current without its formula: a formula is evaluated every cycle (Site inputs), and
 *  until then the limit is 0, so that nothing charges on a value nobody set. */
function staticMaxTotal(params: Params): number {
    return typeof params.max_total_current === 'number' ? params.max_total_current : 0;
}

/** Phases a car charges on, for turning PV power into current: what it is counted on, else its
 *  configured phases, else three. */
function phaseCountOf(mask: number | undefined, e: EvseEntry): number {
    const bits = mask || e.used_phases || 7;
    return (bits & 1) + ((bits >> 1) & 1) + ((bits >> 2) & 1);
}
