// Mapping between a wallbox's own phases and the building's phases.
import type { Phases3, PhaseRotation } from './types';

export const ZERO3: Phases3 = [0, 0, 0];

/** Building phase index of wallbox phase `i` under `rotation` (120°: wallbox L1 → building L2). */
export function buildingPhase(i: number, rotation: PhaseRotation): number {
    return (i + rotation / 120) % 3;
}

/** Wallbox-side phase bitmask → building-side bitmask. */
export function rotateMask(mask: number, rotation: PhaseRotation): number {
    let out = 0;
    for (let i = 0; i < 3; i++) if (mask & (1 << i)) out |= 1 << buildingPhase(i, rotation);
    return out;
}

/** Wallbox-side currents → building-side currents. */
export function rotatePhases(values: Phases3, rotation: PhaseRotation): Phases3 {
    const out: [number, number, number] = [0, 0, 0];
    for (let i = 0; i < 3; i++) out[buildingPhase(i, rotation)] = values[i]!;
    return out;
}

export function phaseCount(mask: number): number {
    return (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
}

/** `value` on every phase in `mask`, 0 elsewhere. */
export function onPhases(mask: number, value: number): Phases3 {
    return [mask & 1 ? value : 0, mask & 2 ? value : 0, mask & 4 ? value : 0];
}

export function add3(a: Phases3, b: Phases3): Phases3 {
    return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}

export function sub3(a: Phases3, b: Phases3): Phases3 {
    return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

export function max3(a: Phases3): number {
    return Math.max(a[0], a[1], a[2]);
}
