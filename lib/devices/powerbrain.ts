// cFos Power Brain drivers: the wallbox (`evse_powerbrain`, unit 1) and its S0 meter inputs
// (`meter_powerbrain`, units 2 and 3). What they read and write, and how it is decoded, comes from
// the Power Brain's definitions (lib/devices/definitions/powerbrain.ts); what a definition cannot
// say is here: the vendor-id check, the attached meter read only where the wallbox has one, the
// card count, the fail-safe compared before it is written (it lives in flash), limit and enable in
// one write, and phase switching only where the wallbox permits it.
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
import type { PollRequest } from '../modbus/bus';
import { decode, encode } from '../modbus/codec';
import { ModbusError } from '../modbus/errors';
import { planReads, type ReadBlock, type RegisterImage } from '../modbus/planner';
import { PB, PHASE_SWITCH_WHILE_PLUGGED, POWER_BRAIN_VENDOR_ID } from '../modbus/powerbrain-map';
import {
    currentsOf,
    type Field,
    parseDefinition,
    polledFields,
    type ResolvedFields,
    resolveAll,
    spansOf,
    stateOf,
    textOf,
    tripleOf,
    valueOf,
} from './defined-device';
import { POWER_BRAIN_EVSE, POWER_BRAIN_S0 } from './definitions/powerbrain';
import { ModbusDevice, type ModbusDeviceOptions } from './modbus-device';

const EVSE_DEF = parseDefinition(POWER_BRAIN_EVSE);
const S0_DEF = parseDefinition(POWER_BRAIN_S0);
const EVSE_FIELDS = resolveAll(EVSE_DEF, 0);
const S0_FIELDS = resolveAll(S0_DEF, 0);
const CONTROL = EVSE_DEF.control!;

const int = z.number().int();
const phases = z.tuple([int, int, int]);
const evseReadingSchema = z.object({
    state: z.union([
        z.literal(1),
        z.literal(2),
        z.literal(3),
        z.literal(4),
        z.literal(5),
        z.literal(6),
    ]),
    currents: phases.optional(),
    powerW: int.optional(),
    totalEnergyWh: int.min(0).optional(),
    rfid: z.string().optional(),
});
const meterReadingSchema = z.object({
    currents: phases.optional(),
    powerW: int,
    importWh: int.min(0).optional(),
    voltages: phases.optional(),
});

/**
 * What the schemas above accept, checked without allocating: a reading is checked on every poll,
 * and a schema parse builds a copy of it. Only a reading that fails here goes through the schema,
 * which then names what is wrong (and stays the authority on what is accepted).
 */
const isInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v);
const isPhases = (v: unknown): boolean =>
    Array.isArray(v) && v.length === 3 && isInt(v[0]) && isInt(v[1]) && isInt(v[2]);

function plausibleEvse(r: EvseReading): boolean {
    return (
        isInt(r.state) &&
        r.state >= 1 &&
        r.state <= 6 &&
        (r.currents === undefined || isPhases(r.currents)) &&
        (r.powerW === undefined || isInt(r.powerW)) &&
        (r.totalEnergyWh === undefined || (isInt(r.totalEnergyWh) && r.totalEnergyWh >= 0)) &&
        (r.rfid === undefined || typeof r.rfid === 'string')
    );
}

function plausibleMeter(r: MeterReading): boolean {
    return (
        (r.currents === undefined || isPhases(r.currents)) &&
        isInt(r.powerW) &&
        (r.importWh === undefined || (isInt(r.importWh) && r.importWh >= 0)) &&
        (r.voltages === undefined || isPhases(r.voltages))
    );
}

/** The attached meter's fields (currents, power, energy): read only where the wallbox has one. */
const METER_PART: ResolvedFields = {
    status: [],
    identity: {},
    ...pick(EVSE_FIELDS, 'currentsA', 'powerW', 'energyWh'),
};
/** The wallbox's own fields: state and card. */
const EVSE_PART: ResolvedFields = {
    status: EVSE_FIELDS.status,
    identity: {},
    ...pick(EVSE_FIELDS, 'rfid'),
};
const S0_PART: ResolvedFields = {
    status: [],
    identity: {},
    ...pick(S0_FIELDS, 'currentsA', 'powerW', 'importWh'),
};

function pick<K extends keyof ResolvedFields>(
    from: ResolvedFields,
    ...keys: K[]
): Pick<ResolvedFields, K> {
    const out = {} as Pick<ResolvedFields, K>;
    for (const k of keys) if (from[k] !== undefined) out[k] = from[k];
    return out;
}

const plan = (part: ResolvedFields, maxGap: number): ReadBlock[] =>
    planReads(spansOf(polledFields(part)), { maxGap });
const METER_BLOCKS = plan(METER_PART, 0);
const EVSE_BLOCKS = plan(EVSE_PART, EVSE_DEF.maxGap);
const S0_BLOCKS = plan(S0_PART, 0);

/** The meter's currents (mA). */
function meterCurrents(image: RegisterImage, part: ResolvedFields): [number, number, number] {
    return currentsOf(image, part) ?? [0, 0, 0];
}

/** The meter's power (W); "no value yet" (−1 on the device) reads as 0. */
function meterPowerW(image: RegisterImage, part: ResolvedFields): number {
    return Math.max(0, Math.round(valueOf(image, part.powerW!) ?? 0));
}

function meterEnergyWh(image: RegisterImage, field: Field): number {
    return Math.round(valueOf(image, field) ?? 0);
}

export interface PowerBrainIdentity {
    vendorId: number;
    productId: number;
    serial: string;
    name: string;
}

async function readIdentity(
    read: (a: number, n: number) => Promise<number[]>,
    label: string,
): Promise<PowerBrainIdentity> {
    const words = await read(PB.vendorId, 24); // 8000..8023: ids, versions, serial, name
    const identity = {
        vendorId: words[0]!,
        productId: words[2]!,
        serial: decode(words.slice(8, 16), 'string') as string,
        name: decode(words.slice(16, 24), 'string') as string,
    };
    if (identity.vendorId !== POWER_BRAIN_VENDOR_ID) {
        throw new ModbusError(
            'MODBUS_BAD_REPLY',
            label,
            `not a Power Brain (vendor id 0x${identity.vendorId.toString(16)})`,
        );
    }
    return identity;
}

export interface PowerBrainEvseOptions extends ModbusDeviceOptions {
    /**
     * The wallbox's communication fail-safe (8083 duration, 8085 current): after this long
     * without a Modbus request the wallbox itself falls back to the current, also when the
     * manager is gone. Absent or null: the device keeps its own setting.
     */
    failSafe?: DeviceFailSafe | null;
}

const FAIL_SAFE_TIMEOUT = CONTROL.failSafe!.timeout!;
const FAIL_SAFE_CURRENT = CONTROL.failSafe!.current!;
// The fail-safe's time and current are one write, the limit and enable another: each pair must be
// adjacent registers (they are: 8083/8085 and 8093/8094).
if (
    FAIL_SAFE_CURRENT.address !== FAIL_SAFE_TIMEOUT.address + 2 ||
    CONTROL.enable!.address !== CONTROL.current.address + 1
) {
    throw new Error('Power Brain definition: fail-safe or limit/enable registers are not adjacent');
}

/** Fail-safe time (seconds, 32 bits) and current (0.1 A) as one write; the device clamps to 63 A. */
function failSafeWords(failSafe: DeviceFailSafe): number[] {
    const seconds = Math.floor(failSafe.timeoutMs / 1000 / FAIL_SAFE_TIMEOUT.scale);
    return [
        ...encode(seconds, 'uint32'),
        Math.min(
            Math.round(CONTROL.current.max / FAIL_SAFE_CURRENT.scale),
            Math.floor(failSafe.current / 1000 / FAIL_SAFE_CURRENT.scale + 1e-9),
        ),
    ];
}

export class PowerBrainEvse extends ModbusDevice implements EvseDriver {
    readonly kind = 'evse' as const;
    private failSafe: DeviceFailSafe | null = null;
    /** The device's fail-safe registers must be checked (start, reconnect, new configuration). */
    private failSafeDue = true;
    private failSafeSync: Promise<void> | undefined;
    private readonly offBusState: () => void;
    private starting: Promise<void> | undefined;
    /** The poll of the registers read() needs, known once start() has read the capabilities. */
    private pollPlan: PollRequest | undefined;
    private identityValue: PowerBrainIdentity | undefined;
    private s0Inputs = 0;
    private hasMeter = false;
    private lastState: EvseState | undefined;
    /** The contactor (8087) as read at start and last written. */
    private contactor: 1 | 3 | undefined;

    constructor(options: PowerBrainEvseOptions) {
        super(options);
        this.setFailSafe(options.failSafe ?? null);
        // A new connection may lead to a device that was replaced, reset or set by someone else.
        this.offBusState = this.bus.onState((state) => {
            if (state === 'connected') this.failSafeDue = true;
        });
    }

    /** Re-written by the engine well inside the device's fail-safe time (reads count too). */
    get keepAliveMs(): number | undefined {
        return this.failSafe?.timeoutMs;
    }

    /**
     * Takes a new fail-safe from the configuration; the next read programs it if the device holds
     * another. Throws MODBUS_BAD_REQUEST for values the wallbox cannot hold.
     */
    setFailSafe(failSafe: DeviceFailSafe | null): void {
        if (failSafe) {
            const { current, timeoutMs } = failSafe;
            if (!(Number.isInteger(current) && (current === 0 || current >= 6000))) {
                throw new ModbusError(
                    'MODBUS_BAD_REQUEST',
                    this.label,
                    'the fail-safe current must be 0 or at least 6000 mA',
                );
            }
            if (!(Number.isInteger(timeoutMs) && timeoutMs >= 1000 && timeoutMs <= 0xffff_ffff)) {
                throw new ModbusError(
                    'MODBUS_BAD_REQUEST',
                    this.label,
                    'the fail-safe time must be 1 s or more',
                );
            }
        }
        const same =
            failSafe === this.failSafe ||
            (failSafe !== null &&
                this.failSafe !== null &&
                failSafe.current === this.failSafe.current &&
                failSafe.timeoutMs === this.failSafe.timeoutMs);
        if (same) return;
        this.failSafe = failSafe
            ? { current: failSafe.current, timeoutMs: failSafe.timeoutMs }
            : null;
        this.failSafeDue = true;
    }

    /** Identity read at start (undefined before the first successful read). */
    get identity(): PowerBrainIdentity | undefined {
        return this.identityValue;
    }

    /** Whether the wallbox allows switching between 1 and 3 phases while a car is plugged in. */
    get phaseSwitchWhilePlugged(): boolean {
        return (this.s0Inputs & PHASE_SWITCH_WHILE_PLUGGED) !== 0;
    }

    /** Read plan of one poll: the registers read() needs, one request per contiguous block. */
    get readPlan(): readonly ReadBlock[] {
        return this.pollPlan?.blocks ?? [];
    }

    /** Identity and capabilities: once, retried after a failure. */
    start(): Promise<void> {
        this.starting ??= this.init().catch((e: unknown) => {
            this.starting = undefined;
            throw e;
        });
        return this.starting;
    }

    private async init(): Promise<void> {
        const identity = await readIdentity((a, n) => this.readWords(a, n), this.label);
        const caps = await this.readWords(PB.hasMeter, 2); // 8112 has_meter, 8113 s0_inputs
        const hasMeter = caps[0] === 1;
        this.s0Inputs = caps[1]!;
        this.hasMeter = hasMeter;
        // 8087 is volatile and only the manager writes it: read once, then known from the writes.
        const relay = await this.readWords(PB.relaySelect, 1).catch(() => undefined);
        if (relay?.[0] !== undefined) this.contactor = relay[0] === 1 ? 1 : 3;
        this.pollPlan = this.pollRequest(
            hasMeter ? [...METER_BLOCKS, ...EVSE_BLOCKS] : EVSE_BLOCKS,
        );
        this.identityValue = identity;
    }

    read(): Promise<EvseReading> {
        if (!this.pollPlan) return this.start().then(() => this.read());
        if (this.failSafeDue) return this.programFailSafe().then(() => this.read());
        // Chained rather than awaited: an async function costs several objects per call, and
        // this runs for every wallbox in every cycle.
        return this.poll(this.pollPlan).then(this.toReading, this.pollFailed);
    }

    /** After a failed poll the device may have been away: check its fail-safe when it answers. */
    private readonly pollFailed = (e: unknown): never => {
        this.failSafeDue = true;
        throw e;
    };

    /**
     * Brings the device's fail-safe registers (8083/8085) to the configuration. They live in
     * flash, so they are read first and written only when they differ: at start, after a
     * reconnect or a failed poll, and after a change of the configuration — never periodically.
     */
    private programFailSafe(): Promise<void> {
        this.failSafeSync ??= this.writeFailSafeIfDifferent().finally(() => {
            this.failSafeSync = undefined;
        });
        return this.failSafeSync;
    }

    private async writeFailSafeIfDifferent(): Promise<void> {
        // Cleared first: a change that arrives while this runs marks it due again.
        this.failSafeDue = false;
        const failSafe = this.failSafe;
        if (!failSafe) return;
        try {
            const wanted = failSafeWords(failSafe);
            const present = await this.readWords(FAIL_SAFE_TIMEOUT.address, wanted.length);
            if (present.some((w, i) => w !== wanted[i])) {
                await this.writeWords(FAIL_SAFE_TIMEOUT.address, wanted);
            }
        } catch (e) {
            this.failSafeDue = true;
            throw e;
        }
    }

    private readonly toReading = (image: RegisterImage): EvseReading | Promise<EvseReading> => {
        const state = stateOf(EVSE_DEF, EVSE_PART, image);
        // One literal with every field the poll fills: adding them one by one would grow the
        // object's property store on every poll.
        const reading: EvseReading = this.hasMeter
            ? {
                  state,
                  currents: meterCurrents(image, METER_PART),
                  powerW: meterPowerW(image, METER_PART),
                  totalEnergyWh: meterEnergyWh(image, METER_PART.energyWh!),
              }
            : { state };
        const rfid = textOf(image, EVSE_PART.rfid!);
        if (!rfid) return this.checked(reading);
        reading.rfid = rfid;
        // The reader's count tells a new presentation of the same card from the card that stays
        // in 8096; read only while a card is shown, and optional (older firmware).
        return this.readWords(PB.detectedRfids, 1).then(
            (count) => {
                if (count[0] !== undefined) reading.rfidCount = count[0];
                return this.checked(reading);
            },
            () => this.checked(reading),
        );
    };

    /** The reading if it is plausible; a bad reply that names what is wrong if not. */
    private checked(reading: EvseReading): EvseReading {
        if (!plausibleEvse(reading)) {
            const parsed = evseReadingSchema.safeParse(reading);
            if (!parsed.success)
                throw this.badReply(`implausible values: ${parsed.error.message}`, parsed.error);
        }
        this.lastState = reading.state;
        if (this.contactor !== undefined) reading.phases = this.contactor;
        return reading;
    }

    /** Writes 8093 (limit) and 8094 (enable) in one request; both are volatile registers. */
    apply(command: EvseCommand): Promise<void> {
        // Chained, not awaited, as read() is: with changing setpoints this runs every cycle.
        if (!this.pollPlan) return this.start().then(() => this.apply(command));
        const c = CONTROL.current;
        const enableDef = CONTROL.enable!;
        const raw = (mA: number): number => Math.floor(mA / 1000 / c.scale + 1e-9);
        let limit: number;
        let enable: number;
        if (command.released) {
            // Released (disable_policy −1): the current the allocator counts the wallbox at.
            limit = raw(command.current);
            enable = enableDef.on;
        } else if (!command.chargingEnabled || command.current < c.min * 1000) {
            limit = raw(Math.max(c.min * 1000, command.current));
            enable = enableDef.off;
        } else {
            limit = raw(command.current);
            enable = enableDef.on;
        }
        limit = Math.min(raw(c.max * 1000), Math.max(raw(c.min * 1000), limit));
        return this.writeWords(c.address, [limit, enable]);
    }

    override close(): Promise<void> {
        this.offBusState();
        return super.close();
    }

    /**
     * Switches the contactor between 1 and 3 phases (8087). Refused while a car is plugged in
     * unless the wallbox permits it (8113 bit 8).
     */
    async setPhases(phases: 1 | 3): Promise<void> {
        await this.start();
        const plugged = this.lastState !== undefined && this.lastState !== 1;
        if (plugged && !this.phaseSwitchWhilePlugged) {
            throw new ModbusError(
                'MODBUS_BAD_REQUEST',
                this.label,
                'phase switching while a car is plugged in is not permitted',
            );
        }
        const p = CONTROL.phases!;
        await this.writeWords(p.address, [phases === 1 ? p.one : p.three]);
        this.contactor = phases;
    }
}

export class PowerBrainMeter extends ModbusDevice implements MeterDriver {
    readonly kind = 'meter' as const;
    private starting: Promise<void> | undefined;
    private voltages: [number, number, number] | undefined;
    private identityValue: PowerBrainIdentity | undefined;
    private readonly pollPlan = this.pollRequest(S0_BLOCKS);

    /** Identity read at start (undefined before the first successful read). */
    get identity(): PowerBrainIdentity | undefined {
        return this.identityValue;
    }

    start(): Promise<void> {
        this.starting ??= (async () => {
            this.identityValue = await readIdentity((a, n) => this.readWords(a, n), this.label);
            // configured on the device, not measured: read once
            const voltages = S0_FIELDS.voltagesV!;
            const image = await this.poll(
                this.pollRequest(plan({ status: [], identity: {}, voltagesV: voltages }, 0)),
            );
            this.voltages = tripleOf(image, voltages)!.map(Math.round) as [number, number, number];
        })().catch((e: unknown) => {
            this.starting = undefined;
            throw e;
        });
        return this.starting;
    }

    async read(): Promise<MeterReading> {
        if (!this.voltages) await this.start();
        const image = await this.poll(this.pollPlan);
        const reading: MeterReading = {
            powerW: meterPowerW(image, S0_PART),
            importWh: meterEnergyWh(image, S0_PART.importWh!),
            currents: meterCurrents(image, S0_PART),
        };
        if (this.voltages) reading.voltages = this.voltages;
        if (!plausibleMeter(reading)) {
            const parsed = meterReadingSchema.safeParse(reading);
            if (!parsed.success)
                throw this.badReply(`implausible values: ${parsed.error.message}`, parsed.error);
        }
        return reading;
    }
}
