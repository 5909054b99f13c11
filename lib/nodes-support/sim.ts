// The evcm-powerbrain-sim node's config, commands and ring.
import { z } from 'zod';
import { rotatePhases } from '../core/phases';
import type { Phases3, PhaseRotation } from '../core/types';
import type { PowerBrainSim, PowerBrainSimState } from '../sim/powerbrain-sim';
import type { Ring } from './ring';

const bool = z
    .union([z.boolean(), z.enum(['true', 'false', '0', '1'])])
    .transform((v) => v === true || v === 'true' || v === '1');

export const simConfigSchema = z
    .object({
        port: z.coerce
            .number()
            .int()
            .min(1024, 'port must be 1024..65533')
            .max(65533, 'port must be 1024..65533')
            .default(4701),
        plugged: bool.default(true),
        car_current: z.coerce.number().int().min(6000).max(32000).default(16000),
        car_phases: z.coerce.number().int().min(1).max(3).default(3),
        /** 8082 at start: the car may charge before a manager writes (false: it waits). */
        default_enable: bool.default(true),
        /** The evcm-manager whose simulated grid meter measures this car ('' = none). */
        manager: z.string().max(100).default(''),
        /** How the wallbox is wired: its L1 on the building's L1 (0), L2 (120) or L3 (240). */
        phase_rotation: z.coerce
            .number()
            .refine(
                (v) => v === 0 || v === 120 || v === 240,
                'phase_rotation must be 0, 120 or 240',
            )
            .default(0),
    })
    .transform((c) => ({
        port: c.port,
        plugged: c.plugged,
        defaultEnable: c.default_enable,
        manager: c.manager,
        phaseRotation: c.phase_rotation as PhaseRotation,
        car: {
            batteryWh: 60_000,
            soc: 0.3,
            maxCurrent: c.car_current,
            phases: c.car_phases as 1 | 2 | 3,
            followMs: 3000,
        },
    }));

/** The simulator's car as the building's phases carry it, for a simulated grid meter. */
export function gridLoadOf(sim: PowerBrainSim, rotation: PhaseRotation): () => Phases3 {
    return () => rotatePhases(sim.carCurrents, rotation);
}

const commandSchema = z.union([
    z.enum(['plug', 'unplug']),
    z
        .object({
            plug: z.boolean().optional(),
            rfid: z.string().min(1).max(30).optional(),
            meter1_w: z.number().finite().optional(),
            meter2_w: z.number().finite().optional(),
        })
        .strict(),
]);

/** Applies `"plug"`, `"unplug"` or `{plug, rfid, meter1_w, meter2_w}`; throws naming the problem. */
export function simCommand(sim: PowerBrainSim, payload: unknown): void {
    const r = commandSchema.safeParse(payload);
    if (!r.success) {
        throw new Error('msg.payload must be "plug", "unplug" or {plug, rfid, meter1_w, meter2_w}');
    }
    const c = r.data;
    if (c === 'plug') return sim.plug();
    if (c === 'unplug') return sim.unplug();
    if (c.plug === true) sim.plug();
    if (c.plug === false) sim.unplug();
    if (c.rfid) sim.presentRfid(c.rfid);
    if (c.meter1_w !== undefined) sim.setMeterPower(1, c.meter1_w);
    if (c.meter2_w !== undefined) sim.setMeterPower(2, c.meter2_w);
}

export function simRing(s: PowerBrainSimState, port: number): Ring {
    if (!s.plugged) return { fill: 'grey', shape: 'ring', key: 'unplugged', params: { port } };
    const a = Math.round(Math.max(...s.currents) / 100) / 10;
    if (a > 0) return { fill: 'green', shape: 'dot', key: 'charging', params: { port, a } };
    return { fill: 'yellow', shape: 'dot', key: 'plugged', params: { port } };
}
