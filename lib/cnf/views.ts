// get_dev_info, get_params and get_dev_types as the vendor's clients read them. Field names are
// the union of old (≤1.14) and new (≥1.20) firmware names, so both kinds of client work.
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { CycleReport } from '../core/engine';
import type { EvseReading, MeterReading, Phases3 } from '../core/types';
import { DefinedEvse, DefinedMeter } from '../devices/defined-device';
import type { DeviceDefinition } from '../devices/definition';
import { PowerBrainEvse, PowerBrainMeter } from '../devices/powerbrain';
import { modbusDevTypes } from '../devices/registry';
import { OcppEvseDriver } from '../ocpp/driver';
import { isEvse, isGroup, isMeter, type DeviceEntry, type MeterEntry } from '../site/schema';
import type { CnfContext } from './context';

/** The API level we implement, reported as the firmware version (≥ 1.20: new field names). */
export const API_VERSION = '1.30.1';
/** vsn.version packing: (major << 24) | (minor << 16) | build. */
export const API_VERSION_PACKED = (1 << 24) | (30 << 16) | 1;
export const PRODUCT = 'EVCM Charging Manager';

/** Device types that are not Modbus definitions. */
const OTHER_DEV_TYPES: Readonly<Record<string, string>> = {
    evse_ajax: 'HTTP input',
    evse_sim: 'Simulation (VE)',
    evse_ocpp: 'OCPP 1.6J / 2.0.1',
    evse_group: 'EVSE group',
    meter_ajax: 'HTTP input',
    meter_sim: 'Simulation (VM)',
};

/** dev_type → display name (get_dev_types, dev_meta): every definition, the user's included. */
export function devTypeLabels(user: readonly DeviceDefinition[] = []): Record<string, string> {
    return { ...modbusDevTypes(user), ...OTHER_DEV_TYPES };
}

/** The built-in types' names. */
export const DEV_TYPE_LABELS: Readonly<Record<string, string>> = devTypeLabels();

const CP_STATE = ['', 'Standby', 'Vehicle detected', 'Charging', 'Charging', 'Error', 'Offline'];

const sum3 = (p: Phases3): number => p[0] + p[1] + p[2];

function phaseBits(c: Phases3): number {
    return (c[0] >= 1000 ? 1 : 0) | (c[1] >= 1000 ? 2 : 0) | (c[2] >= 1000 ? 4 : 0);
}

interface Live<R> {
    reading: R | undefined;
    fresh: boolean;
    comError: boolean;
    comErrors: number;
    lastError: string;
    comErrSecs: number;
}

function live<R>(ctx: CnfContext, id: string, staleMs: number, now: number): Live<R> {
    const st = ctx.site.manager.deviceState(id);
    const reading = st.sample.reading as R | undefined;
    const takenAt = st.sample.takenAt;
    return {
        reading,
        fresh: reading !== undefined && (takenAt === undefined || now - takenAt <= staleMs),
        comError: st.comError,
        comErrors: st.comErrors,
        lastError: st.lastError,
        comErrSecs:
            st.comErrorSince === null
                ? 0
                : Math.max(0, Math.floor((now - st.comErrorSince) / 1000)),
    };
}

function common(ctx: CnfContext, d: DeviceEntry, l: Live<unknown>): Record<string, unknown> {
    return {
        dev_type: d.dev_type,
        device_enabled: d.device_enabled ? 1 : 0,
        name: d.name,
        address: d.address,
        id: d.id,
        dev_id: d.dev_id,
        number: d.number,
        desc: descOf(ctx, d),
        com_err: l.comError,
        com_err_secs: l.comErrSecs,
        com_errors: l.comErrors,
        status: '',
        last_error: l.lastError,
    };
}

/**
 * The description: the configured one, else what the device says it is, as the vendor fills it
 * in ("cFos Power Brain", "cFos Power Brain, S0 meter 1").
 */
function descOf(ctx: CnfContext, d: DeviceEntry): string {
    if (d.desc) return d.desc;
    const driver = ctx.site.manager.driver(d.dev_id);
    if (driver instanceof PowerBrainEvse && driver.identity) return driver.identity.name;
    if (driver instanceof PowerBrainMeter && driver.identity) {
        return `${driver.identity.name}, S0 meter ${driver.unit - 1}`;
    }
    return '';
}

function modelOf(ctx: CnfContext, d: DeviceEntry, l: Live<unknown>): string {
    const pushed = ctx.ajax.get(d.dev_id)?.model;
    if (pushed !== undefined) return pushed;
    if (d.dev_type === 'evse_ajax' || d.dev_type === 'meter_ajax') return '';
    if (l.comError && !l.reading) return 'failed to connect';
    const driver = ctx.site.manager.driver(d.dev_id);
    if (driver instanceof PowerBrainEvse && driver.identity) {
        return `${driver.identity.name},1.0,${API_VERSION},${driver.identity.serial}`;
    }
    if (driver instanceof OcppEvseDriver && driver.boot) {
        const b = driver.boot;
        return `${b.vendor} ${b.model},${b.firmware ?? ''},,${b.serial ?? ''}`;
    }
    if ((driver instanceof DefinedEvse || driver instanceof DefinedMeter) && driver.identity) {
        // as the vendor's model field: "maker model,firmware,,serial"
        const id = driver.identity;
        const name = [id.manufacturer, id.model ?? driver.definition.title].filter(Boolean);
        return `${name.join(' ')},${id.firmware ?? ''},,${id.serial ?? ''}`;
    }
    if (d.dev_type.endsWith('_sim')) return `EVCM Simulation,1.0,${API_VERSION},${d.dev_id}`;
    const title = devTypeLabels(ctx.site.params.device_defs)[d.dev_type];
    return `${title ?? d.dev_type},1.0,,`;
}

export interface ViewInputs {
    now: number;
    report: CycleReport | null;
    voltage: number;
    staleMs: ReadonlyMap<string, number>;
}

export function viewInputs(ctx: CnfContext): ViewInputs {
    const config = ctx.site.manager.site;
    const staleMs = new Map<string, number>();
    for (const e of config.evses) staleMs.set(e.id, e.staleAfterMs);
    for (const m of config.meters) staleMs.set(m.id, m.staleAfterMs);
    return {
        now: ctx.now(),
        report: ctx.site.manager.lastCycle,
        voltage: ctx.site.params.voltage,
        staleMs,
    };
}

/** One EVSE (or EVSE group) as get_dev_info shows it. */
export function evseInfo(ctx: CnfContext, d: DeviceEntry, v: ViewInputs): Record<string, unknown> {
    const l = live<EvseReading>(ctx, d.dev_id, v.staleMs.get(d.dev_id) ?? 10_000, v.now);
    const r = l.fresh ? l.reading : undefined;
    const sp = v.report?.result.setpoints.get(d.dev_id);
    const mem = v.report?.result.memory.evses.get(d.dev_id);
    const st = ctx.site.manager.deviceState(d.dev_id);
    const e = isEvse(d) ? d : undefined;
    // Devices that only report (HTTP input, OCPP) are offline until they do.
    const state = r
        ? r.state
        : l.comError || d.dev_type === 'evse_ajax' || d.dev_type === 'evse_ocpp'
          ? 6
          : 1;
    const currents: Phases3 = r?.currents ?? [0, 0, 0];
    const power = r?.powerW ?? Math.round((sum3(currents) * v.voltage) / 1000);
    const chargingEnabled = sp ? sp.chargingEnabled : d.device_enabled;
    const lastSet = st.lastCommand
        ? st.lastCommand.current
        : sp && !ctx.site.manager.driver(d.dev_id)
          ? sp.current
          : -1;
    const energy = (l.reading?.totalEnergyWh ?? 0) + (ctx.softMeters.get(d.dev_id) ?? 0);
    const override = ctx.overrides.get(d.dev_id);
    const minPause = ctx.site.params.min_pause_time;
    const paused = sp?.state === 'paused';
    const pausedFor =
        paused && mem?.pausedSince !== null && mem?.pausedSince !== undefined
            ? Math.floor((v.now - mem.pausedSince) / 1000)
            : minPause;
    const maxCur = isGroup(d) ? d.max_charging_cur : e ? ctx.site.maxChargingCurrentNow(e) : 0;
    const out: Record<string, unknown> = {
        ...common(ctx, d, l),
        is_evse: true,
        // The configured phases, else those learned from the car's draw since it was plugged in.
        used_phases: e ? e.used_phases || (mem?.learnedPhases ?? 0) : 7,
        is_mock: d.dev_type === 'evse_sim',
        label: e?.label ?? '',
        min_charging_cur: e?.min_charging_cur ?? 6000,
        max_charging_cur: maxCur,
        max_power: Math.round((maxCur * v.voltage * 3) / 1000),
        prio: e?.prio ?? 1,
        charging_enabled: chargingEnabled,
        cur_charging_power: power,
        power_w: power,
        current_l1: currents[0],
        current_l2: currents[1],
        current_l3: currents[2],
        last_set_charging_cur: lastSet,
        total_energy: energy,
        phases: phaseBits(currents),
        state,
        lreason: 0,
        model: modelOf(ctx, d, l),
        paused,
        pause_time: pausedFor,
        pause_min_time: minPause,
        needs_auth: ctx.waitingForAuth(d.dev_id),
        ucnt: 0,
        overrides: override?.flags ?? 0,
        ov_cur: override?.current ?? maxCur,
    };
    if (e?.attach) out.attach = e.attach;
    if (e) {
        // The running session's energy and charging time (names a Home Assistant fork reads).
        const session = ctx.site.sessions.running(d.dev_id);
        out.ta_en = Math.round(session?.energy_wh ?? 0);
        out.charging_dur = Math.round(session?.charging_s ?? 0);
        // Settings of the vendor's device object, so that a copy can be sent back unchanged.
        out.battery_save_threshold = e.battery_save_threshold ?? 0;
        out.enable_snooze = e.enable_snooze ?? true;
        out.enable_wakeup = e.enable_wakeup ?? true;
        out.fixed_rfid = e.fixed_rfid ?? '';
        out.ocpp_gateway_client_id = e.ocpp_gateway_client_id ?? '';
        if (e.soft_meter !== undefined) out.soft_meter = e.soft_meter;
        if (e.switch_phases) {
            // `phases` above is what the car draws on; the vendor's formula names switch_phases
            // (the setting) and pphases (the phases charging is planned on). A switch under way
            // shows its stage (stopping, switch, settling); the car is then not paused.
            out.switch_phases = e.switch_phases;
            out.pphases = sp?.phaseCount ?? 3;
            out.phase_switch = sp?.switching ?? '';
        }
    }
    out.evse = {
        dc_sensor_faults: 0,
        dc_last_test_time: '',
        dc_sensor_fault: false,
        dc_sensor_glitches: 0,
        cp_state: CP_STATE[state] ?? 'Error',
        cp_fault: state === 5,
        pp_state: state === 1 || state === 6 ? 'no cable' : 'cable',
        charging: state === 3 || state === 4,
        current: sp?.current ?? 0,
        enabled: chargingEnabled,
    };
    out.ocpp = { status: 'disabled' };
    return out;
}

/** One meter as get_dev_info shows it. */
export function meterInfo(ctx: CnfContext, d: MeterEntry, v: ViewInputs): Record<string, unknown> {
    const l = live<MeterReading>(ctx, d.dev_id, v.staleMs.get(d.dev_id) ?? 10_000, v.now);
    const r = l.fresh ? l.reading : undefined;
    const currents: Phases3 = r?.currents ?? [0, 0, 0];
    const voltages: Phases3 = r?.voltages ?? [v.voltage, v.voltage, v.voltage];
    const power = r?.powerW ?? 0;
    return {
        ...common(ctx, d, l),
        is_evse: false,
        used_phases: 7,
        is_mock: d.dev_type === 'meter_sim',
        is_va: ctx.ajax.get(d.dev_id)?.isVa ?? d.is_va,
        invert: d.invert,
        import: l.reading?.importWh ?? 0,
        export: l.reading?.exportWh ?? 0,
        power,
        power_w: power,
        current_l1: currents[0],
        current_l2: currents[1],
        current_l3: currents[2],
        voltage_l1: voltages[0],
        voltage_l2: voltages[1],
        voltage_l3: voltages[2],
        role: d.role,
        model: modelOf(ctx, d, l),
        // Storage meters that report their state of charge (%).
        ...(r?.soc !== undefined ? { soc: r.soc } : {}),
    };
}

export function deviceInfo(
    ctx: CnfContext,
    d: DeviceEntry,
    v: ViewInputs,
): Record<string, unknown> {
    return isMeter(d) ? meterInfo(ctx, d, v) : evseInfo(ctx, d, v);
}

/**
 * The `params` object of get_dev_info and get_params. A formula-valued max_total_current shows
 * as its value in force; get_params gives the formula itself (`settings`), so that what a client
 * reads can be posted back unchanged.
 */
export function paramsInfo(
    ctx: CnfContext,
    v: ViewInputs,
    devices: readonly Record<string, unknown>[],
    settings = false,
): Record<string, unknown> {
    const p = { ...ctx.site.params, max_total_current: ctx.site.maxTotalCurrentNow };
    const watts = (mA: number): number => Math.round((mA * v.voltage * 3) / 1000);
    const site = v.report?.result.site;
    let consumed = 0;
    for (const d of devices) if (d.is_evse === true) consumed += Number(d.power_w) || 0;
    const headroomMa = site
        ? Math.max(0, sum3(site.budget) - sum3(site.nonEvseLoad))
        : 3 * Math.max(0, p.max_total_current - p.reserve_current);
    const avail = Math.round((headroomMa * v.voltage) / 1000);
    const overdraft = ctx.site.manager.overdraftMax;
    const cores = Math.max(1, cpus().length);
    return {
        title: p.title,
        desc: p.desc,
        max_total_current: settings ? ctx.site.params.max_total_current : p.max_total_current,
        max_total_power: watts(p.max_total_current),
        reserve_current: p.reserve_current,
        power_reserve: watts(p.reserve_current),
        overdraft_cur: overdraft,
        overdraft: watts(overdraft),
        max_total_evse_current: p.max_total_evse_current,
        max_total_evse_power: watts(evseLimit(p)),
        max_total_cur_prc: p.max_total_cur_prc,
        cons_evse_power: consumed,
        consumed_evse_power: consumed,
        avail_evse_power: avail,
        remaining_evse_power: avail,
        lb_enabled: p.lb_enabled,
        disable_policy: p.disable_policy,
        max_imbalance: p.max_imbalance,
        imbalance_add: p.imbalance_add,
        min_pause_time: p.min_pause_time,
        battery_priority_soc: p.battery_priority_soc,
        battery_buffer_soc: p.battery_buffer_soc,
        ocpp_srv_tls_mode: 'off',
        ocpp_srv_port: 0,
        ocpp_srv_use_ext_cert: false,
        ocpp_srv_cert_fn: '',
        ocpp_srv_private_key_fn: '',
        ocpp_srv_cacert_fn: [],
        price_model: 0,
        fixed_price: 0,
        tibber_home_id: '',
        cycle_time: Math.round(ctx.site.manager.measuredCycleMs),
        max_evses: 1000,
        shareware_mode: false,
        version: API_VERSION,
        time: Math.floor(v.now / 1000),
        vsn: {
            vendorid: 0,
            version: API_VERSION_PACKED,
            productid: 1,
            serialno: `evcm-${p.title || 'site'}`.slice(0, 32),
        },
        cpu: Math.min(100, Math.round((loadavg()[0]! * 100) / cores)),
        mem: Math.round((1 - freemem() / totalmem()) * 100),
        ocpp_gateway_license_cnt: 0,
        ocpp_gateway_licenses_used: 0,
    };
}

/**
 * The most the wallboxes may draw together per phase (mA): their own feeder's limit where one is
 * set, never more than the grid connection leaves them (max_total_current in force, its share
 * max_total_cur_prc, less the reserve); without a feeder limit, the latter.
 */
function evseLimit(p: {
    max_total_current: number;
    max_total_cur_prc: number;
    reserve_current: number;
    max_total_evse_current: number;
}): number {
    const grid = Math.max(
        0,
        Math.floor((p.max_total_current * p.max_total_cur_prc) / 100) - p.reserve_current,
    );
    return p.max_total_evse_current > 0 ? Math.min(p.max_total_evse_current, grid) : grid;
}

/** The whole get_dev_info answer. */
export function devInfo(ctx: CnfContext): Record<string, unknown> {
    const v = viewInputs(ctx);
    const devices = ctx.site.devices.map((d) => deviceInfo(ctx, d, v));
    return {
        params: paramsInfo(ctx, v, devices),
        auth_cnt: 0,
        devices,
        loadmgr_disabled: !ctx.site.params.lb_enabled,
    };
}

export function getParams(ctx: CnfContext): Record<string, unknown> {
    const v = viewInputs(ctx);
    const devices = ctx.site.devices.map((d) => deviceInfo(ctx, d, v));
    return {
        ...paramsInfo(ctx, v, devices, true),
        device_defs: structuredClone(ctx.site.params.device_defs),
        dev_meta: devTypeLabels(ctx.site.params.device_defs),
    };
}

/**
 * Read-only keys of get_params: a client may post them back unchanged; they are ignored.
 * (overdraft_cur and overdraft are writable, to 0: set_params.)
 */
export const READ_ONLY_PARAMS = new Set([
    'max_total_power',
    'power_reserve',
    'max_total_evse_power',
    'cons_evse_power',
    'consumed_evse_power',
    'avail_evse_power',
    'remaining_evse_power',
    'ocpp_srv_tls_mode',
    'ocpp_srv_port',
    'ocpp_srv_use_ext_cert',
    'ocpp_srv_cert_fn',
    'ocpp_srv_private_key_fn',
    'ocpp_srv_cacert_fn',
    'price_model',
    'fixed_price',
    'tibber_home_id',
    'cycle_time',
    'max_evses',
    'shareware_mode',
    'version',
    'time',
    'vsn',
    'cpu',
    'mem',
    'ocpp_gateway_license_cnt',
    'ocpp_gateway_licenses_used',
    'dev_meta',
]);

/**
 * Keys get_dev_info shows that are state, not settings. A device object copied from get_dev_info
 * may carry them into set_params or set_device; there they are ignored where the device's
 * settings have no such field (a meter's used_phases, a group's prio), as READ_ONLY_PARAMS are.
 */
export const READ_ONLY_DEVICE_KEYS: ReadonlySet<string> = new Set([
    'com_err',
    'com_err_secs',
    'com_errors',
    'status',
    'last_error',
    'is_evse',
    'used_phases',
    'is_mock',
    'label',
    'min_charging_cur',
    'max_power',
    'prio',
    'charging_enabled',
    'cur_charging_power',
    'power_w',
    'power',
    'current_l1',
    'current_l2',
    'current_l3',
    'voltage_l1',
    'voltage_l2',
    'voltage_l3',
    'import',
    'export',
    'last_set_charging_cur',
    'total_energy',
    'phases',
    'state',
    'lreason',
    'model',
    'paused',
    'pause_time',
    'pause_min_time',
    'needs_auth',
    'ucnt',
    'overrides',
    'ov_cur',
    'ta_en',
    'charging_dur',
    'evse',
    'ocpp',
    'is_va',
    'battery_save_threshold',
    'enable_snooze',
    'enable_wakeup',
    'fixed_rfid',
    'ocpp_gateway_client_id',
    'switch_phases',
    'pphases',
    'phase_switch',
]);
