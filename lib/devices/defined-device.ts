// The one driver that runs a device definition (lib/devices/definition.ts): a wallbox
// (DefinedEvse) or a meter (DefinedMeter). The definition says which registers hold what; this
// file says how they are read (planned into the fewest requests), decoded (type, word and byte
// order, scale, scale-factor registers, "not available" values) and written (only what changed
// since the last confirmed write, everything again after a reconnect).
import { z } from 'zod';
import type {
    DeviceFailSafe,
    EvseCommand,
    EvseDriver,
    EvseReading,
    EvseState,
    MeterDriver,
    MeterReading,
} from '../core/types';
import type { BusState, PollRequest } from '../modbus/bus';
import { type DataType, decode, encode, type WordOrder, wordCount } from '../modbus/codec';
import { ModbusError } from '../modbus/errors';
import {
    planReads,
    type ReadBlock,
    type RegisterImage,
    type RegisterSpan,
} from '../modbus/planner';
import {
    deviceDefinitionSchema,
    type fieldSchema,
    type ParsedDefinition,
    type writeSchema,
} from './definition';
import { ModbusDevice, type ModbusDeviceOptions } from './modbus-device';

// ---- validation ----

/** A definition that the schema refuses; the message names the field (`readings.powerW.type: …`). */
export class DefinitionError extends Error {
    override readonly name = 'DefinitionError';
    readonly code = 'DEFINITION';
}

/** `control.current.scale: Too small…` for each issue (the first three); any zod error reads so. */
export function definitionIssues(error: z.ZodError, prefix = ''): string {
    return error.issues
        .slice(0, 3)
        .map((i) => {
            const path = [
                prefix,
                ...i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)),
            ]
                .join('')
                .replace(/^\./, '');
            return path ? `${path}: ${i.message}` : i.message;
        })
        .join('; ');
}

/** Checks what the schema cannot say field by field; adds issues with their paths. */
function checkRunnable(d: ParsedDefinition, ctx: z.RefinementCtx): void {
    const fields: [string[], FieldParsed][] = [];
    for (const [name, f] of Object.entries(d.status)) fields.push([['status', name], f]);
    for (const [name, v] of Object.entries(d.readings)) {
        if (Array.isArray(v)) v.forEach((f, i) => fields.push([['readings', name, String(i)], f]));
        else if (v) fields.push([['readings', name], v]);
    }
    for (const [path, f] of fields) {
        if (f.type === 'string' && f.words === undefined) {
            ctx.addIssue({
                code: 'custom',
                path: [...path, 'words'],
                message: 'a string needs words',
            });
        }
        if (wordCount(f.type, f.words ?? 1) > d.maxCount) {
            ctx.addIssue({
                code: 'custom',
                path: [...path, 'type'],
                message: `wider than maxCount ${d.maxCount}`,
            });
        }
    }
    const c = d.control;
    if (!c) return;
    if (!c.current.zeroStops && !c.enable) {
        ctx.addIssue({
            code: 'custom',
            path: ['control', 'enable'],
            message: 'needed to stop charging when control.current.zeroStops is false',
        });
    }
    if (c.current.max < c.current.min) {
        ctx.addIssue({
            code: 'custom',
            path: ['control', 'current', 'max'],
            message: 'must be at least control.current.min',
        });
    }
    const each: [string[], WriteParsed | undefined][] = [
        [['control', 'current'], c.current],
        [['control', 'enable'], c.enable],
        [['control', 'phases'], c.phases],
        [['control', 'failSafe', 'current'], c.failSafe?.current],
        [['control', 'failSafe', 'timeout'], c.failSafe?.timeout],
        [['control', 'keepAlive'], c.keepAlive],
        ...(c.init ?? []).map((w, i): [string[], WriteParsed] => [
            ['control', 'init', String(i)],
            w,
        ]),
    ];
    for (const [path, w] of each) {
        if (!w) continue;
        if (w.fc === 6 && wordCount(w.type as DataType) > 1) {
            ctx.addIssue({
                code: 'custom',
                path: [...path, 'fc'],
                message: `function 6 writes one register; ${w.type} takes more`,
            });
        }
    }
}

/** The schema with the driver's own checks: what a definition must be for this driver to run it. */
export const runnableDefinitionSchema = deviceDefinitionSchema.superRefine(checkRunnable);

/** Parses and checks a definition; throws a DefinitionError that names the field. */
export function parseDefinition(input: unknown, prefix = ''): ParsedDefinition {
    const r = runnableDefinitionSchema.safeParse(input);
    if (!r.success) throw new DefinitionError(definitionIssues(r.error, prefix));
    return r.data;
}

// ---- fields ----

type FieldParsed = z.output<typeof fieldSchema>;
type WriteParsed = z.output<typeof writeSchema>;

/** A field with its address resolved (SunSpec: model start + offset) and defaults filled in. */
export interface Field {
    fc: 3 | 4;
    address: number;
    type: DataType;
    words: number;
    scale: number;
    order: WordOrder;
    byteSwap: boolean;
    sf: { fc: 3 | 4; address: number } | undefined;
    missing: readonly number[] | undefined;
    /** What a missing raw value stands for (undefined: the value is absent). */
    missingValue: number | undefined;
}

function resolveField(d: ParsedDefinition, f: FieldParsed, base: number): Field {
    return {
        fc: f.fc ?? d.fc,
        address: base + f.address,
        type: f.type,
        words: wordCount(f.type, f.words ?? 1),
        scale: f.scale,
        order: f.wordOrder ?? d.wordOrder,
        byteSwap: f.byteSwap ?? d.byteSwap,
        sf: f.scaleFactor
            ? { fc: f.scaleFactor.fc ?? f.fc ?? d.fc, address: base + f.scaleFactor.address }
            : undefined,
        missing: f.missing,
        missingValue: f.missingValue,
    };
}

export function spansOf(fields: readonly Field[]): RegisterSpan[] {
    const spans: RegisterSpan[] = [];
    for (const f of fields) {
        spans.push({ fc: f.fc, address: f.address, count: f.words });
        if (f.sf) spans.push({ fc: f.sf.fc, address: f.sf.address, count: 1 });
    }
    return spans;
}

const swapBytes = (w: number): number => ((w & 0xff) << 8) | ((w >>> 8) & 0xff);

/** The raw value as read (before scaling); a string for string fields. */
function rawOf(image: RegisterImage, f: Field): number | string {
    if (!f.byteSwap) return image.decode(f.address, f.type, f.fc, f.order, f.words);
    return decode(image.get(f.address, f.words, f.fc).map(swapBytes), f.type, f.order);
}

/** The register's unsigned reading of a negative integer (-32768 as int16 is 0x8000). */
function unsignedOf(raw: number, f: Field): number {
    return raw < 0 && Number.isInteger(raw) ? raw + 2 ** (16 * f.words) : raw;
}

function isMissing(raw: number, f: Field): boolean {
    if (Number.isNaN(raw)) return true;
    if (!f.missing) return false;
    return f.missing.includes(raw) || f.missing.includes(unsignedOf(raw, f));
}

/** SunSpec scale factors: int16 exponents; 0x8000 means "not implemented". */
const SF_MISSING = -32768;

/** The field's value in its unit (raw × scale × 10^sf), or undefined where the device has none. */
export function valueOf(image: RegisterImage, f: Field): number | undefined {
    const raw = rawOf(image, f);
    if (typeof raw !== 'number') return undefined;
    if (isMissing(raw, f)) return f.missingValue;
    let v = raw * f.scale;
    if (f.sf) {
        const sf = image.decode(f.sf.address, 'int16', f.sf.fc) as number;
        if (sf === SF_MISSING || sf < -10 || sf > 10) return undefined;
        // Dividing by 10^n keeps 2301 × 10^-1 at 230.1 where multiplying by 0.1 would not.
        v = sf < 0 ? v / 10 ** -sf : v * 10 ** sf;
    }
    return Number.isFinite(v) ? v : undefined;
}

/** Raw status value for state rules (numbers only; a missing value matches no rule). */
function statusOf(image: RegisterImage, f: Field): number | undefined {
    const raw = rawOf(image, f);
    if (typeof raw !== 'number' || isMissing(raw, f)) return undefined;
    return raw;
}

export /** The vendor state: the first rule whose condition holds on the raw status values. */
function stateOf(d: ParsedDefinition, fields: ResolvedFields, image: RegisterImage): EvseState {
    const raw: Record<string, number | undefined> = {};
    for (const [name, f] of fields.status) raw[name] = statusOf(image, f);
    for (const rule of d.states) {
        const holds = Object.entries(rule.when).every(([name, cond]) => {
            const v = raw[name];
            if (v === undefined) return false;
            if (Array.isArray(cond)) return cond.includes(v);
            return (
                (cond.min === undefined || v >= cond.min) &&
                (cond.max === undefined || v <= cond.max)
            );
        });
        if (holds) return rule.state as EvseState;
    }
    return d.defaultState as EvseState;
}

export function textOf(image: RegisterImage, f: Field): string | undefined {
    const raw = rawOf(image, f);
    if (typeof raw === 'string') return raw === '' ? undefined : raw;
    const v = valueOf(image, f);
    return v === undefined ? undefined : String(v);
}

/** Per-phase fields: L2 and L3 absent for a single-phase meter (they read 0). */
export type Triple = readonly [Field, Field | undefined, Field | undefined];

export interface ResolvedFields {
    status: [string, Field][];
    currentsA?: Triple;
    powerW?: Field;
    phasePowersW?: Triple;
    voltagesV?: Triple;
    importWh?: Field;
    exportWh?: Field;
    energyWh?: Field;
    rfid?: Field;
    soc?: Field;
    identity: { model?: Field; serial?: Field; firmware?: Field };
}

export function resolveAll(d: ParsedDefinition, base: number): ResolvedFields {
    const one = (f: FieldParsed): Field => resolveField(d, f, base);
    const three = (t: readonly FieldParsed[]): Triple => [
        one(t[0]!),
        t[1] && one(t[1]),
        t[2] && one(t[2]),
    ];
    const r = d.readings;
    const out: ResolvedFields = {
        status: Object.entries(d.status).map(([k, f]) => [k, one(f)]),
        identity: {},
    };
    if (r.currentsA) out.currentsA = three(r.currentsA);
    if (r.powerW) out.powerW = one(r.powerW);
    if (r.phasePowersW) out.phasePowersW = three(r.phasePowersW);
    if (r.voltagesV) out.voltagesV = three(r.voltagesV);
    if (r.importWh) out.importWh = one(r.importWh);
    if (r.exportWh) out.exportWh = one(r.exportWh);
    if (r.energyWh) out.energyWh = one(r.energyWh);
    if (r.rfid) out.rfid = one(r.rfid);
    if (r.soc) out.soc = one(r.soc);
    if (r.model) out.identity.model = one(r.model);
    if (r.serial) out.identity.serial = one(r.serial);
    if (r.firmware) out.identity.firmware = one(r.firmware);
    return out;
}

function phaseFields(t: Triple | undefined): Field[] {
    const out: Field[] = [];
    for (const f of t ?? []) if (f) out.push(f);
    return out;
}

/** Every field a poll reads (identity is read once, at start). */
export function polledFields(r: ResolvedFields): Field[] {
    return [
        ...r.status.map(([, f]) => f),
        ...phaseFields(r.currentsA),
        ...(r.powerW ? [r.powerW] : []),
        ...phaseFields(r.phasePowersW),
        ...phaseFields(r.voltagesV),
        ...(r.importWh ? [r.importWh] : []),
        ...(r.exportWh ? [r.exportWh] : []),
        ...(r.energyWh ? [r.energyWh] : []),
        ...(r.rfid ? [r.rfid] : []),
        ...(r.soc ? [r.soc] : []),
    ];
}

/**
 * Three phase values; a phase the device has no value for counts 0 (a single-phase meter's L2
 * and L3), and the triple is absent when no phase has one.
 */
export function tripleOf(
    image: RegisterImage,
    t: Triple | undefined,
): [number, number, number] | undefined {
    if (!t) return undefined;
    const v = t.map((f) => f && valueOf(image, f));
    if (v.every((x) => x === undefined)) return undefined;
    return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0];
}

/** Currents in mA; where the currents are unsigned, the phase powers' signs give direction. */
export function currentsOf(
    image: RegisterImage,
    r: ResolvedFields,
): [number, number, number] | undefined {
    const amps = tripleOf(image, r.currentsA);
    if (!amps) return undefined;
    const powers = tripleOf(image, r.phasePowersW);
    return amps.map((a, i) => {
        const mA = Math.round(a * 1000);
        return powers ? (powers[i]! < 0 ? -Math.abs(mA) : Math.abs(mA)) : mA;
    }) as [number, number, number];
}

function roundOpt(v: number | undefined): number | undefined {
    return v === undefined ? undefined : Math.round(v);
}

// ---- identity ----

export interface DeviceIdentity {
    manufacturer?: string;
    model?: string;
    serial?: string;
    firmware?: string;
}

/** SunSpec common model (ID 1): offsets of Mn, Md, Vr and SN (16, 16, 8 and 16 registers). */
const COMMON = { manufacturer: [2, 16], model: [18, 16], firmware: [42, 8], serial: [50, 16] };
const SUNS = [0x5375, 0x6e53];
const END_OF_MODELS = 0xffff;

// ---- the driver ----

export interface DefinedDeviceOptions extends ModbusDeviceOptions {
    /** A definition as written (validated here) or one parsed already. */
    definition: unknown;
    /** Time source for keep-alive writes (ms). */
    now?: () => number;
}

/** A value written and the words that went out (what "changed" compares against). */
interface PendingWrite {
    key: string;
    address: number;
    words: number[];
    fc: 5 | 6 | 16;
}

/** The options' definition, parsed; a bad one is a bad request for this device. */
function checkedDefinition(options: DefinedDeviceOptions): ParsedDefinition {
    try {
        return parseDefinition(options.definition);
    } catch (e) {
        throw new ModbusError(
            'MODBUS_BAD_REQUEST',
            options.id,
            `bad device definition: ${(e as Error).message}`,
            { cause: e },
        );
    }
}

abstract class DefinedDevice extends ModbusDevice {
    readonly definition: ParsedDefinition;
    readonly type: string;
    protected readonly now: () => number;
    private starting: Promise<void> | undefined;
    protected fields: ResolvedFields | undefined;
    private pollPlan: PollRequest | undefined;
    private identityValue: DeviceIdentity | undefined;
    private sunspecModelValue: number | undefined;
    /** Words last confirmed per written register, cleared when the connection is new. */
    protected readonly confirmed = new Map<number, string>();
    /** Connections made so far, and the one the init writes were last made on (−1: none). */
    private connections = 0;
    private initOn = -1;
    private readonly offBusState: () => void;

    constructor(options: DefinedDeviceOptions) {
        const definition = checkedDefinition(options);
        super({ ...options, unit: options.unit ?? definition.unit });
        this.definition = definition;
        this.type = definition.type;
        this.now = options.now ?? Date.now;
        if (!definition.sunspec) this.resolve(0);
        // A new connection may lead to a device that restarted: its volatile registers are lost.
        this.offBusState = this.bus.onState((state: BusState) => {
            if (state === 'connected') this.connectionIsNew();
        });
    }

    protected connectionIsNew(): void {
        this.confirmed.clear();
        this.connections++;
    }

    /** What the device says it is (read at start); undefined before that or where it has none. */
    get identity(): DeviceIdentity | undefined {
        return this.identityValue;
    }

    /** The SunSpec model found by the scan (SunSpec definitions, after start). */
    get sunspecModel(): number | undefined {
        return this.sunspecModelValue;
    }

    /** Read plan of one poll (known at once, or after the SunSpec scan). */
    get readPlan(): readonly ReadBlock[] {
        return this.pollPlan?.blocks ?? [];
    }

    /**
     * Unrequested registers a read may bridge. SunSpec requires every register of a model the
     * device implements to be readable, so a model's fields are read in one request.
     */
    private get maxGap(): number {
        return this.definition.sunspec ? this.definition.maxCount : this.definition.maxGap;
    }

    private resolve(base: number): void {
        const fields = resolveAll(this.definition, base);
        this.fields = fields;
        this.pollPlan = this.pollRequest(
            planReads(spansOf(polledFields(fields)), {
                maxGap: this.maxGap,
                maxCount: this.definition.maxCount,
            }),
        );
    }

    /** SunSpec scan and identity: once, retried after a failure. */
    start(): Promise<void> {
        this.starting ??= this.init().catch((e: unknown) => {
            this.starting = undefined;
            throw e;
        });
        return this.starting;
    }

    private async init(): Promise<void> {
        let identity: DeviceIdentity = {};
        if (this.definition.sunspec) {
            const found = await this.scanSunSpec(this.definition.sunspec);
            this.resolve(found.model);
            this.sunspecModelValue = found.id;
            if (found.common !== undefined) identity = await this.commonModel(found.common);
        }
        const own = this.fields!.identity;
        const idFields = [own.model, own.serial, own.firmware].filter(
            (f): f is Field => f !== undefined,
        );
        if (idFields.length) {
            const blocks = planReads(spansOf(idFields), {
                maxGap: this.maxGap,
                maxCount: this.definition.maxCount,
            });
            try {
                const image = await this.poll(this.pollRequest(blocks));
                const text = (f: Field | undefined): string | undefined =>
                    f ? textOf(image, f) : undefined;
                const found: DeviceIdentity = {
                    model: text(own.model),
                    serial: text(own.serial),
                    firmware: text(own.firmware),
                };
                for (const [k, v] of Object.entries(found))
                    if (v !== undefined) identity[k as keyof DeviceIdentity] = v;
            } catch (e) {
                // A device without the identity registers it was said to have still works.
                if (!(e instanceof ModbusError && e.code === 'MODBUS_EXCEPTION')) throw e;
            }
        }
        this.identityValue = identity;
    }

    /**
     * Finds the `SunS` marker at one of the bases, then walks the model chain (ID, length) to the
     * first model this definition reads; the common model (ID 1) is noted on the way.
     */
    private async scanSunSpec(s: {
        models: number[];
        bases: number[];
    }): Promise<{ model: number; id: number; common: number | undefined }> {
        const fc = this.definition.fc;
        let start: number | undefined;
        for (const base of s.bases) {
            try {
                const w = await this.readWords(base, 2, fc);
                if (w[0] === SUNS[0] && w[1] === SUNS[1]) {
                    start = base + 2;
                    break;
                }
            } catch (e) {
                // A base the device does not have answers an exception: try the next.
                if (!(e instanceof ModbusError && e.code === 'MODBUS_EXCEPTION')) throw e;
            }
        }
        if (start === undefined) {
            throw this.badReply(`no SunSpec marker at ${s.bases.join(', ')}`);
        }
        let common: number | undefined;
        let at = start;
        for (let n = 0; n < 200 && at + 2 <= 0x10000; n++) {
            const [id, length] = await this.readWords(at, 2, fc);
            if (id === undefined || length === undefined || id === END_OF_MODELS) break;
            if (id === 1 && common === undefined) common = at;
            if (s.models.includes(id)) return { model: at, id, common };
            at += 2 + length;
        }
        throw this.badReply(`no SunSpec model ${s.models.join('/')} on the device`);
    }

    private async commonModel(at: number): Promise<DeviceIdentity> {
        const fc = this.definition.fc;
        const words = await this.readWords(at, 66, fc);
        const text = ([offset, count]: number[]): string | undefined => {
            const v = decode(words.slice(offset!, offset! + count!), 'string') as string;
            return v === '' ? undefined : v;
        };
        const out: DeviceIdentity = {};
        for (const [k, where] of Object.entries(COMMON)) {
            const v = text(where);
            if (v !== undefined) out[k as keyof DeviceIdentity] = v;
        }
        return out;
    }

    /** One poll of the planned blocks. */
    protected async pollImage(): Promise<{ image: RegisterImage; fields: ResolvedFields }> {
        await this.start();
        const image = await this.poll(this.pollPlan!);
        return { image, fields: this.fields! };
    }

    // ---- writes ----

    /** The words of `value` written through `w` (raw = round(value / scale)). */
    protected encodeWrite(
        key: string,
        w: WriteParsed,
        value: number,
        rounding: (x: number) => number = Math.round,
    ): PendingWrite {
        // A float register takes the value as it is: rounding it would cut 10.5 A to 10 A.
        const float = w.type === 'float32' || w.type === 'float64';
        const raw = float ? value / w.scale : rounding(value / w.scale);
        // A coil: ON for any value but 0.
        if (w.fc === 5) return { key, address: w.address, words: [raw !== 0 ? 1 : 0], fc: 5 };
        let words: number[];
        try {
            words = encode(raw, w.type, w.wordOrder ?? this.definition.wordOrder);
        } catch (e) {
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                this.label,
                `${key}: ${value} does not fit ${w.type}`,
                { cause: e },
            );
        }
        if (this.definition.byteSwap) words = words.map(swapBytes);
        return { key, address: w.address, words, fc: w.fc ?? (words.length > 1 ? 16 : 6) };
    }

    /** Writes unless the device holds these words from our last confirmed write. */
    protected async writeIfChanged(w: PendingWrite): Promise<void> {
        const text = w.words.join(',');
        if (this.confirmed.get(w.address) === text) return;
        await this.send(w);
    }

    /** Writes, and remembers the words once the device confirmed them. */
    protected async send(w: PendingWrite): Promise<void> {
        this.confirmed.delete(w.address);
        await this.writeWords(w.address, w.words, w.fc);
        this.confirmed.set(w.address, w.words.join(','));
    }

    /** Init writes, once per connection. */
    protected async runInit(): Promise<void> {
        const init = this.definition.control?.init;
        // The first writes open the connection: the one they were made on is known after them.
        if (!init?.length || this.initOn === this.connections) return;
        for (const [i, w] of init.entries()) {
            await this.send(this.encodeWrite(`init[${i}]`, w, w.value));
        }
        this.initOn = this.connections;
    }

    override close(): Promise<void> {
        this.offBusState();
        return super.close();
    }
}

/** A wallbox run from its definition. */
export class DefinedEvse extends DefinedDevice implements EvseDriver {
    readonly kind = 'evse' as const;
    private failSafe: DeviceFailSafe | null = null;
    private failSafeDue = false;
    private lastKeepAlive = -Infinity;
    private lastCurrentWrite = -Infinity;
    private lastState: EvseState | undefined;

    constructor(options: DefinedDeviceOptions & { failSafe?: DeviceFailSafe | null }) {
        super(options);
        if (this.definition.kind !== 'evse') {
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                this.label,
                `${this.type} is a meter, not a wallbox`,
            );
        }
        this.setFailSafe(options.failSafe ?? null);
    }

    private get control(): NonNullable<ParsedDefinition['control']> {
        return this.definition.control!;
    }

    protected override connectionIsNew(): void {
        super.connectionIsNew();
        this.failSafeDue = this.failSafe !== null;
    }

    /** A current the device forgets (`control.current.rewriteMs`) is re-applied this often. */
    get keepAliveMs(): number | undefined {
        return this.control.current.rewriteMs;
    }

    /** Whether the definition can switch between one and three phases. */
    get canSwitchPhases(): boolean {
        return this.control.phases !== undefined;
    }

    /** State of the last reading (undefined before the first). */
    get state(): EvseState | undefined {
        return this.lastState;
    }

    /**
     * Takes the fail-safe from the configuration; written at the next read where the definition
     * has fail-safe registers (and again after a reconnect). null leaves the device's own.
     */
    setFailSafe(failSafe: DeviceFailSafe | null): void {
        const same =
            failSafe === this.failSafe ||
            (failSafe !== null &&
                this.failSafe !== null &&
                failSafe.current === this.failSafe.current &&
                failSafe.timeoutMs === this.failSafe.timeoutMs);
        if (same) return;
        this.failSafe = failSafe ? { ...failSafe } : null;
        this.failSafeDue = failSafe !== null && this.control.failSafe !== undefined;
    }

    async read(): Promise<EvseReading> {
        await this.start();
        await this.runInit();
        await this.keepAlive();
        if (this.failSafeDue) await this.writeFailSafe();
        const { image, fields } = await this.pollImage();
        const state = stateOf(this.definition, fields, image);
        const reading: EvseReading = { state };
        const currents = currentsOf(image, fields);
        if (currents) reading.currents = currents;
        const power = roundOpt(fields.powerW && valueOf(image, fields.powerW));
        if (power !== undefined) reading.powerW = power;
        const energyField = fields.energyWh ?? fields.importWh;
        const energy = roundOpt(energyField && valueOf(image, energyField));
        if (energy !== undefined && energy >= 0) reading.totalEnergyWh = energy;
        const rfid = fields.rfid && textOf(image, fields.rfid);
        if (rfid) reading.rfid = rfid;
        this.lastState = state;
        return reading;
    }

    /** The life-bit write, whenever it is due: checked on every read rather than by a timer. */
    private async keepAlive(): Promise<void> {
        const k = this.control.keepAlive;
        if (!k) return;
        const now = this.now();
        if (now - this.lastKeepAlive < k.everyMs) return;
        await this.send(this.encodeWrite('keepAlive', k, k.value));
        this.lastKeepAlive = now;
    }

    private async writeFailSafe(): Promise<void> {
        const f = this.control.failSafe;
        const wanted = this.failSafe;
        this.failSafeDue = false;
        if (!f || !wanted) return;
        try {
            if (f.timeout) {
                await this.writeIfChanged(
                    this.encodeWrite('failSafe.timeout', f.timeout, wanted.timeoutMs / 1000),
                );
            }
            if (f.current) {
                await this.writeIfChanged(
                    this.encodeWrite('failSafe.current', f.current, wanted.current / 1000, floor),
                );
            }
        } catch (e) {
            this.failSafeDue = true;
            throw e;
        }
    }

    /**
     * The current (clamped to the device's range) and enable, written where they changed. A
     * current the device cannot hold exactly is rounded down: the car never gets more than
     * decided.
     */
    async apply(command: EvseCommand): Promise<void> {
        await this.start();
        await this.runInit();
        const c = this.control;
        const amps = command.current / 1000;
        const charging = command.released ? true : command.chargingEnabled && amps >= c.current.min;
        const clamped = Math.min(c.current.max, Math.max(c.current.min, amps));
        if (charging) {
            if (c.enable)
                await this.writeIfChanged(this.encodeWrite('enable', c.enable, c.enable.on));
            const w = this.encodeWrite('current', c.current, clamped, floor);
            // A current the device forgets after a while is written again when it is due.
            const rewrite = c.current.rewriteMs;
            const now = this.now();
            const due = rewrite !== undefined && now - this.lastCurrentWrite >= rewrite;
            if (due || this.confirmed.get(w.address) !== w.words.join(',')) {
                await this.send(w);
                this.lastCurrentWrite = now;
            }
        } else if (c.current.zeroStops) {
            // The device's own stop word where it is not 0 (ABL: 100 % duty cycle).
            const stop = c.current.stop;
            await this.writeIfChanged(
                stop === undefined
                    ? this.encodeWrite('current', c.current, 0)
                    : {
                          key: 'current',
                          address: c.current.address,
                          words: [stop],
                          fc: c.current.fc ?? 6,
                      },
            );
        } else {
            await this.writeIfChanged(this.encodeWrite('enable', c.enable!, c.enable!.off));
        }
    }

    /** Switches between one and three phases where the definition has the register. */
    async setPhases(phases: 1 | 3): Promise<void> {
        const p = this.control.phases;
        if (!p) {
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                this.label,
                `${this.type} cannot switch phases`,
            );
        }
        await this.start();
        await this.runInit();
        await this.writeIfChanged(this.encodeWrite('phases', p, phases === 1 ? p.one : p.three));
    }
}

/** Rounds down, with room for the float error of e.g. 10.5 / 0.1 = 104.99999999999999. */
const floor = (x: number): number => Math.floor(x + 1e-9);

/** A meter (or inverter) run from its definition. */
export class DefinedMeter extends DefinedDevice implements MeterDriver {
    readonly kind = 'meter' as const;

    constructor(options: DefinedDeviceOptions) {
        super(options);
        if (this.definition.kind !== 'meter') {
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                this.label,
                `${this.type} is a wallbox, not a meter`,
            );
        }
    }

    async read(): Promise<MeterReading> {
        const { image, fields } = await this.pollImage();
        const currents = currentsOf(image, fields);
        const voltages = tripleOf(image, fields.voltagesV);
        let power = fields.powerW && valueOf(image, fields.powerW);
        if (power === undefined) {
            // Without a power register (or its value): the phase powers, else I × U per phase.
            const phasePowers = tripleOf(image, fields.phasePowersW);
            if (phasePowers) power = phasePowers[0] + phasePowers[1] + phasePowers[2];
            else if (currents && voltages)
                power = currents.reduce((t, mA, i) => t + (mA / 1000) * voltages[i]!, 0);
        }
        if (power === undefined) throw this.badReply('the device gives no power value');
        const reading: MeterReading = { powerW: Math.round(power) };
        if (currents) reading.currents = currents;
        if (voltages)
            reading.voltages = voltages.map(Math.round) as unknown as [number, number, number];
        const imported = roundOpt(fields.importWh && valueOf(image, fields.importWh));
        if (imported !== undefined && imported >= 0) reading.importWh = imported;
        const exported = roundOpt(fields.exportWh && valueOf(image, fields.exportWh));
        if (exported !== undefined && exported >= 0) reading.exportWh = exported;
        const soc = fields.soc && valueOf(image, fields.soc);
        if (soc !== undefined && soc >= 0 && soc <= 100) reading.soc = soc;
        return reading;
    }
}
