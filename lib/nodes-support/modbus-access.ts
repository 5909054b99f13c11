// Register access for flows with the addressing of cmd=modbus: a device is a Power Brain name
// (evse, meter1, meter2), a dev_id of the site's device table, or a bus address; a register is
// `8092`, `8062d`, `8050q` or `8016s` (16-bit, 32-bit, 64-bit, string), or `all`.
import { z } from 'zod';
import {
    type BusAddress,
    isPowerBrainName,
    type PowerBrainName,
    resolveDevice,
} from '../modbus/address';
import {
    decode,
    encodeSuffixed,
    parseRegisterRef,
    suffixType,
    type RegisterRef,
} from '../modbus/codec';
import { ModbusError } from '../modbus/errors';
import type { BusPool } from '../modbus/pool';
import { readAllObject, resolveRef, POWER_BRAIN_MAP } from '../modbus/powerbrain-map';
import type { Site } from '../site/site';

export interface ModbusTarget {
    bus: BusAddress;
    unit: number;
    /** The Power Brain unit, when the target is one: its register map checks sizes. */
    powerBrain?: PowerBrainName;
    /** Name for errors. */
    name: string;
}

const DEVICE = z.string().trim().min(1, 'device is empty').max(200);
const UNIT = z.coerce.number().int().min(0).max(255);

/** Resolves what a flow names as a device; throws MODBUS_BAD_REQUEST ("unknown device"). */
export function resolveTarget(
    site: Site | null,
    device: unknown,
    unit?: unknown,
    powerBrainHost = '127.0.0.1',
): ModbusTarget {
    const d = DEVICE.safeParse(device);
    if (!d.success) throw new ModbusError('MODBUS_BAD_REQUEST', '', 'device: a name is required');
    const name = d.data;
    const u = unit === undefined || unit === '' ? undefined : UNIT.safeParse(unit);
    if (u && !u.success) throw new ModbusError('MODBUS_BAD_REQUEST', name, 'unit must be 0..255');
    if (isPowerBrainName(name)) {
        const r = resolveDevice(name, undefined, powerBrainHost);
        return { ...r, powerBrain: name.toLowerCase() as PowerBrainName, name };
    }
    if (/^[EM][1-9][0-9]{0,4}$/.test(name)) {
        const entry = site?.device(name);
        if (!entry) throw new ModbusError('MODBUS_BAD_REQUEST', name, 'unknown device');
        if (!entry.address)
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                name,
                `a ${entry.dev_type} has no Modbus address`,
            );
        const r = resolveDevice(entry.address, u?.data ?? entry.id, powerBrainHost);
        const pb = entry.address.trim().toLowerCase();
        const powerBrain: PowerBrainName | undefined = isPowerBrainName(pb)
            ? (pb as PowerBrainName)
            : entry.dev_type === 'evse_powerbrain'
              ? 'evse'
              : entry.dev_type === 'meter_powerbrain'
                ? r.unit === 3
                    ? 'meter2'
                    : 'meter1'
                : undefined;
        return { ...r, ...(powerBrain ? { powerBrain } : {}), name };
    }
    return { ...resolveDevice(name, u?.data ?? 1, powerBrainHost), name };
}

export type ReadRef = RegisterRef | 'all';

export function parseReadRef(text: unknown): ReadRef {
    const s = String(text ?? '').trim();
    if (s.toLowerCase() === 'all') return 'all';
    return parseRegisterRef(s);
}

const COUNT = z.coerce.number().int().min(1).max(125);

/** Reads one register (decoded), `count` raw words, or `all` (Power Brain units). */
export async function readRegister(
    pool: BusPool,
    user: string,
    target: ModbusTarget,
    ref: ReadRef,
    count?: unknown,
    fc: 3 | 4 = 3,
): Promise<number | string | number[] | Record<string, number | string>> {
    const bus = pool.acquire(target.bus, user);
    const words = (address: number, n: number) =>
        bus.read({ device: target.name, unit: target.unit, fc, address, count: n });
    if (ref === 'all') {
        const pb = target.powerBrain;
        if (!pb)
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                target.name,
                'read=all needs a Power Brain unit',
            );
        const image = new Map<number, number>();
        for (const def of POWER_BRAIN_MAP[pb]) {
            if (def.key === null || def.access === 'w') continue;
            const got = await words(def.address, def.words);
            got.forEach((w, i) => image.set(def.address + i, w));
        }
        return readAllObject(pb, (a, n) =>
            Array.from({ length: n }, (_, i) => image.get(a + i) ?? 0),
        );
    }
    if (count !== undefined && count !== '' && count !== null) {
        const c = COUNT.safeParse(count);
        if (!c.success)
            throw new ModbusError('MODBUS_BAD_REQUEST', target.name, 'count must be 1..125');
        return words(ref.address, c.data);
    }
    if (target.powerBrain) {
        const def = resolveRef(target.powerBrain, ref.address, ref.suffix);
        const w = await words(ref.address, def.words);
        return decode(w, suffixType(def.suffix, def.signed));
    }
    if (ref.suffix === 's') {
        throw new ModbusError('MODBUS_BAD_REQUEST', target.name, 'a string register needs a count');
    }
    const n = ref.suffix === 'd' ? 2 : ref.suffix === 'q' ? 4 : 1;
    return decode(await words(ref.address, n), suffixType(ref.suffix));
}

const VALUE = z.union([z.number().finite(), z.string().max(250)]);
const VALUES = z.array(z.number().int().min(-0x8000).max(0xffff)).min(1).max(123);

/** Writes one suffixed value or consecutive raw 16-bit words (an array). */
export async function writeRegister(
    pool: BusPool,
    user: string,
    target: ModbusTarget,
    ref: RegisterRef,
    value: unknown,
): Promise<void> {
    let words: number[];
    if (Array.isArray(value)) {
        const v = VALUES.safeParse(value);
        if (!v.success)
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                target.name,
                'values must be 16-bit integers',
            );
        words = v.data.map((x) => x & 0xffff);
    } else {
        const v = VALUE.safeParse(
            typeof value === 'string' && ref.suffix !== 's' && value.trim() !== ''
                ? Number(value)
                : value,
        );
        if (!v.success)
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                target.name,
                'value must be a number or a string',
            );
        let width = 1;
        if (target.powerBrain) width = resolveRef(target.powerBrain, ref.address, ref.suffix).words;
        else if (ref.suffix === 's') width = Math.max(1, Math.ceil(String(v.data).length / 2));
        words = encodeSuffixed(v.data, ref.suffix, width);
    }
    const bus = pool.acquire(target.bus, user);
    await bus.write({
        device: target.name,
        unit: target.unit,
        address: ref.address,
        values: words,
    });
}
