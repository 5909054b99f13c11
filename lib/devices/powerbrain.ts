// cFos Power Brain drivers: the wallbox (`evse_powerbrain`, unit 1) and its S0 meter inputs
// (`meter_powerbrain`, units 2 and 3). Registers per the vendor's map (lib/modbus/powerbrain-map).
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
import { decode } from '../modbus/codec';
import { ModbusError } from '../modbus/errors';
import { planReads, type ReadBlock, type RegisterImage } from '../modbus/planner';
import { PB, PHASE_SWITCH_WHILE_PLUGGED, POWER_BRAIN_VENDOR_ID } from '../modbus/powerbrain-map';
import { ModbusDevice, type ModbusDeviceOptions } from './modbus-device';

/** Charge-pilot state (8092) → IEC 61851 state as the vendor numbers it (A=1 … error=5). */
export function cpToState(cp: number): EvseState {
    return cp >= 0 && cp <= 3 ? ((cp + 1) as EvseState) : 5;
}

/** mA → the Power Brain's 0.1 A, rounded down so the car never gets more than decided. */
export function toDeciAmps(mA: number): number {
    return Math.floor(mA / 100);
}

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

/** Attached-meter / S0-meter block 8057..8069: flags, energy, power, three currents. */
const METER_BLOCK = { address: PB.meterFlags, count: 13 } as const;
/** Wallbox block 8092..8110: state, limit, enable, current, RFID. */
const EVSE_BLOCK = { address: PB.cpState, count: PB.lastRfid + 15 - PB.cpState } as const;

/** The attached meter's currents (mA) from 8064..8069 (0.1 A each, int32). */
function meterCurrents(image: RegisterImage): [number, number, number] {
    return [
        (image.decode(PB.currentL1, 'int32') as number) * 100,
        (image.decode(PB.currentL1 + 2, 'int32') as number) * 100,
        (image.decode(PB.currentL1 + 4, 'int32') as number) * 100,
    ];
}

/** The attached meter's power (W); −1 means "no value yet" on the device. */
function meterPowerW(image: RegisterImage): number {
    return Math.max(0, image.decode(PB.power, 'int32') as number);
}

function meterEnergyWh(image: RegisterImage): number {
    return image.decode(PB.energy, 'int64') as number;
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

/** 8083 (seconds, 32 bits) and 8085 (0.1 A) as one write; the device clamps to 63 A. */
function failSafeWords(failSafe: DeviceFailSafe): number[] {
    const seconds = Math.floor(failSafe.timeoutMs / 1000);
    return [
        (seconds >>> 16) & 0xffff,
        seconds & 0xffff,
        Math.min(630, toDeciAmps(failSafe.current)),
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
        // 8087 is volatile and only the manager writes it: read once, then known from the writes.
        const relay = await this.readWords(PB.relaySelect, 1).catch(() => undefined);
        if (relay?.[0] !== undefined) this.contactor = relay[0] === 1 ? 1 : 3;
        this.pollPlan = this.pollRequest(
            planReads(hasMeter ? [METER_BLOCK, EVSE_BLOCK] : [EVSE_BLOCK]),
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
            const present = await this.readWords(PB.failSafeDuration, 3);
            if (present.some((w, i) => w !== wanted[i])) {
                await this.writeWords(PB.failSafeDuration, wanted);
            }
        } catch (e) {
            this.failSafeDue = true;
            throw e;
        }
    }

    private readonly toReading = (image: RegisterImage): EvseReading | Promise<EvseReading> => {
        const state = cpToState(image.decode(PB.cpState, 'uint16') as number);
        // One literal with every field the poll fills: adding them one by one would grow the
        // object's property store on every poll.
        const reading: EvseReading = image.has(METER_BLOCK.address, METER_BLOCK.count)
            ? {
                  state,
                  currents: meterCurrents(image),
                  powerW: meterPowerW(image),
                  totalEnergyWh: meterEnergyWh(image),
              }
            : { state };
        const rfid = image.decode(PB.lastRfid, 'string', 3, 'big', 15) as string;
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
        let limit: number;
        let enable: number;
        if (command.released) {
            // Released (disable_policy −1): the current the allocator counts the wallbox at.
            limit = toDeciAmps(command.current);
            enable = 1;
        } else if (!command.chargingEnabled || command.current < 6000) {
            limit = toDeciAmps(Math.max(6000, command.current));
            enable = 0;
        } else {
            limit = toDeciAmps(command.current);
            enable = 1;
        }
        limit = Math.min(630, Math.max(60, limit));
        return this.writeWords(PB.currentLimit, [limit, enable]);
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
        await this.writeWords(PB.relaySelect, [phases === 1 ? 1 : 0]);
        this.contactor = phases;
    }
}

export class PowerBrainMeter extends ModbusDevice implements MeterDriver {
    readonly kind = 'meter' as const;
    private starting: Promise<void> | undefined;
    private voltages: [number, number, number] | undefined;
    private identityValue: PowerBrainIdentity | undefined;
    private readonly pollPlan = this.pollRequest(planReads([METER_BLOCK]));

    /** Identity read at start (undefined before the first successful read). */
    get identity(): PowerBrainIdentity | undefined {
        return this.identityValue;
    }

    start(): Promise<void> {
        this.starting ??= (async () => {
            this.identityValue = await readIdentity((a, n) => this.readWords(a, n), this.label);
            const v = await this.readWords(PB.voltageL1, 3);
            this.voltages = [v[0]!, v[1]!, v[2]!];
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
            powerW: meterPowerW(image),
            importWh: meterEnergyWh(image),
            currents: meterCurrents(image),
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
