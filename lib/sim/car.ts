// A deterministic electric car for simulations: it follows the current the wallbox offers with a
// first-order lag, tapers its charge near a full battery and stops when full. No timers, no clock:
// time only advances through step().
import type { Phases3 } from '../core/types';

export interface CarOptions {
    /** Usable battery capacity (Wh). */
    batteryWh: number;
    /** State of charge at plug-in, 0..1. */
    soc: number;
    /** Largest current per phase the on-board charger takes (mA). */
    maxCurrent: number;
    phases: 1 | 2 | 3;
    /** Time to settle on a new offered current (ms); the lag's time constant is a third of it. */
    followMs?: number;
    /** Phase voltage (V). */
    voltage?: number;
}

/** Below this current (mA) the charger switches off rather than drawing a trickle. */
const MIN_DRAW = 1000;
/** State of charge above which the charger tapers its current down towards full. */
const TAPER_FROM = 0.9;
/** Fraction of maxCurrent still drawn just before full. */
const TAPER_END = 0.1;

export class Car {
    private readonly batteryWh: number;
    private readonly maxCurrent: number;
    private readonly phaseCount: 1 | 2 | 3;
    private readonly followMs: number;
    private readonly voltage: number;
    private draw = 0; // mA per active phase
    private activePhases: 1 | 2 | 3;
    private chargedWh = 0;
    private stateOfCharge: number;

    constructor(opts: CarOptions) {
        if (!(opts.batteryWh > 0)) throw new RangeError('batteryWh must be > 0');
        if (!(opts.soc >= 0 && opts.soc <= 1)) throw new RangeError('soc must be within 0..1');
        if (!(opts.maxCurrent >= 0)) throw new RangeError('maxCurrent must be ≥ 0');
        if (![1, 2, 3].includes(opts.phases)) throw new RangeError('phases must be 1, 2 or 3');
        this.batteryWh = opts.batteryWh;
        this.stateOfCharge = opts.soc;
        this.maxCurrent = opts.maxCurrent;
        this.phaseCount = opts.phases;
        this.activePhases = opts.phases;
        this.followMs = Math.max(0, opts.followMs ?? 3000);
        this.voltage = opts.voltage ?? 230;
    }

    /** What the charger would like to draw per phase now, before the wallbox's limit. */
    private demand(): number {
        if (this.stateOfCharge >= 1) return 0;
        if (this.stateOfCharge <= TAPER_FROM) return this.maxCurrent;
        const left = (1 - this.stateOfCharge) / (1 - TAPER_FROM); // 1 → 0 over the taper
        return this.maxCurrent * (TAPER_END + (1 - TAPER_END) * left);
    }

    /**
     * Advances simulated time by dtMs; offered = mA per phase the wallbox allows (0 = none).
     * `wallboxPhases`: phases the wallbox's contactor connects (1 after a 1p switch; default 3);
     * the car then charges on L1..L(min(its phases, wallboxPhases)).
     */
    step(dtMs: number, offered: number, wallboxPhases: 1 | 2 | 3 = 3): void {
        this.activePhases = Math.min(this.phaseCount, wallboxPhases) as 1 | 2 | 3;
        let target = Math.min(Math.max(0, offered), this.demand());
        if (target < MIN_DRAW) target = 0;
        // Never above what is offered: a reduction is followed at once (even with no time
        // passed), a raise with the lag.
        if (target <= this.draw || this.followMs === 0) {
            this.draw = target;
        }
        if (!(dtMs > 0)) return;
        if (target > this.draw) {
            const tau = this.followMs / 3; // ~95 % settled after followMs
            this.draw = target - (target - this.draw) * Math.exp(-dtMs / tau);
            if (target - this.draw < 10) this.draw = target;
        }
        const energyWh = (this.powerW * dtMs) / 3_600_000;
        const room = (1 - this.stateOfCharge) * this.batteryWh;
        const stored = Math.min(energyWh, room);
        this.chargedWh += stored;
        this.stateOfCharge = Math.min(1, this.stateOfCharge + stored / this.batteryWh);
        if (this.stateOfCharge >= 1) {
            this.stateOfCharge = 1;
            this.draw = 0;
        }
    }

    /** mA drawn on the car's phases L1..L(phases) (wallbox side), 0 elsewhere. */
    get currents(): Phases3 {
        const a = Math.round(this.draw);
        return [a, this.activePhases >= 2 ? a : 0, this.activePhases >= 3 ? a : 0];
    }

    get powerW(): number {
        return (this.draw / 1000) * this.voltage * this.activePhases;
    }

    /** Energy charged since plug-in (Wh, fractional). */
    get energyWh(): number {
        return this.chargedWh;
    }

    get soc(): number {
        return this.stateOfCharge;
    }

    get full(): boolean {
        return this.stateOfCharge >= 1;
    }
}
