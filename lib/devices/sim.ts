// Simulated devices, so that everything runs without hardware: `evse_sim` wallboxes with cars
// that follow their setpoint, and `meter_sim` meters that see a household load profile, PV and
// the simulated cars. All devices of one manager share a SimWorld and its clock; wallbox
// simulators outside the manager (the Power Brain simulator on Modbus TCP) attach their car's
// current to it, so that a simulated grid meter measures them as a real one would.
import type { Clock } from '../core/clock';
import { add3, rotatePhases, ZERO3 } from '../core/phases';
import {
    MeterRole,
    type EvseCommand,
    type EvseDriver,
    type EvseReading,
    type MeterDriver,
    type MeterReading,
    type Phases3,
    type PhaseRotation,
} from '../core/types';
import { Car, type CarOptions } from '../sim/car';

/** Deterministic pseudo-random numbers in [0, 1) from an integer seed (mulberry32). */
export function seededRandom(seed: number): number {
    let t = (seed + 0x6d2b79f5) | 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

export interface HouseholdProfile {
    /** Base load per phase (mA). */
    baseCurrent: Phases3;
    /** Appliances switched on at random, deterministic for a seed: the largest step (mA). */
    stepCurrent: number;
    /** How often the load may change (ms). */
    stepMs: number;
    seed: number;
    /**
     * Appliances per phase (default 1). With one, each step draws a new load of 0..stepCurrent.
     * With n > 1, n appliances of ½..1 × stepCurrent each switch on or off for n steps at a time,
     * staggered so that at most one per phase switches in a step: the load rises and falls in
     * steps no larger than stepCurrent, up to n × stepCurrent above the base.
     */
    appliances?: number;
    /** Where step 0 begins (ms since epoch; default 0: steps fall on whole periods of the clock). */
    origin?: number;
}

export interface PvProfile {
    /** Peak power at noon (W), spread over three phases; 0 = no PV. */
    peakW: number;
    /** Passing clouds, deterministic for a seed; none when absent. */
    clouds?: CloudPattern;
}

export interface CloudPattern {
    seed: number;
    /** How long one stretch of sky lasts (ms); default 5 minutes. */
    slotMs?: number;
    /** Share of the stretches with a cloud (0..1); default 0.3. */
    cover?: number;
    /** Least share of the sun a cloud lets through (0..1); default 0.2. */
    darkest?: number;
}

export const DEFAULT_HOUSEHOLD: HouseholdProfile = {
    baseCurrent: [1500, 1000, 1200],
    stepCurrent: 12_000,
    stepMs: 60_000,
    seed: 1,
};

/** Household load per phase at time `t` (ms since epoch): base plus appliances that come and go. */
export function householdAt(p: HouseholdProfile, t: number): Phases3 {
    const slot = Math.floor((t - (p.origin ?? 0)) / p.stepMs);
    const out: [number, number, number] = [...p.baseCurrent];
    const n = Math.max(1, Math.floor(p.appliances ?? 1));
    for (let phase = 0; phase < 3; phase++) {
        if (n === 1) {
            const r = seededRandom(p.seed * 7919 + slot * 3 + phase);
            // About one slot in three has an appliance on this phase.
            if (r < 0.35) out[phase]! += Math.round((r / 0.35) * p.stepCurrent);
            continue;
        }
        for (let k = 0; k < n; k++) {
            // Appliance k decides anew on the slots where (slot + k) is a multiple of n.
            const period = Math.floor((slot + k) / n);
            const key = ((p.seed * 31 + phase) * 31 + k) * 7919;
            if (seededRandom(key + period * 2) >= 0.5) continue;
            const size = 0.5 + 0.5 * seededRandom(key + period * 2 + 1);
            out[phase]! += Math.round(size * p.stepCurrent);
        }
    }
    return out;
}

/** Share of the sun that reaches the panels at time `t` (0..1): 1 in clear sky. */
export function sunAt(c: CloudPattern | undefined, t: number): number {
    if (!c) return 1;
    const slot = Math.floor(t / (c.slotMs ?? 300_000));
    const r = seededRandom(c.seed * 104_729 + slot);
    const cover = c.cover ?? 0.3;
    if (r >= cover) return 1;
    // A cloud: from the darkest share up to 70 % of the sun, depending on how thick it is.
    const darkest = c.darkest ?? 0.2;
    return darkest + (0.7 - darkest) * (r / cover);
}

/** PV feed-in per phase at time `t` (mA, positive = production): a bell over the day (UTC). */
export function pvAt(p: PvProfile, t: number, voltage = 230): Phases3 {
    const hour = (t / 3_600_000) % 24;
    const shape = Math.max(0, Math.cos(((hour - 12.5) / 7) * (Math.PI / 2)));
    const perPhase = Math.round(
        ((p.peakW * shape * shape * sunAt(p.clouds, t)) / 3 / voltage) * 1000,
    );
    return [perPhase, perPhase, perPhase];
}

export interface HomeBatteryOptions {
    capacityWh: number;
    /** Largest charge and discharge power (W). */
    maxChargeW: number;
    maxDischargeW: number;
    /** State of charge at the start (%). */
    soc: number;
    /** It stops discharging at this state of charge (%); default 5. */
    minSoc?: number;
}

/**
 * A home battery behind a hybrid inverter, as most are run: it keeps the grid at zero — it takes
 * what would be fed in and covers what would be imported, within its power and charge. The
 * manager cannot command it; it only sees it through a storage meter (roles 5/6).
 */
export class SimBattery {
    private socValue: number;
    readonly capacityWh: number;
    readonly maxChargeW: number;
    readonly maxDischargeW: number;
    readonly minSoc: number;

    constructor(opts: HomeBatteryOptions) {
        this.capacityWh = opts.capacityWh;
        this.maxChargeW = opts.maxChargeW;
        this.maxDischargeW = opts.maxDischargeW;
        this.socValue = opts.soc;
        this.minSoc = opts.minSoc ?? 5;
    }

    /** State of charge (%). */
    get soc(): number {
        return this.socValue;
    }

    /** Its power (W, positive = charging) when the rest of the house would exchange `excessW`
     *  with the grid (positive = feed-in). */
    powerFor(excessW: number): number {
        if (excessW > 0) return this.socValue >= 100 ? 0 : Math.min(excessW, this.maxChargeW);
        return this.socValue <= this.minSoc ? 0 : -Math.min(-excessW, this.maxDischargeW);
    }

    /** Stores or takes out what `powerW` delivers over `dtMs`. */
    step(powerW: number, dtMs: number): void {
        const wh = (powerW * dtMs) / 3_600_000;
        this.socValue = Math.min(100, Math.max(0, this.socValue + (wh / this.capacityWh) * 100));
    }
}

export interface SimEvseOptions {
    id: string;
    phaseRotation?: PhaseRotation;
    /** A car plugged in from the start, or none. */
    car?: CarOptions | null;
}

/** Building-phase currents (mA) of a simulated load outside the world, read when measured. */
export type AttachedLoad = () => Phases3;

/** The simulated world of one manager: time, household, PV and the simulated wallboxes. */
export class SimWorld {
    readonly evses = new Map<string, SimEvse>();
    private readonly attached = new Set<{ currents: AttachedLoad }>();
    /** Load switched on by hand or by a test, on top of the household profile (mA per phase). */
    extraLoad: Phases3 = ZERO3;
    /** A home battery that storage meters measure, or none. */
    battery: SimBattery | null = null;
    private lastT: number;

    constructor(
        readonly clock: Clock,
        public household: HouseholdProfile = DEFAULT_HOUSEHOLD,
        public pv: PvProfile = { peakW: 0 },
    ) {
        this.lastT = clock.now();
    }

    /** Moves every car forward to now. */
    advance(): void {
        const now = this.clock.now();
        const dt = now - this.lastT;
        this.lastT = now;
        // The battery goes first, at the power it had over the interval (the cars' draw then).
        if (this.battery && dt > 0) this.battery.step(this.batteryPowerW(), dt);
        // Also with no time passed: a lower limit is followed at once.
        for (const e of this.evses.values()) e.stepCar(Math.max(0, dt));
    }

    /** The home battery's power now (W, positive = charging); 0 without one. */
    batteryPowerW(): number {
        if (!this.battery) return 0;
        const pv = this.pvNow();
        const load = add3(this.householdNow(), this.carsCurrent());
        const excessMa = pv[0] + pv[1] + pv[2] - load[0] - load[1] - load[2];
        return this.battery.powerFor((excessMa * 230) / 1000);
    }

    /** The home battery's currents per phase (mA, charging positive): its inverter is balanced. */
    batteryNow(): Phases3 {
        const each = Math.round((this.batteryPowerW() / 230 / 3) * 1000);
        return [each, each, each];
    }

    /**
     * Adds a load that the grid meter measures with the cars, e.g. a wallbox simulator serving
     * Modbus (its car, rotated onto the building's phases). Returns the function that detaches it.
     */
    attachLoad(currents: AttachedLoad): () => void {
        const entry = { currents };
        this.attached.add(entry);
        return () => {
            this.attached.delete(entry);
        };
    }

    /** How many loads are attached (see attachLoad). */
    get attachedLoads(): number {
        return this.attached.size;
    }

    /** Building-phase currents of all simulated cars, the attached ones included. */
    carsCurrent(): Phases3 {
        let sum = ZERO3;
        for (const e of this.evses.values()) sum = add3(sum, e.buildingCurrents());
        for (const a of this.attached) sum = add3(sum, a.currents());
        return sum;
    }

    householdNow(): Phases3 {
        return add3(householdAt(this.household, this.clock.now()), this.extraLoad);
    }

    /** What the grid connection carries per phase right now (mA): household + cars − PV, and
     *  the home battery's charging (or minus its discharge). */
    gridNow(): Phases3 {
        const pv = this.pvNow();
        const load = add3(add3(this.householdNow(), this.carsCurrent()), this.batteryNow());
        return [load[0] - pv[0], load[1] - pv[1], load[2] - pv[2]];
    }

    pvNow(): Phases3 {
        return pvAt(this.pv, this.clock.now());
    }
}

export class SimEvse implements EvseDriver {
    readonly kind = 'evse';
    readonly keepAliveMs = undefined;
    private car: Car | null = null;
    private command: EvseCommand = { current: 0, chargingEnabled: false, released: false };
    private readonly rotation: PhaseRotation;
    private energyWh = 0;
    /** The contactor: 1 connects the wallbox's L1 only. */
    private contactor: 1 | 3 = 3;
    /** While true the wallbox does not answer (for trying out fail-safe behaviour). */
    silent = false;

    constructor(
        private readonly world: SimWorld,
        opts: SimEvseOptions,
    ) {
        this.id = opts.id;
        this.rotation = opts.phaseRotation ?? 0;
        if (opts.car) this.car = new Car(opts.car);
        world.evses.set(this.id, this);
    }

    readonly id: string;

    plug(car: CarOptions): void {
        this.world.advance();
        this.car = new Car(car);
    }

    unplug(): void {
        this.world.advance();
        this.car = null;
    }

    get plugged(): boolean {
        return this.car !== null;
    }

    /** What the wallbox was last told. */
    get lastCommand(): EvseCommand {
        return this.command;
    }

    get carState(): Car | null {
        return this.car;
    }

    /** The limit the wallbox signals to the car now (mA). */
    private offered(): number {
        if (this.command.released) return Infinity;
        return this.command.chargingEnabled ? this.command.current : 0;
    }

    stepCar(dt: number): void {
        if (!this.car) return;
        const before = this.car.energyWh;
        this.car.step(dt, this.offered(), this.contactor);
        this.energyWh += this.car.energyWh - before;
    }

    buildingCurrents(): Phases3 {
        return this.car ? rotatePhases(this.car.currents, this.rotation) : ZERO3;
    }

    read(): Promise<EvseReading> {
        if (this.silent)
            return Promise.reject(new Error(`wallbox ${this.id}: no answer (simulated)`));
        this.world.advance();
        const car = this.car;
        const currents = car ? car.currents : ZERO3;
        const state: EvseReading['state'] = !car ? 1 : currents.some((c) => c > 0) ? 3 : 2;
        return Promise.resolve({
            state,
            currents,
            powerW: Math.round(car?.powerW ?? 0),
            totalEnergyWh: Math.round(this.energyWh),
            phases: this.contactor,
        });
    }

    /** Switches the contactor; refused while the car draws (never under load). */
    setPhases(phases: 1 | 3): Promise<void> {
        this.world.advance();
        if (this.car && this.car.currents.some((c) => c > 0)) {
            return Promise.reject(new Error(`wallbox ${this.id}: phase switch under load refused`));
        }
        this.contactor = phases;
        return Promise.resolve();
    }

    apply(command: EvseCommand): Promise<void> {
        if (this.silent)
            return Promise.reject(new Error(`wallbox ${this.id}: no answer (simulated)`));
        this.world.advance();
        this.command = command;
        return Promise.resolve();
    }

    close(): Promise<void> {
        // A replacement with the same id may already have taken this one's place.
        if (this.world.evses.get(this.id) === this) this.world.evses.delete(this.id);
        return Promise.resolve();
    }
}

export interface SimMeterOptions {
    id: string;
    /** 3 grid (household + cars − PV ± battery), 1 household consumption, 2 PV production,
     *  5/6 the home battery (with its state of charge). */
    role: MeterRole;
}

export class SimMeter implements MeterDriver {
    readonly kind = 'meter';
    readonly id: string;
    private readonly role: MeterRole;
    private importWh = 0;
    private exportWh = 0;
    private lastT: number;
    /** While true the meter does not answer (for trying out fail-safe behaviour). */
    silent = false;

    constructor(
        private readonly world: SimWorld,
        opts: SimMeterOptions,
    ) {
        this.id = opts.id;
        this.role = opts.role;
        this.lastT = world.clock.now();
    }

    private currents(): Phases3 {
        const w = this.world;
        switch (this.role) {
            case MeterRole.consumption:
                return w.householdNow();
            case MeterRole.production:
                return w.pvNow();
            case MeterRole.gridDemand:
                return w.gridNow();
            case MeterRole.storageHome:
            case MeterRole.storageAll:
                return w.batteryNow();
            default:
                return ZERO3;
        }
    }

    read(): Promise<MeterReading> {
        if (this.silent)
            return Promise.reject(new Error(`meter ${this.id}: no answer (simulated)`));
        this.world.advance();
        const currents = this.currents();
        const voltage = 230;
        const powerW = Math.round(((currents[0] + currents[1] + currents[2]) * voltage) / 1000);
        const now = this.world.clock.now();
        const wh = (powerW * (now - this.lastT)) / 3_600_000;
        this.lastT = now;
        if (wh > 0) this.importWh += wh;
        else this.exportWh -= wh;
        return Promise.resolve({
            currents,
            powerW,
            importWh: Math.round(this.importWh),
            exportWh: Math.round(this.exportWh),
            voltages: [voltage, voltage, voltage],
            ...(this.isStorage && this.world.battery
                ? { soc: Math.round(this.world.battery.soc * 10) / 10 }
                : {}),
        });
    }

    private get isStorage(): boolean {
        return this.role === MeterRole.storageHome || this.role === MeterRole.storageAll;
    }

    close(): Promise<void> {
        return Promise.resolve();
    }
}
