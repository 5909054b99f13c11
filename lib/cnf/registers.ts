// cmd=modbus: register reads and writes as the vendor's HTTP layer does them. Devices we drive
// over Modbus are asked through their shared bus queue; devices without Modbus (simulated,
// HTTP input) answer from a register view in the Power Brain layout built from the engine state.
import type { EvseReading, MeterReading, Phases3 } from '../core/types';
import { ModbusDevice } from '../devices/modbus-device';
import type { PowerBrainName } from '../modbus/address';
import { decode, encode, encodeSuffixed, type Suffix } from '../modbus/codec';
import {
    COMMON_REGISTERS,
    EVSE_REGISTERS,
    POWER_BRAIN_MAP,
    S0_METER_REGISTERS,
    type RegisterDef,
} from '../modbus/powerbrain-map';
import { isEvse, isMeter, type DeviceEntry } from '../site/schema';
import type { CnfContext } from './context';
import { badRequest, unknownDevice } from './errors';
import { parseDecimal } from './query';

export type Layout = 'evse' | 'meter';

/** `device=evse` also accepts the S0 registers, as the vendor's own examples do. */
const EVSE_VIEW_MAP: readonly RegisterDef[] = [
    ...POWER_BRAIN_MAP.evse,
    ...S0_METER_REGISTERS.filter((r) => !EVSE_REGISTERS.some((e) => e.address === r.address)),
].sort((a, b) => a.address - b.address);

export function layoutMap(layout: Layout): readonly RegisterDef[] {
    return layout === 'evse' ? EVSE_VIEW_MAP : POWER_BRAIN_MAP.meter1;
}

/** The register of a suffixed reference, checked like the vendor: unknown or wrong width. */
export function resolveIn(
    map: readonly RegisterDef[],
    address: number,
    suffix: Suffix,
): RegisterDef {
    const def = map.find((r) => r.address === address);
    if (!def) throw badRequest('bad modbus register');
    const width = suffix === 'd' ? 2 : suffix === 'q' ? 4 : suffix === 's' ? def.words : 1;
    const sameKind = (suffix === 's') === (def.suffix === 's');
    if (!sameKind || (width !== def.words && !(def.key === String(def.address) && suffix === ''))) {
        throw badRequest('bad modbus register size');
    }
    return def;
}

export interface Target {
    device: DeviceEntry;
    /** Power Brain layout of the device, or null for other Modbus devices (raw access only). */
    layout: Layout | null;
    /** The driver, when the device is read over Modbus. */
    modbus: ModbusDevice | null;
}

const PB_UNIT: Record<PowerBrainName, number> = { evse: 1, meter1: 2, meter2: 3 };

/**
 * `device=` → a device of the site: a dev_id, or a Power Brain name (`evse`, `meter1`, `meter2`):
 * the device with that address, else the Power Brain unit with that id, else (for sites without
 * a Power Brain) the first EVSE / the first or second meter.
 */
export function resolveTarget(ctx: CnfContext, name: string): Target {
    const devices = ctx.site.devices;
    const key = name.trim().toLowerCase();
    let device: DeviceEntry | undefined;
    if (key === 'evse' || key === 'meter1' || key === 'meter2') {
        device =
            devices.find((d) => d.address.trim().toLowerCase() === key) ??
            devices.find(
                (d) => key !== 'evse' && d.dev_type === 'meter_powerbrain' && d.id === PB_UNIT[key],
            ) ??
            (key === 'evse'
                ? devices.find(isEvse)
                : devices.filter(isMeter)[key === 'meter1' ? 0 : 1]);
    } else {
        device = devices.find((d) => d.dev_id.toLowerCase() === key);
    }
    if (!device || device.dev_type === 'evse_group') throw unknownDevice();
    const driver = ctx.site.manager.driver(device.dev_id);
    const modbus = driver instanceof ModbusDevice ? driver : null;
    let layout: Layout | null = isEvse(device) ? 'evse' : 'meter';
    if (modbus && device.dev_type !== 'evse_powerbrain' && device.dev_type !== 'meter_powerbrain') {
        layout = null;
    }
    return { device, layout, modbus };
}

// ---- the register view of a device without Modbus ----

function put(
    words: Map<number, number>,
    def: RegisterDef | number,
    value: number | string,
    n = 1,
): void {
    const address = typeof def === 'number' ? def : def.address;
    const count = typeof def === 'number' ? n : def.words;
    const w =
        typeof value === 'string'
            ? encode(value.slice(0, count * 2), 'string', 'big', count)
            : count === 1
              ? encodeSuffixed(Math.trunc(value) & 0xffff, '')
              : encode(Math.trunc(value), count === 2 ? 'int32' : 'int64');
    w.forEach((x, i) => words.set(address + i, x));
}

/** Every word of the view, from the engine's state and earlier writes. */
export function viewWords(ctx: CnfContext, t: Target): Map<number, number> {
    const layout = t.layout ?? 'meter';
    const words = new Map<number, number>();
    const d = t.device;
    const unit = layout === 'evse' ? 1 : 2;
    put(words, 8000, 0xcf05, 1);
    put(words, 8001, 0, 1);
    put(words, 8002, 1);
    put(words, 8003, 0x100 + unit);
    put(words, 8004, 0x0100);
    put(words, 8005, 0);
    put(words, 8006, 0x0100);
    put(words, 8007, 0);
    put(words, COMMON_REGISTERS[7]!, `evcm-${d.dev_id}`);
    put(words, COMMON_REGISTERS[8]!, 'EVCM register view');
    put(words, 8040, d.id);
    for (const r of layoutMap(layout)) if (!words.has(r.address)) put(words, r, 0);
    const st = ctx.site.manager.deviceState(d.dev_id);
    const voltage = ctx.site.params.voltage;
    const meterBlock = (powerW: number, energyWh: number, c: Phases3): void => {
        put(words, 8057, 1);
        put(words, 8058, energyWh, 4);
        put(words, 8062, powerW, 2);
        put(words, 8064, Math.round(c[0] / 100), 2);
        put(words, 8066, Math.round(c[1] / 100), 2);
        put(words, 8068, Math.round(c[2] / 100), 2);
    };
    if (layout === 'evse') {
        const r = st.sample.reading as EvseReading | undefined;
        const sp = ctx.site.manager.lastCycle?.result.setpoints.get(d.dev_id);
        const c: Phases3 = r?.currents ?? [0, 0, 0];
        const power = r?.powerW ?? Math.round(((c[0] + c[1] + c[2]) * voltage) / 1000);
        const energy = (r?.totalEnergyWh ?? 0) + (ctx.softMeters.get(d.dev_id) ?? 0);
        meterBlock(power, energy, c);
        const state = r?.state ?? 1;
        const limit = Math.floor((sp?.current ?? 0) / 100);
        put(words, 8081, isEvse(d) ? Math.floor(ctx.site.maxChargingCurrentNow(d) / 100) : 160);
        put(words, 8082, 1);
        put(words, 8083, 300, 2);
        put(words, 8085, isEvse(d) ? Math.floor(d.min_charging_cur / 100) : 60);
        put(words, 8090, state === 1 ? 0 : 320);
        put(words, 8092, state <= 4 ? state - 1 : 5);
        put(words, 8093, Math.max(60, limit));
        put(words, 8094, sp?.chargingEnabled && limit > 0 ? 1 : 0);
        put(words, 8095, limit);
        put(
            words,
            EVSE_REGISTERS.find((x) => x.address === 8096)!,
            r?.rfid ?? '',
        );
        put(words, 8112, 1);
        put(words, 8044, 7);
        put(words, 8045, voltage);
        put(words, 8046, voltage);
        put(words, 8047, voltage);
        put(words, 8042, 1000, 2);
    } else {
        const r = st.sample.reading as MeterReading | undefined;
        const c: Phases3 = r?.currents ?? [0, 0, 0];
        const v: Phases3 = r?.voltages ?? [voltage, voltage, voltage];
        // −1: no value yet, as the device reports it before the first pulse.
        meterBlock(r ? r.powerW : -1, r?.importWh ?? 0, c);
        put(words, 8041, 1);
        put(words, 8042, 1000, 2);
        put(words, 8044, 7);
        put(words, 8045, v[0]);
        put(words, 8046, v[1]);
        put(words, 8047, v[2]);
        put(words, 8050, r?.importWh ?? 0, 4);
        put(words, 8056, r && r.powerW > 0 ? 0 : 1);
    }
    for (const [a, w] of ctx.registerWrites.get(d.dev_id) ?? []) words.set(a, w);
    return words;
}

/** Words of a register range from the view; a word outside the layout is a bad register. */
function viewRange(words: Map<number, number>, address: number, count: number): number[] {
    const out: number[] = [];
    for (let a = address; a < address + count; a++) {
        const w = words.get(a);
        if (w === undefined) throw badRequest('bad modbus register');
        out.push(w);
    }
    return out;
}

/** Contiguous runs of a layout's registers, at most 120 words each: one request per run. */
function blocksOf(map: readonly RegisterDef[]): { address: number; count: number }[] {
    const blocks: { address: number; count: number }[] = [];
    for (const r of map) {
        const last = blocks[blocks.length - 1];
        if (
            last &&
            last.address + last.count >= r.address &&
            r.address + r.words - last.address <= 120
        ) {
            last.count = Math.max(last.count, r.address + r.words - last.address);
        } else {
            blocks.push({ address: r.address, count: r.words });
        }
    }
    return blocks;
}

export async function readWords(
    ctx: CnfContext,
    t: Target,
    address: number,
    count: number,
): Promise<number[]> {
    if (t.modbus) return t.modbus.readRegisters(address, count);
    return viewRange(viewWords(ctx, t), address, count);
}

export async function readValue(
    ctx: CnfContext,
    t: Target,
    address: number,
    suffix: Suffix,
): Promise<number | string> {
    if (!t.layout) {
        if (suffix === 's') throw badRequest('string reads need a Power Brain device');
        const n = suffix === 'd' ? 2 : suffix === 'q' ? 4 : 1;
        const w = await readWords(ctx, t, address, n);
        return decode(w, suffix === 'd' ? 'int32' : suffix === 'q' ? 'int64' : 'uint16');
    }
    const def = resolveIn(layoutMap(t.layout), address, suffix);
    if (def.access === 'w') return 0;
    const w = await readWords(ctx, t, def.address, def.words);
    if (def.key === String(def.address) && def.words === 2) return decode(w, 'int32');
    return decode(
        w,
        def.suffix === 's'
            ? 'string'
            : def.suffix === 'd'
              ? 'int32'
              : def.suffix === 'q'
                ? 'int64'
                : 'uint16',
    );
}

/** JSON text sent as is: keeps the vendor's key order, which a plain object would not. */
export class RawJson {
    constructor(readonly text: string) {}
}

/** An answer that is not JSON (a CSV download): its text, type and the file name it suggests. */
export class RawText {
    constructor(
        readonly text: string,
        readonly contentType: string,
        readonly filename?: string,
    ) {}
}

export async function readAll(ctx: CnfContext, t: Target): Promise<RawJson> {
    if (!t.layout) throw badRequest('read=all needs a Power Brain device');
    const map = layoutMap(t.layout === 'evse' ? 'evse' : 'meter').filter(
        (r) => t.layout !== 'evse' || POWER_BRAIN_MAP.evse.includes(r),
    );
    const words = new Map<number, number>();
    if (t.modbus) {
        for (const b of blocksOf(map.filter((r) => r.access !== 'w'))) {
            const w = await t.modbus.readRegisters(b.address, b.count);
            w.forEach((x, i) => words.set(b.address + i, x));
        }
    } else {
        for (const [a, x] of viewWords(ctx, t)) words.set(a, x);
    }
    const out: string[] = [];
    for (const def of map) {
        if (def.key === null) continue;
        if (def.access === 'w') {
            out.push(`${JSON.stringify(def.key)}:0`);
            continue;
        }
        const w = viewRange(words, def.address, def.words);
        const type =
            def.suffix === 's'
                ? 'string'
                : def.words === 2
                  ? 'int32'
                  : def.words === 4
                    ? 'int64'
                    : 'uint16';
        out.push(`${JSON.stringify(def.key)}:${JSON.stringify(decode(w, type))}`);
    }
    return new RawJson(`{${out.join(',')}}`);
}

/** Registers of an EVSE view that the charging manager itself sets. */
const MANAGED = [8093, 8094];

/** The words a write puts at `address`, validated against the layout before anything is sent. */
export function planWrite(
    t: Target,
    address: number,
    suffix: Suffix,
    value: string | undefined,
    values: string | undefined,
): number[] {
    const words = planWords(t, address, suffix, value, values);
    if (!t.modbus && t.layout === 'evse') {
        const hit = MANAGED.find((a) => a >= address && a < address + words.length);
        if (hit !== undefined) {
            throw badRequest(`register ${hit} is set by the charging manager; use override_device`);
        }
    }
    return words;
}

function planWords(
    t: Target,
    address: number,
    suffix: Suffix,
    value: string | undefined,
    values: string | undefined,
): number[] {
    if ((value === undefined) === (values === undefined)) {
        throw badRequest('write needs either value or values');
    }
    const def = t.layout ? resolveIn(layoutMap(t.layout), address, suffix) : undefined;
    if (values !== undefined) {
        const m = /^\s*\[([^\]]*)\]\s*$/.exec(values);
        if (!m) throw badRequest('values must be a list like [1,2,3]');
        const items = m[1]!.split(',').map((s) => s.trim());
        const parsed = items.map(wholeValue);
        if (parsed.length === 0 || parsed.length > 120 || parsed.includes(undefined)) {
            throw badRequest('values must be 1..120 whole numbers');
        }
        const words = parsed as number[];
        if (words.some((x) => x < -32768 || x > 65535)) throw badRequest('bad modbus value');
        if (t.layout) checkWritable(layoutMap(t.layout), address, words.length);
        return words.map((x) => x & 0xffff);
    }
    // The vendor's own examples end some values with a stray quote; tolerate quotes around it.
    const text = value!.replace(/^\s*"?|"?\s*$/g, '');
    if (def?.suffix === 's' || suffix === 's') {
        if (!def) throw badRequest('string writes need a Power Brain device');
        if (def.access === 'r') throw badRequest('read-only modbus register');
        if (text.length > def.words * 2 || !/^[\x20-\x7e]*$/.test(text))
            throw badRequest('bad modbus value');
        return encode(text, 'string', 'big', def.words);
    }
    const n = wholeValue(text);
    if (n === undefined) throw badRequest('bad modbus value');
    const width = def ? def.words : suffix === 'd' ? 2 : suffix === 'q' ? 4 : 1;
    let words: number[];
    try {
        if (width === 1) words = encodeSuffixed(n, '');
        else if (width === 2) words = encode(n, n > 0x7fffffff ? 'uint32' : 'int32');
        else words = encode(n, 'int64');
    } catch {
        throw badRequest('bad modbus value');
    }
    if (def && def.access === 'r') throw badRequest('read-only modbus register');
    return words;
}

/**
 * A register value as text: digits, or an integral-valued decimal ("7.0", as clients that
 * work in floats send it); undefined for anything else.
 */
function wholeValue(text: string): number | undefined {
    if (/^\s*-?\d{1,20}\s*$/.test(text)) return Number(text);
    const n = parseDecimal(text);
    return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
}

function checkWritable(map: readonly RegisterDef[], address: number, count: number): void {
    for (let a = address; a < address + count; a++) {
        const def = map.find((r) => a >= r.address && a < r.address + r.words);
        if (!def) throw badRequest('bad modbus register');
        if (def.access === 'r') throw badRequest('read-only modbus register');
    }
}

export async function writeWords(
    ctx: CnfContext,
    t: Target,
    address: number,
    words: readonly number[],
): Promise<void> {
    if (t.modbus) {
        await t.modbus.writeRegisters(address, words);
        return;
    }
    let store = ctx.registerWrites.get(t.device.dev_id);
    if (!store) {
        store = new Map();
        ctx.registerWrites.set(t.device.dev_id, store);
    }
    words.forEach((w, i) => store.set(address + i, w));
    ctx.touch();
}

/** The Suffix of a reference, as typed. */
export type { Suffix };
