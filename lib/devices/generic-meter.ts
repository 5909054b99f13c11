// A Modbus meter described by configuration (`meter_modbus`): which register holds power,
// currents, voltages and energy, in which data type and scale. Such a map is a small device
// definition, run by the definition driver.
import { z } from 'zod';
import { ModbusError } from '../modbus/errors';
import { DefinedMeter } from './defined-device';
import type { DeviceDefinition, FieldDef } from './definition';
import type { ModbusDeviceOptions } from './modbus-device';

const dataType = z.enum([
    'uint16',
    'int16',
    'uint32',
    'int32',
    'uint64',
    'int64',
    'float32',
    'float64',
]);

export const registerSpecSchema = z.object({
    address: z.number().int().min(0).max(65535),
    type: dataType.default('int32'),
    /** value × scale = the field's unit (W, A, V, Wh). */
    scale: z.number().finite().default(1),
    /** 3 holding, 4 input; default: the map's fc. */
    fc: z.union([z.literal(3), z.literal(4)]).optional(),
});
export type RegisterSpec = z.input<typeof registerSpecSchema>;

const triple = z.tuple([registerSpecSchema, registerSpecSchema, registerSpecSchema]);

export const meterMapSchema = z.object({
    fc: z.union([z.literal(3), z.literal(4)]).default(3),
    wordOrder: z.enum(['big', 'little']).default('big'),
    /** Unrequested registers one request may bridge (only for meters that answer them). */
    maxGap: z.number().int().min(0).max(100).default(0),
    /** Active power (W), positive = import. */
    powerW: registerSpecSchema,
    /** Phase currents (A). */
    currentsA: triple.optional(),
    /** Phase powers (W): their signs give the currents' direction where currents are unsigned. */
    phasePowersW: triple.optional(),
    /** Phase voltages (V). */
    voltagesV: triple.optional(),
    importWh: registerSpecSchema.optional(),
    exportWh: registerSpecSchema.optional(),
    /** State of charge (%) of a storage meter (roles 5/6), where the device reports one. */
    soc: registerSpecSchema.optional(),
});
export type MeterMap = z.input<typeof meterMapSchema>;
type ParsedMap = z.output<typeof meterMapSchema>;
type ParsedSpec = z.output<typeof registerSpecSchema>;

export interface GenericMeterOptions extends ModbusDeviceOptions {
    registers: MeterMap;
}

/** A register map as a device definition (`meter_modbus`): the same fields, one driver. */
export function meterMapToDefinition(map: ParsedMap): DeviceDefinition {
    const field = (s: ParsedSpec): FieldDef => ({
        address: s.address,
        type: s.type,
        scale: s.scale,
        ...(s.fc !== undefined ? { fc: s.fc } : {}),
    });
    const three = (t: readonly ParsedSpec[]): [FieldDef, FieldDef, FieldDef] => [
        field(t[0]!),
        field(t[1]!),
        field(t[2]!),
    ];
    return {
        type: 'meter_modbus',
        kind: 'meter',
        title: 'Modbus meter (register map)',
        fc: map.fc,
        wordOrder: map.wordOrder,
        maxGap: map.maxGap,
        readings: {
            powerW: field(map.powerW),
            ...(map.currentsA ? { currentsA: three(map.currentsA) } : {}),
            ...(map.phasePowersW ? { phasePowersW: three(map.phasePowersW) } : {}),
            ...(map.voltagesV ? { voltagesV: three(map.voltagesV) } : {}),
            ...(map.importWh ? { importWh: field(map.importWh) } : {}),
            ...(map.exportWh ? { exportWh: field(map.exportWh) } : {}),
            ...(map.soc ? { soc: field(map.soc) } : {}),
        },
    };
}

/** `meter_modbus`: a meter whose register map comes with the device-table entry. */
export class GenericModbusMeter extends DefinedMeter {
    constructor(options: GenericMeterOptions) {
        const parsed = meterMapSchema.safeParse(options.registers);
        if (!parsed.success) {
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                options.id,
                `bad register map: ${parsed.error.message}`,
            );
        }
        super({ ...options, definition: meterMapToDefinition(parsed.data) });
    }
}
