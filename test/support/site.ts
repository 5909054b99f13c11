// Builders for allocator tests and a closed-loop site: cars draw what they were given, and the grid
// meter sees the household load plus every car.
import { allocate } from '../../lib/core/allocate';
import { DEFAULT_PARAMS, emptyMemory } from '../../lib/core/defaults';
import { onPhases, rotatePhases } from '../../lib/core/phases';
import type {
    AllocationResult,
    AllocatorMemory,
    DeviceSample,
    EvseConfig,
    EvseReading,
    GroupConfig,
    MeterConfig,
    MeterReading,
    Phases3,
    SiteConfig,
    SiteParams,
} from '../../lib/core/types';

export function evse(id: string, over: Partial<EvseConfig> = {}): EvseConfig {
    return {
        id,
        enabled: true,
        group: '',
        prio: 1,
        minCurrent: 6000,
        maxCurrent: 16000,
        phaseRotation: 0,
        usedPhases: 7,
        failSafeCurrent: 6000,
        staleAfterMs: 10_000,
        ...over,
    };
}

export function meter(id: string, role: MeterConfig['role'], over: Partial<MeterConfig> = {}) {
    return {
        id,
        enabled: true,
        role,
        phaseRotation: 0,
        staleAfterMs: 10_000,
        ...over,
    } as MeterConfig;
}

export function group(
    id: string,
    maxCurrent: number,
    over: Partial<GroupConfig> = {},
): GroupConfig {
    return { id, group: '', maxCurrent, ...over };
}

/** Parameters that keep table tests readable: no reserve, no ramp limit. */
export const PLAIN: Partial<SiteParams> = {
    reserveCurrent: 0,
    maxIncreasePerCycle: 100_000,
    increaseHoldMs: 0,
};

export function siteConfig(
    params: Partial<SiteParams>,
    evses: EvseConfig[],
    meters: MeterConfig[] = [],
    groups: GroupConfig[] = [],
): SiteConfig {
    return { params: { ...DEFAULT_PARAMS, ...params }, evses, meters, groups };
}

export interface CarState {
    state: EvseReading['state'];
    /** Wallbox phases the car charges on. */
    phases: number;
    /** The most the car draws per phase (its battery or on-board charger limit). */
    draws?: number;
}

/**
 * A site run cycle by cycle. Each cycle the wallboxes report that their car draws what it was
 * given (up to its own limit) and the grid meter reports household load plus the cars.
 */
export class LoopSite {
    now = 1_000_000;
    memory: AllocatorMemory = emptyMemory();
    household: Phases3 = [0, 0, 0];
    cars = new Map<string, CarState>();
    /** Ids of meters and wallboxes that stopped answering. */
    silent = new Set<string>();
    /** Ids of meters that report power only, no phase currents. */
    powerOnly = new Set<string>();
    /** Ids of wallboxes without a meter: they report their state, no currents. */
    unmetered = new Set<string>();
    extraMeters = new Map<string, MeterReading>();
    last?: AllocationResult;

    constructor(
        public config: SiteConfig,
        public gridMeter = 'M1',
    ) {}

    plug(id: string, phases = 7, draws?: number): this {
        this.cars.set(id, { state: 2, phases, ...(draws !== undefined ? { draws } : {}) });
        return this;
    }

    unplug(id: string): this {
        this.cars.delete(id);
        return this;
    }

    private carDraw(id: string): Phases3 {
        const car = this.cars.get(id);
        const given = this.last?.setpoints.get(id)?.current ?? 0;
        if (!car) return [0, 0, 0];
        return onPhases(car.phases, Math.min(given, car.draws ?? Infinity));
    }

    snapshot() {
        const evses = new Map<string, DeviceSample<EvseReading>>();
        let grid: Phases3 = this.household;
        for (const cfg of this.config.evses) {
            const car = this.cars.get(cfg.id);
            const draw = this.carDraw(cfg.id);
            const state = !car ? 1 : draw.some((d) => d > 0) ? 3 : 2;
            if (!this.silent.has(cfg.id))
                evses.set(cfg.id, {
                    reading: this.unmetered.has(cfg.id) ? { state } : { state, currents: draw },
                    takenAt: this.now,
                });
            const b = rotatePhases(draw, cfg.phaseRotation);
            grid = [grid[0] + b[0], grid[1] + b[1], grid[2] + b[2]];
        }
        const meters = new Map<string, DeviceSample<MeterReading>>();
        if (!this.silent.has(this.gridMeter)) {
            const powerW = Math.round(((grid[0] + grid[1] + grid[2]) * 230) / 1000);
            meters.set(this.gridMeter, {
                reading: this.powerOnly.has(this.gridMeter)
                    ? { powerW }
                    : { currents: grid, powerW },
                takenAt: this.now,
            });
        }
        for (const [id, reading] of this.extraMeters) {
            if (!this.silent.has(id)) meters.set(id, { reading, takenAt: this.now });
        }
        return { now: this.now, evses, meters };
    }

    /** Runs one cycle `dt` ms after the previous one and returns the setpoints by id. */
    step(dt = 1000): Record<string, number> {
        this.now += dt;
        this.last = allocate(this.snapshot(), this.config, this.memory);
        this.memory = this.last.memory;
        return this.currents();
    }

    /** A decision between cycles on a pushed reading (Snapshot.betweenCycles), `dt` ms later. */
    cut(dt = 100): Record<string, number> {
        this.now += dt;
        const snapshot = { ...this.snapshot(), betweenCycles: { mayRaise: false } };
        this.last = allocate(snapshot, this.config, this.memory);
        this.memory = this.last.memory;
        return this.currents();
    }

    /** Runs cycles for `ms` (1 s apart) and returns the last setpoints. */
    run(ms: number): Record<string, number> {
        let out = this.currents();
        for (let t = 0; t < ms; t += 1000) out = this.step(1000);
        return out;
    }

    currents(): Record<string, number> {
        const out: Record<string, number> = {};
        for (const [id, sp] of this.last?.setpoints ?? []) out[id] = sp.current;
        return out;
    }
}
