// What a live dashboard shows, built from a site and its last cycle report: chart-ready points
// per building phase (measured against the limit), the power split, one tile per wallbox and the
// list of wallboxes for a selector. Display units: A (one decimal) and W. Pure: it only reads.
import { z } from 'zod';
import type { CycleReport } from '../core/engine';
import { add3, phaseCount, rotatePhases, sub3, ZERO3 } from '../core/phases';
import {
    MeterRole,
    type EvseReading,
    type MeterConfig,
    type MeterReading,
    type Phases3,
} from '../core/types';
import { OVERRIDE, type Override } from './controls';
import { isEvse, type EvseEntry } from './schema';
import type { Site } from './site';

/** One point of a chart series (ui-chart: series key `series`, x key `x`, y key `y`). */
export interface ChartPoint {
    series: string;
    /** ms since the epoch */
    x: number;
    /** A */
    y: number;
}

export interface PhasePoint {
    phase: 'L1' | 'L2' | 'L3';
    /** What the building draws on this phase (A): the grid meter, or the meters that replace it. */
    measured: number;
    /** The grid connection's limit in force on this phase (A): max_total_current × its share. */
    limit: number;
    /** What the manager plans with: the limit less reserve and overdraw penalty (A). */
    budget: number;
}

export interface PowerSplit {
    /** Production meters (role 2), W; null without one. */
    pv_w: number | null;
    /** The other consumers (W): consumption meters, else grid + PV − cars; null without meters. */
    household_w: number | null;
    /** What the wallboxes draw together (W). */
    cars_w: number;
    /** The grid meter(s), W, positive = import; null without one. */
    grid_w: number | null;
}

export type TileState =
    'offline' | 'error' | 'no_car' | 'plugged' | 'charging' | 'paused' | 'disabled';

export type PauseReason =
    | 'card'
    | 'switched_off'
    | 'disabled'
    | 'failsafe'
    | 'phase_switch'
    | 'limit'
    | 'no_room'
    | 'full'
    | 'waiting';

const PAUSE_TEXT: Record<PauseReason, string> = {
    card: 'waiting for a card',
    switched_off: 'switched off',
    disabled: 'wallbox disabled',
    failsafe: 'fail-safe: measurements missing',
    phase_switch: 'switching phases',
    limit: 'a rule, plan or budget allows nothing now',
    no_room: 'not enough current',
    full: 'battery full',
    waiting: 'waiting to be raised',
};

const STATE_TEXT: Record<TileState, string> = {
    offline: 'offline',
    error: 'error',
    no_car: 'no car',
    plugged: 'car plugged in',
    charging: 'charging',
    paused: 'paused',
    disabled: 'disabled',
};

export interface WallboxTile {
    dev_id: string;
    name: string;
    state: TileState;
    state_text: string;
    /** What the manager allows (A per phase). */
    allowed: number;
    /** What the car draws on the wallbox's phases L1..L3 (A). */
    drawn: [number, number, number];
    /** Phases the car charges on (configured or learned); 0 = not known yet. */
    phases: number;
    /** The user identified at the wallbox (running session, else the card entered), or null. */
    user: string | null;
    paused: boolean;
    pause_reason: PauseReason | null;
    pause_text: string;
    /** Energy of the running session (Wh), or null without a recorded session. */
    session_wh: number | null;
    /** Charging is not switched off by an override. */
    charging_on: boolean;
    /** Current limit set by an override (A), or null. */
    limit: number | null;
}

export interface DashboardView {
    time: number;
    failSafe: boolean;
    phases: PhasePoint[];
    power: PowerSplit;
    tiles: WallboxTile[];
}

const amps = (mA: number): number => Math.round(mA / 100) / 10;
const sum3 = (p: Phases3): number => p[0] + p[1] + p[2];

/** Building-phase currents of a meter reading; power only: taken as balanced. */
function meterPhases(r: MeterReading, m: MeterConfig, voltage: number): Phases3 {
    if (r.currents) return rotatePhases(r.currents, m.phaseRotation);
    const each = Math.round((r.powerW * 1000) / voltage / 3);
    return [each, each, each];
}

function meterSum(
    report: CycleReport,
    meters: readonly MeterConfig[],
    role: MeterRole,
    voltage: number,
): { phases: Phases3; powerW: number } | null {
    let phases: Phases3 = ZERO3;
    let powerW = 0;
    let found = false;
    for (const m of meters) {
        if (!m.enabled || m.role !== role) continue;
        const r = report.snapshot.meters.get(m.id)?.reading;
        if (!r) continue;
        found = true;
        phases = add3(phases, meterPhases(r, m, voltage));
        powerW += r.powerW;
    }
    return found ? { phases, powerW } : null;
}

function evseReading(report: CycleReport, id: string): EvseReading | undefined {
    const s = report.snapshot.evses.get(id);
    return s?.error === undefined ? s?.reading : undefined;
}

function evsePowerW(r: EvseReading | undefined, voltage: number): number {
    if (!r) return 0;
    return r.powerW ?? Math.round((sum3(r.currents ?? ZERO3) * voltage) / 1000);
}

/** Per building phase: measured current, the limit in force and the budget (A). */
export function phasePoints(site: Site, report: CycleReport): PhasePoint[] {
    const config = site.manager.site;
    const voltage = site.params.voltage;
    const grid = meterSum(report, config.meters, MeterRole.gridDemand, voltage);
    let measured: Phases3;
    if (grid) measured = grid.phases;
    else {
        // Without a grid meter: consumption less production plus what the wallboxes draw, as the
        // allocator measures the site; with no meters at all, what the manager counts (other
        // loads and the wallboxes' setpoints).
        const cons = meterSum(report, config.meters, MeterRole.consumption, voltage);
        const prod = meterSum(report, config.meters, MeterRole.production, voltage);
        if (cons) {
            measured = sub3(cons.phases, prod?.phases ?? ZERO3);
            for (const e of config.evses) {
                const drawn = evseReading(report, e.id)?.currents;
                if (e.enabled && drawn)
                    measured = add3(measured, rotatePhases(drawn, e.phaseRotation));
            }
        } else measured = add3(report.result.site.nonEvseLoad, report.result.site.evseLoad);
    }
    const maxTotal = report.snapshot.maxTotalCurrent ?? config.params.maxTotalCurrent;
    const limit = Math.floor((maxTotal * config.params.maxTotalCurPrc) / 100);
    const names = ['L1', 'L2', 'L3'] as const;
    return names.map((phase, i) => ({
        phase,
        measured: amps(measured[i]!),
        limit: amps(limit),
        budget: amps(report.result.site.budget[i]!),
    }));
}

/** The phase points as ui-chart points: series L1, L2, L3 (measured) and "limit". */
export function chartPoints(phases: readonly PhasePoint[], at: number): ChartPoint[] {
    const out: ChartPoint[] = phases.map((p) => ({ series: p.phase, x: at, y: p.measured }));
    // One limit line: the phases' limits are the same grid connection.
    out.push({ series: 'limit', x: at, y: Math.min(...phases.map((p) => p.limit)) });
    return out;
}

export function powerSplit(site: Site, report: CycleReport): PowerSplit {
    const config = site.manager.site;
    const voltage = site.params.voltage;
    let carsW = 0;
    for (const e of config.evses) {
        if (e.enabled) carsW += evsePowerW(evseReading(report, e.id), voltage);
    }
    const grid = meterSum(report, config.meters, MeterRole.gridDemand, voltage);
    const pv = meterSum(report, config.meters, MeterRole.production, voltage);
    const cons = meterSum(report, config.meters, MeterRole.consumption, voltage);
    const household = cons
        ? cons.powerW
        : grid
          ? Math.max(0, grid.powerW + (pv?.powerW ?? 0) - carsW)
          : null;
    return {
        pv_w: pv ? Math.round(pv.powerW) : null,
        household_w: household === null ? null : Math.round(household),
        cars_w: Math.round(carsW),
        grid_w: grid ? Math.round(grid.powerW) : null,
    };
}

function pauseReason(
    site: Site,
    report: CycleReport,
    e: EvseEntry,
    override: Override | undefined,
): PauseReason | null {
    const sp = report.result.setpoints.get(e.dev_id);
    if (sp && sp.current > 0) return null;
    if (site.authorisation.waitingForAuth(e.dev_id)) return 'card';
    if (override && override.flags & OVERRIDE.chargingDisabled) return 'switched_off';
    if (!sp) return null;
    if (sp.state === 'disabled') return 'disabled';
    if (sp.state === 'failsafe') return 'failsafe';
    if (sp.state === 'switching') return 'phase_switch';
    if (report.result.memory.evses.get(e.dev_id)?.full) return 'full';
    if (report.snapshot.limits?.get(e.dev_id) === 0) return 'limit';
    if (sp.state === 'paused') return 'no_room';
    if (sp.state === 'observe' || sp.state === 'released') return null;
    return 'waiting';
}

export function wallboxTile(site: Site, report: CycleReport, e: EvseEntry): WallboxTile {
    const r = evseReading(report, e.dev_id);
    const sp = report.result.setpoints.get(e.dev_id);
    const mem = report.result.memory.evses.get(e.dev_id);
    const override = site.limits.overrides.get(e.dev_id);
    const drawn = r?.currents ?? ZERO3;
    const plugged = !!r && r.state >= 2 && r.state <= 4;
    const reason = plugged ? pauseReason(site, report, e, override) : null;
    let state: TileState;
    if (!e.device_enabled || sp?.state === 'disabled') state = 'disabled';
    else if (!r || r.state === 6 || sp?.state === 'unreachable') state = 'offline';
    else if (r.state === 5) state = 'error';
    else if (r.state === 1) state = 'no_car';
    else if (reason) state = 'paused';
    else if (r.state === 3 || r.state === 4) state = 'charging';
    else state = 'plugged';
    const session = site.sessions.running(e.dev_id);
    const user = session?.user ?? site.authorisation.userAt(e.dev_id)?.name ?? null;
    const mask = e.used_phases || mem?.learnedPhases || 0;
    return {
        dev_id: e.dev_id,
        name: e.name,
        state,
        state_text: STATE_TEXT[state],
        allowed: amps(sp?.current ?? 0),
        drawn: [amps(drawn[0]), amps(drawn[1]), amps(drawn[2])],
        phases: sp?.phaseCount ?? phaseCount(mask),
        user,
        paused: state === 'paused',
        pause_reason: state === 'paused' ? reason : null,
        pause_text: state === 'paused' && reason ? PAUSE_TEXT[reason] : '',
        session_wh: session ? Math.round(session.energy_wh) : null,
        charging_on: !(override && override.flags & OVERRIDE.chargingDisabled),
        limit: override?.current ? amps(override.current) : null,
    };
}

/** Everything the dashboard shows, from the last cycle. */
export function dashboardView(site: Site, report: CycleReport): DashboardView {
    return {
        time: report.at,
        failSafe: report.result.site.failSafe,
        phases: phasePoints(site, report),
        power: powerSplit(site, report),
        tiles: site.devices.filter(isEvse).map((e) => wallboxTile(site, report, e)),
    };
}

export interface TilePage {
    /** 1-based, within 1..pages. */
    page: number;
    pages: number;
    size: number;
    total: number;
    /** How many wallboxes of the whole site are in each state. */
    counts: Partial<Record<TileState, number>>;
    tiles: WallboxTile[];
}

/** One page of tiles: a dashboard stays light with hundreds of wallboxes. */
export function tilePage(tiles: readonly WallboxTile[], page: number, size: number): TilePage {
    const per = Math.max(1, Math.floor(size));
    const pages = Math.max(1, Math.ceil(tiles.length / per));
    const p = Math.min(pages, Math.max(1, Math.floor(page) || 1));
    const counts: Partial<Record<TileState, number>> = {};
    for (const t of tiles) counts[t.state] = (counts[t.state] ?? 0) + 1;
    return {
        page: p,
        pages,
        size: per,
        total: tiles.length,
        counts,
        tiles: tiles.slice((p - 1) * per, p * per),
    };
}

/** The wallboxes as ui-dropdown options. */
export function wallboxOptions(site: Site): { label: string; value: string }[] {
    return site.devices
        .filter(isEvse)
        .map((e) => ({ label: e.name ? `${e.dev_id} ${e.name}` : e.dev_id, value: e.dev_id }));
}

// ---- controls ----

/**
 * A message from a dashboard widget: the wallbox selector (`select`), the tile pager (`page`),
 * charging on/off (`charging`), a current limit in A (`limit`, 0 = none) and a card (`card`).
 * `dev_id` names the wallbox directly (a button on a tile); otherwise the selected one counts.
 */
export const DashboardInputSchema = z.discriminatedUnion('topic', [
    z.object({ topic: z.literal('select'), payload: z.string().trim().min(1) }),
    z.object({ topic: z.literal('page'), payload: z.coerce.number().int().min(1) }),
    z.object({
        topic: z.literal('charging'),
        payload: z.union([z.boolean(), z.enum(['on', 'off']).transform((v) => v === 'on')]),
        dev_id: z.string().optional(),
    }),
    z.object({
        topic: z.literal('limit'),
        payload: z.coerce.number().finite().min(0).max(80),
        dev_id: z.string().optional(),
    }),
    z.object({
        topic: z.literal('card'),
        payload: z.union([z.string().trim().min(1), z.number().transform(String)]),
        dev_id: z.string().optional(),
    }),
]);
export type DashboardInput = z.output<typeof DashboardInputSchema>;

/** What a control asks for: an override_device or an enter_rfid, as the evcm nodes take them. */
export type DashboardCommand =
    | { to: 'override'; payload: { dev_id: string; flags?: string; mamps?: number } }
    | { to: 'rfid'; payload: { dev_id: string; rfid: string } };

/**
 * The command for a control message at wallbox `devId`. The limit in A becomes `mamps`: 0 = no
 * limit; below the wallbox's minimum it is the minimum (the command refuses 1…min−1 mA).
 */
export function controlCommand(
    site: Site,
    input: Extract<DashboardInput, { topic: 'charging' | 'limit' | 'card' }>,
    devId: string,
): DashboardCommand {
    const e = site.devices.find((d) => d.dev_id === devId);
    if (!e || !isEvse(e)) throw new Error(`${devId} is not a wallbox`);
    switch (input.topic) {
        case 'charging':
            return { to: 'override', payload: { dev_id: devId, flags: input.payload ? 'c' : 'C' } };
        case 'limit': {
            const mA = Math.round(input.payload * 1000);
            const mamps = mA <= 0 ? 0 : Math.max(e.min_charging_cur, mA);
            return { to: 'override', payload: { dev_id: devId, mamps } };
        }
        case 'card':
            return { to: 'rfid', payload: { dev_id: devId, rfid: input.payload } };
    }
}

/** What the switch and the slider show for a wallbox: its override, or on and no limit. */
export function controlState(site: Site, devId: string): { charging: boolean; limit: number } {
    const o = site.limits.overrides.get(devId);
    return {
        charging: !(o && o.flags & OVERRIDE.chargingDisabled),
        limit: o?.current ? amps(o.current) : 0,
    };
}
