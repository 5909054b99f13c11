// The cFos Power Brain register map as data: the EVSE (unit 1, TCP 4701) and the two S0 meters
// (units 2 and 3, TCP 4702/4703). Holding registers, function codes 3, 6 and 16. The order of the
// entries is the order of the keys of the vendor's `cmd=modbus&read=all` answer.
import { type DataType, decode, type Suffix, suffixType } from './codec';
import { ModbusError } from './errors';
import type { PowerBrainName } from './address';

export type Access = 'r' | 'rw' | 'w';

export interface RegisterDef {
    address: number;
    name: string;
    /** Registers the value takes. */
    words: number;
    /** How the vendor's HTTP API addresses it (`d` 32-bit, `q` 64-bit, `s` string). */
    suffix: Suffix;
    access: Access;
    /**
     * Key in `read=all`; null = not listed there. Usually address + suffix; `8004` is listed
     * without its `d` although it holds 32 bits (vendor quirk, kept).
     */
    key: string | null;
    /** May be written often: the others go to flash on the device. */
    volatile?: boolean;
    /** 16-bit register holding a signed value. */
    signed?: boolean;
    /** Unit or meaning, for people. */
    unit?: string;
}

function reg(
    address: number,
    name: string,
    suffix: Suffix,
    access: Access,
    extra: Partial<RegisterDef> & { words?: number } = {},
): RegisterDef {
    const words = extra.words ?? (suffix === 'd' ? 2 : suffix === 'q' ? 4 : 1);
    return { address, name, words, suffix, access, key: `${address}${suffix}`, ...extra };
}

/** Registers of every Power Brain unit. */
export const COMMON_REGISTERS: readonly RegisterDef[] = [
    reg(8000, 'vendor_id', 'd', 'r', { unit: '0xCF05 in the high word' }),
    reg(8002, 'product_id', '', 'r'),
    reg(8003, 'device_id', '', 'r'),
    reg(8004, 'product_version', 'd', 'r', { key: '8004', unit: 'major.minor in the high word' }),
    reg(8005, 'product_build', '', 'r', { key: null }),
    reg(8006, 'mapping_version', '', 'r'),
    reg(8007, 'padding_1', '', 'r'),
    reg(8008, 'serial_no', 's', 'r', { words: 8 }),
    reg(8016, 'name', 's', 'r', { words: 16 }),
    reg(8040, 'slave_id', '', 'rw'),
];

/** S0 meter registers (units 2 and 3). */
export const S0_METER_REGISTERS: readonly RegisterDef[] = [
    reg(8041, 'input', '', 'r'),
    reg(8042, 'pulsesperkwh', 'd', 'rw', { unit: 'pulses/kWh' }),
    reg(8044, 'phases', '', 'rw', { unit: 'bitmask of simulated phases' }),
    reg(8045, 'voltage_l1', '', 'rw', { unit: 'V' }),
    reg(8046, 'voltage_l2', '', 'rw', { unit: 'V' }),
    reg(8047, 'voltage_l3', '', 'rw', { unit: 'V' }),
    reg(8050, 'pulses', 'q', 'rw'),
    reg(8054, 'timeperpulse', 'd', 'r', { unit: 'ms' }),
    reg(8056, 'level', '', 'r'),
    reg(8057, 'meter_flags', '', 'r'),
    reg(8058, 'energy', 'q', 'rw', { unit: 'Wh' }),
    reg(8062, 'power', 'd', 'r', { unit: 'W' }),
    reg(8064, 'current_l1', 'd', 'r', { unit: '0.1 A' }),
    reg(8066, 'current_l2', 'd', 'r', { unit: '0.1 A' }),
    reg(8068, 'current_l3', 'd', 'r', { unit: '0.1 A' }),
    reg(8070, 'reset_pulses', '', 'w'),
    reg(8071, 'reset_energy', '', 'w'),
    reg(8120, 'count_restart', 'd', 'rw'),
];

/** EVSE registers (unit 1); 8057..8068 are the attached meter, readable when 8112 = 1. */
export const EVSE_REGISTERS: readonly RegisterDef[] = [
    reg(8057, 'meter_flags', '', 'r'),
    reg(8058, 'energy', 'q', 'r', { unit: 'Wh' }),
    reg(8062, 'power', 'd', 'r', { unit: 'W' }),
    reg(8064, 'current_l1', 'd', 'r', { unit: '0.1 A' }),
    reg(8066, 'current_l2', 'd', 'r', { unit: '0.1 A' }),
    reg(8068, 'current_l3', 'd', 'r', { unit: '0.1 A' }),
    reg(8080, 'def_fixed_current', '', 'rw', { unit: '0.1 A' }),
    reg(8081, 'def_charg_cur_limit', '', 'rw', { unit: '0.1 A' }),
    reg(8082, 'def_charging_enable', '', 'rw'),
    reg(8083, 'fail_safe_duration', 'd', 'rw', { unit: 's' }),
    reg(8085, 'fail_safe_current', '', 'rw', { unit: '0.1 A' }),
    reg(8086, 'disconnect_cp', '', 'rw', { volatile: true, unit: 's' }),
    reg(8087, 'relay_select', '', 'rw', { volatile: true }),
    reg(8088, 'relay2', '', 'rw', { volatile: true }),
    reg(8090, 'cable_current', '', 'r', { unit: '0.1 A' }),
    reg(8091, 'fixed_current', '', 'rw', { volatile: true, unit: '0.1 A' }),
    reg(8092, 'charge_pilot_state', '', 'r'),
    reg(8093, 'charging_cur_limit', '', 'rw', { volatile: true, unit: '0.1 A' }),
    reg(8094, 'charging_enable', '', 'rw', { volatile: true }),
    reg(8095, 'charging_current', '', 'r', { unit: '0.1 A' }),
    reg(8096, 'last_rfid', 's', 'r', { words: 15 }),
    reg(8111, 'detected_rfids', '', 'r'),
    reg(8112, 'has_meter', '', 'r'),
    reg(8113, 's0_inputs', '', 'r'),
    reg(8120, 'count_restart', 'd', 'rw'),
];

export const POWER_BRAIN_MAP: Readonly<Record<PowerBrainName, readonly RegisterDef[]>> = {
    evse: [...COMMON_REGISTERS, ...EVSE_REGISTERS],
    meter1: [...COMMON_REGISTERS, ...S0_METER_REGISTERS],
    meter2: [...COMMON_REGISTERS, ...S0_METER_REGISTERS],
};

/** Named addresses the drivers use. */
export const PB = {
    vendorId: 8000,
    productId: 8002,
    serial: 8008,
    name: 8016,
    meterFlags: 8057,
    energy: 8058,
    power: 8062,
    currentL1: 8064,
    failSafeDuration: 8083,
    failSafeCurrent: 8085,
    disconnectCp: 8086,
    relaySelect: 8087,
    cableCurrent: 8090,
    cpState: 8092,
    currentLimit: 8093,
    chargingEnable: 8094,
    chargingCurrent: 8095,
    lastRfid: 8096,
    detectedRfids: 8111,
    hasMeter: 8112,
    s0Inputs: 8113,
    voltageL1: 8045,
} as const;

/** Power Brain vendor id, in the high word of 8000. */
export const POWER_BRAIN_VENDOR_ID = 0xcf05;
/** s0_inputs bit 8: 1/3-phase switching permitted while a car is plugged in. */
export const PHASE_SWITCH_WHILE_PLUGGED = 0x100;

/** The register definition that starts at `address`, if any. */
export function findRegister(device: PowerBrainName, address: number): RegisterDef | undefined {
    return POWER_BRAIN_MAP[device].find((r) => r.address === address);
}

/** Every register word address a unit defines (the words of multi-register values included). */
export function definedWords(device: PowerBrainName): Set<number> {
    const out = new Set<number>();
    for (const r of POWER_BRAIN_MAP[device])
        for (let i = 0; i < r.words; i++) out.add(r.address + i);
    return out;
}

export function registerType(def: RegisterDef): DataType {
    return suffixType(def.suffix, def.signed);
}

/** Decodes one register from its words. */
export function decodeRegister(def: RegisterDef, words: readonly number[]): number | string {
    return decode(words.slice(0, def.words), registerType(def));
}

/**
 * The `read=all` object of a unit from a word reader (address, count) → words. Write-only
 * registers read 0, as on the device. Keys are in the vendor's order.
 */
export function readAllObject(
    device: PowerBrainName,
    words: (address: number, count: number) => readonly number[],
): Record<string, number | string> {
    const out: Record<string, number | string> = {};
    for (const def of POWER_BRAIN_MAP[device]) {
        if (def.key === null) continue;
        if (def.access === 'w') {
            out[def.key] = 0;
            continue;
        }
        const w = words(def.address, def.words);
        if (w.length < def.words) {
            throw new ModbusError('MODBUS_BAD_REPLY', device, `register ${def.address} missing`);
        }
        out[def.key] = decodeRegister(def, w);
    }
    return out;
}

/**
 * The register a suffixed reference (`8044`, `8050q`, `8016s`) names on a unit, checked the way
 * the vendor's HTTP layer does: an unknown address is "bad modbus register", a suffix whose
 * width differs from the register's is "bad modbus register size".
 */
export function resolveRef(device: PowerBrainName, address: number, suffix: Suffix): RegisterDef {
    const def = findRegister(device, address);
    if (!def) throw new ModbusError('MODBUS_BAD_REQUEST', device, 'bad modbus register');
    const width = suffix === 'd' ? 2 : suffix === 'q' ? 4 : suffix === 's' ? def.words : 1;
    const sameKind = (suffix === 's') === (def.suffix === 's');
    // 8004 is 32 bits wide but listed without a suffix; accept both spellings.
    if (!sameKind || (width !== def.words && !(def.key === String(def.address) && suffix === ''))) {
        throw new ModbusError('MODBUS_BAD_REQUEST', device, 'bad modbus register size');
    }
    return def;
}
