// What every Modbus driver shares: its place on a pooled bus, a name for errors, and reading a
// planned set of register blocks.
import { type DeviceAddress, formatBusAddress, resolveDevice } from '../modbus/address';
import type { Bus, BusOptions, DeviceTiming, PollRequest } from '../modbus/bus';
import { ModbusError } from '../modbus/errors';
import type { ReadBlock, RegisterImage } from '../modbus/planner';
import type { BusPool } from '../modbus/pool';

export interface ModbusDeviceOptions {
    /** dev_id, e.g. `E1` or `M2`. */
    id: string;
    /** Vendor address: `host:port`, `COM1,9600,8,N,1`, `/dev/ttyUSB0,19200,8,E,1`, `evse`, `meter1`, `meter2`. */
    address: string;
    /** Modbus unit id (ignored for the Power Brain names, which fix it). Default 1. */
    unit?: number;
    pool: BusPool;
    /** Host of the Power Brain that `evse`, `meter1`, `meter2` refer to. Default 127.0.0.1. */
    powerBrainHost?: string;
    /** Options for the bus if this device is the first to open it. */
    bus?: BusOptions;
    /** This device's own timeout and back-off on a shared line (default: the bus's). */
    timing?: DeviceTiming;
}

let leases = 0;

export abstract class ModbusDevice {
    readonly id: string;
    /** `E1 (127.0.0.1:4701 unit 1)`: how errors name this device. */
    readonly label: string;
    protected readonly where: DeviceAddress;
    protected readonly bus: Bus;
    private readonly pool: BusPool;
    /** Each driver instance holds its own share of the bus, even when ids repeat. */
    private readonly lease: string;
    private closed = false;
    private readonly timeoutMs: number | undefined;
    private readonly backoffMs: number | undefined;

    constructor(options: ModbusDeviceOptions) {
        this.id = options.id;
        this.where = resolveDevice(options.address, options.unit, options.powerBrainHost);
        this.label = `${options.id} (${formatBusAddress(this.where.bus)} unit ${this.where.unit})`;
        this.pool = options.pool;
        this.lease = `${options.id}#${++leases}`;
        this.bus = this.pool.acquire(this.where.bus, this.lease, options.bus);
        this.timeoutMs = options.timing?.timeoutMs;
        this.backoffMs = options.timing?.backoffMs;
    }

    get unit(): number {
        return this.where.unit;
    }

    private closedError(): ModbusError {
        return new ModbusError('MODBUS_CLOSED', this.label, 'driver closed');
    }

    /** A poll of a read plan, made once with the plan rather than on every poll. */
    protected pollRequest(blocks: readonly ReadBlock[]): PollRequest {
        return {
            device: this.label,
            unit: this.where.unit,
            blocks,
            timeoutMs: this.timeoutMs,
            backoffMs: this.backoffMs,
        };
    }

    /** Reads every block of a plan (one request each) into a register image. */
    protected poll(request: PollRequest): Promise<RegisterImage> {
        if (this.closed) return Promise.reject(this.closedError());
        return this.bus.poll(request);
    }

    protected readWords(address: number, count: number, fc: 3 | 4 = 3): Promise<number[]> {
        if (this.closed) return Promise.reject(this.closedError());
        return this.bus.read({
            device: this.label,
            unit: this.where.unit,
            fc,
            address,
            count,
            timeoutMs: this.timeoutMs,
            backoffMs: this.backoffMs,
        });
    }

    /** `fc` 16 for a single register the device takes only as "write multiple". */
    protected writeWords(
        address: number,
        values: readonly number[],
        fc?: 5 | 6 | 16,
    ): Promise<void> {
        if (this.closed) return Promise.reject(this.closedError());
        return this.bus.write({
            device: this.label,
            unit: this.where.unit,
            address,
            values,
            timeoutMs: this.timeoutMs,
            backoffMs: this.backoffMs,
            ...(fc !== undefined ? { fc } : {}),
        });
    }

    /** Raw register read through the shared bus queue (the HTTP API's `cmd=modbus`). */
    readRegisters(address: number, count: number): Promise<number[]> {
        return this.readWords(address, count);
    }

    /** Raw register write through the shared bus queue (the HTTP API's `cmd=modbus`). */
    writeRegisters(address: number, values: readonly number[]): Promise<void> {
        return this.writeWords(address, values);
    }

    /** Wraps a validation failure of decoded values as a bad reply from this device. */
    protected badReply(what: string, cause?: unknown): ModbusError {
        return new ModbusError('MODBUS_BAD_REPLY', this.label, what, { cause });
    }

    /** Releases the bus share; the bus closes when no one else uses it. Never rejects. */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        await this.pool.release(this.bus, this.lease);
    }
}
