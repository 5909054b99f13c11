// A Site is one charging manager as users configure it: vendor-style parameters and device table,
// turned into the core's SiteConfig and a driver per device. Every change is validated whole
// before anything is swapped in: a rejected change leaves the running site untouched.
import { systemClock, type Clock } from '../core/clock';
import { DEFAULT_PARAMS } from '../core/defaults';
import { ChargingManager, type LimitsStage } from '../core/engine';
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
import type { DeviceDefinition } from '../devices/definition';
import { createModbusDriver, isModbusDevType, type DriverContext } from '../devices/factory';
import { SimEvse, SimMeter, SimWorld } from '../devices/sim';
import { BusPool } from '../modbus/pool';
import type { OcppCentralSystem } from '../ocpp/central-system';
import { OcppEvseDriver } from '../ocpp/driver';
import { SessionTracker, type WallboxSample } from '../sessions/tracker';
import { PriceSource, type CurrentPrice } from '../prices/price-list';
import { CmVariables } from '../rules/variables';
import { Authorisation, type WallboxView } from '../users/authorisation';
import type { UserDirectory } from '../users/directory';
import { SiteLimits } from './limits';
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

/**
 * Validates a whole device table: every entry, unique ids, references that exist. `user`: the
 * user's device definitions (params.device_defs), whose types the table may use.
 */
export function parseDevices(
    input: unknown,
    user: readonly DeviceDefinition[] = [],
): DeviceEntry[] {
    if (!Array.isArray(input)) throw new SiteConfigError('devices must be an array');
    const devices: DeviceEntry[] = [];
    input.forEach((raw, i) => {
        const r = parseDevice(raw, user);
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
        phaseUpDelayMs: params.phase_up_delay * 1000,
        phaseDownDelayMs: params.phase_down_delay * 1000,
        phaseSwitchIntervalMs: params.phase_switch_interval * 1000,
        phaseSwitchMaxPerSession: params.phase_switch_max,
        phaseUpThreshold: params.phase_up_threshold,
        phaseStopWaitMs: params.phase_stop_wait * 1000,
        phaseSettleMs: params.phase_settle_time * 1000,
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
        ...(e.switch_phases
            ? {
                  phaseSwitch: e.switch_phases === -1 ? {} : { fixed: e.switch_phases as 1 | 3 },
              }
            : {}),
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
    /** Another source of per-cycle caps, merged in by the site's limits stage. */
    inputs?: LimitsStage;
    /** The users that authorise charging, with their rules and budgets; none by default. */
    users?: UserDirectory;
    /** Host that the Power Brain names (`evse`, `meter1`, `meter2`) refer to. */
    powerBrainHost?: string;
    /** A pushed meter reading that shows an overload decides at once (default true); false =
     *  it waits for the next cycle. */
    reactOnArrival?: boolean;
    /** The OCPP central system that evse_ocpp wallboxes connect to; without one they are offline. */
    ocpp?: OcppCentralSystem;
}

export class Site {
    readonly manager: ChargingManager;
    readonly world: SimWorld;
    /** CM variables (set_cm_vars): formulas read them as CM.<name>. */
    readonly variables = new CmVariables();
    /** Electricity prices pushed by a flow (evcm-price): rules, formulas and plans read them. */
    readonly prices = new PriceSource();
    /** Who is identified at which wallbox, and whether that lets the car charge. */
    readonly authorisation: Authorisation;
    /** The cycle's limits stage: rules, formulas, authorisation, budgets, overrides, plans. */
    readonly limits: SiteLimits;
    /** Charging sessions: the running ones, and an event for each that ends. A subscriber
     *  that throws is reported as the manager's own subscribers are. */
    readonly sessions = new SessionTracker((event, error) =>
        this.manager.events.emit('listenerError', { event: `sessions.${event}`, error }),
    );
    private readonly sessionSamples: WallboxSample[] = [];
    private paramsValue: Params;
    private devicesValue: DeviceEntry[];
    private readonly pool: BusPool;
    private readonly ownPool: boolean;
    private readonly driverContext: DriverContext;
    private readonly ocpp: OcppCentralSystem | undefined;
    private readonly clock: Clock;
    /** The wallboxes of devicesValue, made again when the table changes. */
    private evseList: { of: readonly DeviceEntry[]; evses: readonly EvseEntry[] } | null = null;

    constructor(opts: SiteOptions = {}) {
        this.paramsValue = parseParams(opts.params);
        this.devicesValue = parseDevices(opts.devices ?? [], this.paramsValue.device_defs);
        checkFailSafeTimes(this.paramsValue, this.devicesValue);
        const clock = opts.clock ?? systemClock;
        this.clock = clock;
        this.ocpp = opts.ocpp;
        this.world = new SimWorld(clock);
        this.ownPool = !opts.pool;
        this.pool = opts.pool ?? new BusPool({});
        this.driverContext = {
            pool: this.pool,
            ...(opts.powerBrainHost ? { powerBrainHost: opts.powerBrainHost } : {}),
        };
        this.authorisation = new Authorisation(this.wallboxView(), opts.users);
        this.limits = new SiteLimits(this, this.authorisation, opts.inputs);
        this.manager = new ChargingManager({
            config: toSiteConfig(this.paramsValue, this.devicesValue),
            clock,
            cycleMs: this.paramsValue.cycle_ms,
            limits: this.limits,
            ...(opts.reactOnArrival === undefined ? {} : { reactOnArrival: opts.reactOnArrival }),
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

    /** The wallboxes of the device table, in table order. */
    get evses(): readonly EvseEntry[] {
        if (this.evseList?.of !== this.devicesValue) {
            this.evseList = { of: this.devicesValue, evses: this.devicesValue.filter(isEvse) };
        }
        return this.evseList.evses;
    }

    private wallboxView(): WallboxView {
        return {
            wallboxes: () => this.evses,
            wallbox: (devId) => {
                const d = this.device(devId);
                return d && isEvse(d) ? d : undefined;
            },
            reading: (devId) =>
                this.manager.deviceState(devId).sample.reading as EvseReading | undefined,
        };
    }

    /** The site's time (ms). */
    now(): number {
        return this.clock.now();
    }

    /** The price and price level now: `_set_price` / `_set_price_level` where set, else the list. */
    priceNow(now: number = this.clock.now()): CurrentPrice {
        return this.prices.at(now, {
            price: this.variables.value('_set_price'),
            level: this.variables.value('_set_price_level'),
        });
    }

    /** max_total_current in force (mA): the number, or the formula's value in the last cycle. */
    get maxTotalCurrentNow(): number {
        return this.limits.maxTotalCurrentNow;
    }

    /** A wallbox's maximum in force (mA): the number, or its formula's value in the last cycle. */
    maxChargingCurrentNow(e: EvseEntry): number {
        return this.limits.maxChargingCurrentNow(e);
    }

    /** Problems of the last cycle's formulas (limits, rules, variables), one line each. */
    get formulaErrors(): readonly string[] {
        return this.limits.formulaErrors;
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
        // The table must still hold with the new definitions; devices of a definition that
        // changed get a new driver (made before anything changes: all or nothing).
        parseDevices(this.devicesValue, next.device_defs);
        const redrive = this.devicesValue.filter(
            (d) =>
                definitionText(d.dev_type, this.paramsValue.device_defs) !==
                definitionText(d.dev_type, next.device_defs),
        );
        const drivers = redrive.map((d) => this.createDriver(d, next));
        this.paramsValue = next;
        for (const driver of drivers) if (driver) void this.manager.setDriver(driver);
        this.limits.configChanged();
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
            this.paramsValue.device_defs,
        );
        checkFailSafeTimes(this.paramsValue, devices);
        const entry = devices.find((d) => d.dev_id === input.dev_id)!;
        const needsDriver =
            !existing ||
            existing.dev_type !== entry.dev_type ||
            existing.address !== entry.address ||
            existing.id !== entry.id ||
            (entry.dev_type === 'evse_ocpp' &&
                isEvse(existing) &&
                isEvse(entry) &&
                (existing.ocpp_password !== entry.ocpp_password ||
                    existing.fail_safe_duration !== entry.fail_safe_duration));
        const driver = needsDriver ? this.createDriver(entry) : undefined;
        this.devicesValue = devices;
        this.limits.configChanged();
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
        const devices = parseDevices(
            this.devicesValue.filter((d) => d.dev_id !== devId),
            this.paramsValue.device_defs,
        );
        this.devicesValue = devices;
        this.limits.deviceRemoved(devId);
        this.manager.updateConfig(toSiteConfig(this.paramsValue, devices));
        await this.manager.removeDriver(devId);
    }

    /**
     * Starts the charging session of a wallbox that runs its own (an OCPP transaction) with the
     * token that authorised it; false for other wallboxes and when it refuses. Never rejects.
     */
    startSession(devId: string, token: string): Promise<boolean> {
        const driver = this.manager.driver(devId);
        if (driver?.kind !== 'evse' || !driver.startSession) return Promise.resolve(false);
        return driver.startSession(token).catch(() => false);
    }

    /**
     * Brings the session records up to date with this cycle's readings (the limits stage calls
     * it before budgets are charged, which use the same count).
     */
    trackSessions(now: number): void {
        const evses = this.evses;
        // One sample object per wallbox, filled afresh each cycle: nothing new to collect.
        const samples = this.sessionSamples;
        samples.length = evses.length;
        for (let i = 0; i < evses.length; i++) {
            const e = evses[i]!;
            const state = this.manager.deviceState(e.dev_id);
            const user = this.authorisation.userAt(e.dev_id);
            const driver = this.manager.driver(e.dev_id);
            const tx = driver?.kind === 'evse' ? driver.transactions?.() : undefined;
            const w = (samples[i] ??= {
                dev_id: '',
                name: '',
                reading: undefined,
                takenAt: undefined,
            });
            w.dev_id = e.dev_id;
            w.name = e.name;
            w.reading = state.sample.reading as EvseReading | undefined;
            w.takenAt = state.sample.takenAt;
            w.user = user ? { id: user.id, name: user.name } : undefined;
            w.card = this.authorisation.rfids.get(e.dev_id)?.rfid;
            w.transaction = tx?.running;
            w.endedTransaction = tx?.ended;
        }
        this.sessions.update(now, samples);
    }

    /** Ends a wallbox's own charging session (override C, a used-up budget). Never rejects. */
    stopSession(devId: string): Promise<boolean> {
        const driver = this.manager.driver(devId);
        if (driver?.kind !== 'evse' || !driver.stopSession) return Promise.resolve(false);
        return driver.stopSession().catch(() => false);
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

    private createDriver(
        d: DeviceEntry,
        params: Params = this.paramsValue,
    ): DeviceDriver | undefined {
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
        if (d.dev_type === 'evse_ocpp' && isEvse(d)) {
            if (!this.ocpp || !d.address) return undefined; // no central system: shown offline
            const devId = d.dev_id;
            return new OcppEvseDriver(this.ocpp, {
                id: devId,
                identity: d.address,
                connector: d.id,
                // Without one in the device table, the password set on the central system (the
                // evcm-ocpp node's list) applies; '' in the table means none.
                ...(d.ocpp_password !== undefined ? { password: d.ocpp_password } : {}),
                failSafe: deviceFailSafe(d, this.paramsValue),
                // fail_safe_duration is how long the charge point holds a decision without the
                // manager: the validity of each control profile (OCPP.md: 60 s by default).
                validityMs: (d.fail_safe_duration ?? 60) * 1000,
                authorize: (token, record) =>
                    record
                        ? this.authorisation.present(devId, token, this.clock.now())
                        : this.authorisation.accepts(devId, token),
            });
        }
        if (isModbusDevType(d.dev_type, params.device_defs)) {
            return createModbusDriver(
                {
                    dev_type: d.dev_type,
                    dev_id: d.dev_id,
                    address: d.address,
                    id: d.id,
                    ...(isMeter(d) && d.registers !== undefined
                        ? { registers: d.registers as never }
                        : {}),
                    ...(isEvse(d) ? { failSafe: deviceFailSafe(d, params) } : {}),
                },
                { ...this.driverContext, definitions: params.device_defs },
            );
        }
        return undefined; // HTTP input devices and groups have no driver
    }
}

/** A user definition of this type as text (undefined: none), to tell whether it changed. */
function definitionText(type: string, defs: readonly DeviceDefinition[]): string | undefined {
    const d = defs.find((x) => x.type === type);
    return d === undefined ? undefined : JSON.stringify(d);
}

/** max_total_current without its formula: a formula is evaluated every cycle (limits stage), and
 *  until then the limit is 0, so that nothing charges on a value nobody set. */
function staticMaxTotal(params: Params): number {
    return typeof params.max_total_current === 'number' ? params.max_total_current : 0;
}
