// Drivers from device-table entries as the vendor writes them: `{dev_type, address, id, dev_id}`.
// Every Modbus type is a device definition (built in or the user's) run by the definition driver,
// except the Power Brain's, whose drivers add what a definition cannot say, and `meter_modbus`,
// whose register map comes with the entry.
import { z } from 'zod';
import type { DeviceDriver, DeviceFailSafe } from '../core/types';
import type { BusOptions } from '../modbus/bus';
import { ModbusError } from '../modbus/errors';
import type { BusPool } from '../modbus/pool';
import { DefinedEvse, DefinedMeter } from './defined-device';
import type { DeviceDefinition } from './definition';
import { GenericModbusMeter, type MeterMap } from './generic-meter';
import { PowerBrainEvse, PowerBrainMeter } from './powerbrain';
import { findDefinition, isModbusDevType, MAP_METER_TYPE, modbusDevTypes } from './registry';

/** Built-in Modbus device types with their display names (dev_meta). */
export const MODBUS_DEV_TYPES: Readonly<Record<string, string>> = modbusDevTypes();

export { isModbusDevType };

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
    /** The user's definitions (the `device_defs` parameter). */
    definitions?: readonly DeviceDefinition[];
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
    if (dev_type === MAP_METER_TYPE) {
        if (!config.registers) {
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                dev_id,
                'meter_modbus needs a register map',
            );
        }
        return new GenericModbusMeter({ ...base, registers: config.registers });
    }
    const definition = findDefinition(dev_type, context.definitions);
    if (!definition) {
        throw new ModbusError(
            'MODBUS_BAD_REQUEST',
            dev_id,
            `unknown Modbus device type "${dev_type}"`,
        );
    }
    const failSafe = config.failSafe ?? null;
    if (dev_type === 'evse_powerbrain') return new PowerBrainEvse({ ...base, failSafe });
    if (dev_type === 'meter_powerbrain') return new PowerBrainMeter(base);
    if (definition.kind === 'evse') return new DefinedEvse({ ...base, definition, failSafe });
    return new DefinedMeter({ ...base, definition });
}
