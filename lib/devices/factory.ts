// Drivers from device-table entries as the vendor writes them: `{dev_type, address, id, dev_id}`.
import { z } from 'zod';
import type { DeviceDriver, DeviceFailSafe } from '../core/types';
import type { BusOptions } from '../modbus/bus';
import { ModbusError } from '../modbus/errors';
import type { BusPool } from '../modbus/pool';
import { GenericModbusMeter, type MeterMap, SDM630_MAP, SDM72DM_MAP } from './generic-meter';
import { PowerBrainEvse, PowerBrainMeter } from './powerbrain';

/** Modbus device types this package drives, with the vendor's display names. */
export const MODBUS_DEV_TYPES = {
    evse_powerbrain: 'cFos Power Brain',
    meter_powerbrain: 'cFos Power Brain S0',
    meter_sdm630: 'Eastron SDM630, SDM630MCT, SDM72DM-V2',
    meter_sdm72dm: 'Eastron SDM72DM V1',
    meter_modbus: 'Modbus meter (register map)',
} as const;
export type ModbusDevType = keyof typeof MODBUS_DEV_TYPES;

export function isModbusDevType(devType: string): devType is ModbusDevType {
    return Object.prototype.hasOwnProperty.call(MODBUS_DEV_TYPES, devType);
}

const deviceConfigSchema = z.object({
    dev_type: z.string(),
    dev_id: z.string().min(1),
    address: z.string().min(1),
    id: z.coerce.number().int().min(0).max(255).optional(),
});

export interface ModbusDeviceConfig {
    dev_type: string;
    /** `E<n>` / `M<n>`. */
    dev_id: string;
    address: string;
    /** Modbus unit id. */
    id?: number;
    /** meter_modbus: the register map. */
    registers?: MeterMap;
    /** evse_powerbrain: the wallbox's own communication fail-safe (null: leave the device's). */
    failSafe?: DeviceFailSafe | null;
}

export interface DriverContext {
    pool: BusPool;
    powerBrainHost?: string;
    bus?: BusOptions;
}

/** A driver for a Modbus device-table entry; throws MODBUS_BAD_REQUEST for what it cannot drive. */
export function createModbusDriver(
    config: ModbusDeviceConfig,
    context: DriverContext,
): DeviceDriver {
    const parsed = deviceConfigSchema.safeParse(config);
    if (!parsed.success) {
        throw new ModbusError(
            'MODBUS_BAD_REQUEST',
            String(config.dev_id ?? ''),
            `bad device config: ${parsed.error.message}`,
        );
    }
    const { dev_type, dev_id, address, id } = parsed.data;
    const base = {
        id: dev_id,
        address,
        pool: context.pool,
        ...(id !== undefined ? { unit: id } : {}),
        ...(context.powerBrainHost !== undefined ? { powerBrainHost: context.powerBrainHost } : {}),
        ...(context.bus !== undefined ? { bus: context.bus } : {}),
    };
    switch (dev_type) {
        case 'evse_powerbrain':
            return new PowerBrainEvse({ ...base, failSafe: config.failSafe ?? null });
        case 'meter_powerbrain':
            return new PowerBrainMeter(base);
        case 'meter_sdm630':
            return new GenericModbusMeter({ ...base, registers: SDM630_MAP });
        case 'meter_sdm72dm':
            return new GenericModbusMeter({ ...base, registers: SDM72DM_MAP });
        case 'meter_modbus':
            if (!config.registers) {
                throw new ModbusError(
                    'MODBUS_BAD_REQUEST',
                    dev_id,
                    'meter_modbus needs a register map',
                );
            }
            return new GenericModbusMeter({ ...base, registers: config.registers });
        default:
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                dev_id,
                `unknown Modbus device type "${dev_type}"`,
            );
    }
}
