// A Modbus meter described by configuration: which register holds power, currents, voltages and
// energy, in which data type and scale. The Eastron presets are such maps.
import { z } from 'zod';
import type { MeterDriver, MeterReading, Phases3 } from '../core/types';
import type { PollRequest } from '../modbus/bus';
import { type DataType, wordCount } from '../modbus/codec';
import { ModbusError } from '../modbus/errors';
import {
    planReads,
    type ReadBlock,
    type RegisterImage,
    type RegisterSpan,
} from '../modbus/planner';
import { ModbusDevice, type ModbusDeviceOptions } from './modbus-device';

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

/** The register map's fields in one list, for planning. */
function specsOf(map: ParsedMap): ParsedSpec[] {
    return [
        map.powerW,
        ...(map.currentsA ?? []),
        ...(map.phasePowersW ?? []),
        ...(map.voltagesV ?? []),
        ...(map.importWh ? [map.importWh] : []),
        ...(map.exportWh ? [map.exportWh] : []),
        ...(map.soc ? [map.soc] : []),
    ];
}

export class GenericModbusMeter extends ModbusDevice implements MeterDriver {
    readonly kind = 'meter' as const;
    private readonly map: ParsedMap;
    private readonly plan: ReadBlock[];
    private readonly pollPlan: PollRequest;

    constructor(options: GenericMeterOptions) {
        const parsed = meterMapSchema.safeParse(options.registers);
        if (!parsed.success) {
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                options.id,
                `bad register map: ${parsed.error.message}`,
            );
        }
        super(options);
        this.map = parsed.data;
        const spans: RegisterSpan[] = specsOf(this.map).map((s) => ({
            address: s.address,
            count: wordCount(s.type as DataType),
            fc: s.fc ?? this.map.fc,
        }));
        this.plan = planReads(spans, { maxGap: this.map.maxGap });
        this.pollPlan = this.pollRequest(this.plan);
    }

    /** Read plan of one poll (one request per block). */
    get readPlan(): readonly ReadBlock[] {
        return this.plan;
    }

    private value(image: RegisterImage, spec: ParsedSpec): number {
        const type = spec.type as DataType;
        const v =
            (image.decode(
                spec.address,
                type,
                spec.fc ?? this.map.fc,
                this.map.wordOrder,
            ) as number) * spec.scale;
        if (!Number.isFinite(v)) throw this.badReply(`register ${spec.address} holds no number`);
        return v;
    }

    async read(): Promise<MeterReading> {
        const image = await this.poll(this.pollPlan);
        const three = (specs: readonly ParsedSpec[], f: (v: number) => number): Phases3 => [
            f(this.value(image, specs[0]!)),
            f(this.value(image, specs[1]!)),
            f(this.value(image, specs[2]!)),
        ];
        const reading: MeterReading = { powerW: Math.round(this.value(image, this.map.powerW)) };
        if (this.map.currentsA) {
            let currents = three(this.map.currentsA, (a) => Math.round(a * 1000));
            if (this.map.phasePowersW) {
                const powers = three(this.map.phasePowersW, (w) => w);
                currents = currents.map((c, i) =>
                    powers[i]! < 0 ? -Math.abs(c) : Math.abs(c),
                ) as unknown as Phases3;
            }
            reading.currents = currents;
        }
        if (this.map.voltagesV) reading.voltages = three(this.map.voltagesV, (v) => Math.round(v));
        if (this.map.importWh) reading.importWh = Math.round(this.value(image, this.map.importWh));
        if (this.map.exportWh) reading.exportWh = Math.round(this.value(image, this.map.exportWh));
        if (this.map.soc) reading.soc = this.value(image, this.map.soc);
        return reading;
    }
}

// ---- Eastron (input registers, float32, big-endian word order) ----

const f = (address: number, scale = 1): RegisterSpec => ({ address, type: 'float32', scale });

/** Eastron SDM630 (and SDM630MCT, SDM72D-M V2): phase values and totals. */
export const SDM630_MAP: MeterMap = {
    fc: 4,
    voltagesV: [f(0x0000), f(0x0002), f(0x0004)],
    currentsA: [f(0x0006), f(0x0008), f(0x000a)],
    phasePowersW: [f(0x000c), f(0x000e), f(0x0010)],
    powerW: f(0x0034),
    importWh: f(0x0048, 1000),
    exportWh: f(0x004a, 1000),
};

/** Eastron SDM72D-M V1: totals only. */
export const SDM72DM_MAP: MeterMap = {
    fc: 4,
    powerW: f(0x0034),
    importWh: f(0x0048, 1000),
    exportWh: f(0x004a, 1000),
};
