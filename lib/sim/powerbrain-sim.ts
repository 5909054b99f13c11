// A simulated cFos Power Brain on real Modbus TCP: the EVSE (unit 1) with its attached meter and
// a car, and the two S0 meters (units 2 and 3). The EVSE port answers units 1, 2 and 3; port+1
// and port+2 serve S0 meter 1 and 2 (any unit id), like the device's ports 4701..4703.
//
// Time advances lazily: every request (and every state read) first moves the simulation to
// the clock's now. There are no timers, so nothing is left running between requests.
//
// The communication fail-safe (8083 fail_safe_duration, 8085 fail_safe_current) works as the
// vendor documents it: when no Modbus request (read or write) reaches the EVSE unit for the
// duration, the wallbox falls back to the fail-safe current, 0 = charging stops. It then holds
// that current in its control registers (8093 limit, 8094 enable) until a client writes them
// again, so a client that only reads sees the fail-safe and does not end it. The timer starts
// with the first request after power-on; before that the power-on defaults (8081/8082) apply.
import { createServer, type Socket } from 'node:net';
import { ServerTCP } from 'modbus-serial';
import { encode } from '../modbus/codec';
import {
    definedWords,
    PB,
    PHASE_SWITCH_WHILE_PLUGGED,
    POWER_BRAIN_MAP,
    type RegisterDef,
} from '../modbus/powerbrain-map';
import type { PowerBrainName } from '../modbus/address';
import type { Phases3 } from '../core/types';
import { Car, type CarOptions } from './car';

export interface S0MeterSimOptions {
    /** Power the meter measures (W); the energy counter and pulses follow it. */
    powerW?: number;
    /** Phases the meter spreads the power over (bitmask, 8044). */
    phases?: number;
}

export interface PowerBrainSimOptions {
    host?: string;
    /** EVSE port; the S0 meters are on port+1 and port+2. 0 = any free ports. Default 4701. */
    port?: number;
    /** Serve the S0 meters on their own ports (default true). */
    meterPorts?: boolean;
    /** The car that is plugged in by plug() without arguments and at start with `plugged`. */
    car?: CarOptions;
    plugged?: boolean;
    /** Largest current the wallbox allows (mA), whatever is written to 8093. Default 32000. */
    maxCurrent?: number;
    /** Current rating of the charging cable (mA) reported in 8090 while plugged. Default 32000. */
    cableCurrent?: number;
    /**
     * 8082 (default enable) at power-on: whether the wallbox lets a car charge before anyone
     * writes to it (default true). Sites under a load manager set it to false.
     */
    defaultEnable?: boolean;
    /** 8113 bit 8: 1/3-phase switching permitted while plugged (default true). */
    phaseSwitching?: boolean;
    /** Serial number (8008); default `sim-<EVSE port>`, so that every simulator has its own. */
    serial?: string;
    meter1?: S0MeterSimOptions;
    meter2?: S0MeterSimOptions;
    /** Clock (ms); injected for deterministic tests. */
    now?: () => number;
}

export interface PowerBrainSimState {
    plugged: boolean;
    /** 8092: 0 A, 1 B, 2 C, … */
    cpState: number;
    /** mA the wallbox offers the car now (after limit, enable, fail-safe and model clamp). */
    offered: number;
    currentLimit: number;
    chargingEnabled: boolean;
    failSafeActive: boolean;
    /** How often the communication fail-safe took over. */
    failSafeTrips: number;
    /** When the EVSE unit last got a Modbus request (ms), null before the first one. */
    lastRequestAt: number | null;
    /** Registers written that the device keeps in flash (all but 8086–8088, 8091, 8093, 8094). */
    flashWrites: number;
    phases: 1 | 3;
    currents: Phases3;
    powerW: number;
    /** Total of the attached meter (Wh). */
    totalEnergyWh: number;
    soc: number | undefined;
    rfid: string;
    /** Modbus requests served, all ports. */
    requests: number;
    /** The wallbox keeps its connections but answers nothing (setSilent). */
    silent: boolean;
    /** Requests received while silent and left unanswered, all ports. */
    dropped: number;
}

/** A TCP port that is free right now on `host`. */
export function freePort(host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
        const probe = createServer();
        probe.once('error', reject);
        probe.listen(0, host, () => {
            const address = probe.address();
            const port = typeof address === 'object' && address ? address.port : 0;
            probe.close(() => resolve(port));
        });
    });
}

function canListen(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const probe = createServer();
        probe.once('error', () => resolve(false));
        probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
}

/**
 * A port that is free together with the next `count − 1` ports, below the ephemeral range
 * (32768+), where outgoing connections of other processes could take one between probe and use.
 */
export async function freePortBlock(count = 3): Promise<number> {
    for (let attempt = 0; attempt < 50; attempt++) {
        const base = 20_000 + Math.floor(Math.random() * (32_768 - 20_000 - count));
        let free = true;
        for (let i = 0; i < count && free; i++) free = await canListen(base + i);
        if (free) return base;
    }
    throw new Error(`no block of ${count} free ports found`);
}

export const DEFAULT_CAR: CarOptions = {
    batteryWh: 60_000,
    soc: 0.3,
    maxCurrent: 16_000,
    phases: 3,
    followMs: 3000,
};

const UNIT_OF: Record<PowerBrainName, number> = { evse: 1, meter1: 2, meter2: 3 };

interface ModbusFault {
    modbusErrorCode: number;
}
const illegalAddress: ModbusFault = { modbusErrorCode: 2 };
const illegalValue: ModbusFault = { modbusErrorCode: 3 };

class S0Meter {
    powerW: number;
    phases: number;
    voltages: [number, number, number] = [230, 230, 230];
    pulsesPerKWh = 1000;
    energyWh = 0;
    lastPulseGapMs = 0;
    slaveId: number;

    constructor(unit: number, opts: S0MeterSimOptions = {}) {
        this.slaveId = unit;
        this.powerW = opts.powerW ?? 0;
        this.phases = opts.phases ?? 7;
    }

    get pulses(): number {
        return Math.floor((this.energyWh * this.pulsesPerKWh) / 1000);
    }

    advance(dtMs: number): void {
        this.energyWh += (Math.max(0, this.powerW) * dtMs) / 3_600_000;
        this.lastPulseGapMs =
            this.powerW > 0 ? Math.round(3_600_000_000 / (this.powerW * this.pulsesPerKWh)) : 0;
    }

    /** Current per phase in 0.1 A. */
    phaseCurrents(): [number, number, number] {
        const n = (this.phases & 1) + ((this.phases >> 1) & 1) + ((this.phases >> 2) & 1) || 1;
        return [0, 1, 2].map((i) =>
            this.phases & (1 << i) ? Math.round((this.powerW / n / this.voltages[i]!) * 10) : 0,
        ) as [number, number, number];
    }
}

export class PowerBrainSim {
    private readonly opts: PowerBrainSimOptions;
    private readonly now: () => number;
    private readonly servers: ServerTCP[] = [];
    private readonly portsOf: { evse: number; meter1: number; meter2: number } = {
        evse: 0,
        meter1: 0,
        meter2: 0,
    };
    private readonly defined: Record<PowerBrainName, Set<number>>;
    private car: Car | undefined;
    private last: number;
    private requestCount = 0;
    private silentMode = false;
    private droppedCount = 0;
    private started = false;
    private closed = false;
    // EVSE state
    private limit = 160; // 0.1 A
    private enabled = 1;
    private fixedCurrent = 0;
    private relaySelect = 0;
    private relay2 = 0;
    /** Changes of 8087, and those made while the car drew current. */
    relaySwitches = 0;
    relaySwitchesUnderLoad = 0;
    private failSafeDuration = 300; // s
    private failSafeCurrent = 60; // 0.1 A
    private defaults = { fixed: 0, limit: 160, enable: 1 };
    private disconnectUntil = 0;
    /** Last request to the EVSE unit (ms); null = none since power-on. */
    private lastComm: number | null = null;
    /** The fail-safe has taken over the control registers and no request has come since. */
    private failSafeHeld = false;
    private failSafeTrips = 0;
    private flashWrites = 0;
    private rfid = '';
    private rfidCount = 0;
    private baseEnergyWh = 0;
    private slaveId = 1;
    private restarts = 0;
    private readonly meters: [S0Meter, S0Meter];

    constructor(options: PowerBrainSimOptions = {}) {
        this.opts = options;
        this.now = options.now ?? Date.now;
        this.last = this.now();
        this.meters = [new S0Meter(2, options.meter1), new S0Meter(3, options.meter2)];
        if (options.defaultEnable === false) this.defaults.enable = this.enabled = 0;
        this.defined = {
            evse: definedWords('evse'),
            meter1: definedWords('meter1'),
            meter2: definedWords('meter2'),
        };
        if (options.plugged) this.plug();
    }

    /** Ports the units are served on (after start()). */
    get ports(): { evse: number; meter1: number; meter2: number } {
        return { ...this.portsOf };
    }

    get host(): string {
        return this.opts.host ?? '127.0.0.1';
    }

    /** The serial number every unit reports (8008), as on the device: the EVSE port makes it unique. */
    get serial(): string {
        return this.opts.serial ?? `sim-${this.portsOf.evse}`;
    }

    /** Starts serving; resolves when every port listens. */
    async start(): Promise<void> {
        if (this.started) throw new Error('simulator already started');
        this.started = true;
        const base = this.opts.port ?? 4701;
        const withMeters = this.opts.meterPorts ?? true;
        const plan: [keyof typeof this.portsOf, number, number][] = [['evse', base, 255]];
        if (withMeters) {
            plan.push(
                ['meter1', base === 0 ? 0 : base + 1, 255],
                ['meter2', base === 0 ? 0 : base + 2, 255],
            );
        }
        try {
            for (const [device, port] of plan) {
                const served: readonly PowerBrainName[] =
                    device === 'evse' ? ['evse', 'meter1', 'meter2'] : [device];
                this.portsOf[device] = await this.listen(port, served);
            }
        } catch (e) {
            await this.close();
            throw e;
        }
    }

    /** ServerTCP treats port 0 as 502, so "any free port" is probed first (and retried if taken meanwhile). */
    private async listen(port: number, served: readonly PowerBrainName[]): Promise<number> {
        if (port !== 0) return this.listenOn(port, served);
        for (let attempt = 1; ; attempt++) {
            try {
                return await this.listenOn(await freePort(this.host), served);
            } catch (e) {
                if (attempt >= 5 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
            }
        }
    }

    private listenOn(port: number, served: readonly PowerBrainName[]): Promise<number> {
        const pick = (unitID: number): PowerBrainName => {
            if (served.length === 1) return served[0]!;
            const hit = served.find((d) => UNIT_OF[d] === unitID);
            if (!hit) throw { modbusErrorCode: 11 } satisfies ModbusFault; // no such unit here
            return hit;
        };
        const vector = {
            getHoldingRegister: (addr: number, unitID: number): number =>
                this.read(pick(unitID), addr, 1)[0]!,
            getMultipleHoldingRegisters: (addr: number, length: number, unitID: number): number[] =>
                this.read(pick(unitID), addr, length),
            getInputRegister: (): number => {
                throw { modbusErrorCode: 1 } satisfies ModbusFault;
            },
            getMultipleInputRegisters: (): number[] => {
                throw { modbusErrorCode: 1 } satisfies ModbusFault;
            },
            setRegister: (addr: number, value: number, unitID: number): void =>
                this.write(pick(unitID), addr, [value]),
            setRegisterArray: (addr: number, values: number[], unitID: number): void =>
                this.write(pick(unitID), addr, values),
        };
        return new Promise<number>((resolve, reject) => {
            const server = new ServerTCP(vector, { host: this.host, port, unitID: 255 });
            this.servers.push(server);
            const internal = server as unknown as { _server: import('node:net').Server };
            internal._server.on('connection', (s: Socket) => {
                // Without no-delay, pipelined requests stall ~40 ms on Nagle and delayed ACKs.
                s.setNoDelay(true);
                this.gate(s);
            });
            server.on('socketError', () => undefined);
            server.once('serverError', (e: unknown) =>
                reject(e instanceof Error ? e : new Error(String(e))),
            );
            server.once('initialized', () => {
                const address = internal._server.address();
                resolve(typeof address === 'object' && address ? address.port : port);
            });
        });
    }

    /** Stops serving and drops every connection. Never rejects. */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        await Promise.all(
            this.servers.map(
                (server) =>
                    new Promise<void>((resolve) => {
                        const internal = server as unknown as {
                            _server: import('node:net').Server;
                        };
                        if (!internal._server.listening) {
                            for (const sock of server.socks.keys()) sock.destroy();
                            resolve();
                            return;
                        }
                        server.close(() => resolve());
                    }),
            ),
        );
    }

    /**
     * A hung wallbox: connections stay open and new ones are accepted, every request is read and
     * dropped without an answer, so that a client sees timeouts, not a refused or reset
     * connection. setSilent(false) answers again, on the same connections.
     */
    setSilent(silent: boolean): void {
        this.silentMode = silent;
    }

    /**
     * Puts a frame splitter in front of ServerTCP's parser on a new connection (its listener is
     * registered first): whole Modbus TCP frames reach the parser unless the wallbox is silent,
     * then they are dropped. Whole frames, so that switching mid-stream never leaves half a
     * request in the parser's buffer.
     */
    private gate(sock: Socket): void {
        const parsers = sock.listeners('data') as ((chunk: Buffer) => void)[];
        sock.removeAllListeners('data');
        let pending: Buffer = Buffer.alloc(0);
        sock.on('data', (chunk: Buffer) => {
            pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
            // MBAP header: transaction, protocol, length (of unit id + PDU), unit id.
            while (pending.length >= 6) {
                const size = 6 + pending.readUInt16BE(4);
                if (pending.length < size) break;
                const frame = pending.subarray(0, size);
                pending = pending.subarray(size);
                if (this.silentMode) this.droppedCount++;
                else for (const parse of parsers) parse.call(sock, frame);
            }
        });
    }

    /** Drops every open client connection (the servers keep listening). */
    dropConnections(): void {
        for (const server of this.servers) for (const sock of server.socks.keys()) sock.destroy();
    }

    // ---- the world ----

    plug(car: CarOptions = this.opts.car ?? DEFAULT_CAR): void {
        this.advance();
        if (this.car) this.baseEnergyWh += this.car.energyWh;
        this.car = new Car(car);
    }

    unplug(): void {
        this.advance();
        if (this.car) this.baseEnergyWh += this.car.energyWh;
        this.car = undefined;
    }

    /** An RFID card or PIN presented at the wallbox (8096, counted in 8111). */
    presentRfid(id: string): void {
        this.rfid = id.slice(0, 30);
        this.rfidCount = (this.rfidCount + 1) & 0xffff;
    }

    /** Sets what an S0 meter measures. */
    setMeterPower(meter: 1 | 2, powerW: number): void {
        this.advance();
        this.meters[meter === 1 ? 0 : 1].powerW = powerW;
    }

    get state(): PowerBrainSimState {
        this.advance();
        const car = this.car;
        return {
            plugged: car !== undefined,
            cpState: this.cpState(),
            offered: this.offered(),
            currentLimit: this.limit * 100,
            chargingEnabled: this.enabled === 1,
            failSafeActive: this.failSafeActive(),
            failSafeTrips: this.failSafeTrips,
            lastRequestAt: this.lastComm,
            flashWrites: this.flashWrites,
            phases: this.relaySelect === 1 ? 1 : 3,
            currents: car ? car.currents : [0, 0, 0],
            powerW: car ? car.powerW : 0,
            totalEnergyWh: this.totalEnergyWh(),
            soc: car?.soc,
            rfid: this.rfid,
            requests: this.requestCount,
            silent: this.silentMode,
            dropped: this.droppedCount,
        };
    }

    /** What the car draws now on the wallbox's phases L1..L3 (mA); a cheaper `state.currents`. */
    get carCurrents(): Phases3 {
        this.advance();
        return this.car ? this.car.currents : [0, 0, 0];
    }

    private totalEnergyWh(): number {
        return this.baseEnergyWh + (this.car?.energyWh ?? 0);
    }

    private failSafeActive(at = this.now()): boolean {
        return (
            this.failSafeDuration > 0 &&
            this.lastComm !== null &&
            at - this.lastComm > this.failSafeDuration * 1000
        );
    }

    /** A request reached the EVSE unit: the fail-safe timer starts again. */
    private communicated(): void {
        this.lastComm = this.now();
        this.failSafeHeld = false;
    }

    /** mA per phase offered to the car. */
    private offered(at = this.now()): number {
        if (!this.car || at < this.disconnectUntil) return 0;
        let limit = this.limit;
        let enabled = this.enabled === 1;
        if (this.failSafeActive(at)) {
            limit = this.failSafeCurrent;
            enabled = limit > 0;
        }
        if (!enabled || limit < 60) return 0;
        const model = this.opts.maxCurrent ?? 32_000;
        const cable =
            this.fixedCurrent > 0 ? this.fixedCurrent * 100 : (this.opts.cableCurrent ?? 32_000);
        return Math.min(limit * 100, model, cable);
    }

    private cpState(): number {
        if (!this.car || this.now() < this.disconnectUntil) return 0;
        return this.offered() > 0 && !this.car.full ? 2 : 1;
    }

    /** Moves the simulation to now, in steps of at most a second. */
    private advance(): void {
        const now = this.now();
        let t = this.last;
        while (t < now) {
            const dt = Math.min(1000, now - t);
            const offered = this.offered(t + dt);
            this.car?.step(dt, offered, this.relaySelect === 1 ? 1 : 3);
            for (const m of this.meters) m.advance(dt);
            t += dt;
        }
        // A lower limit written just now is followed at once.
        this.car?.step(0, this.offered(now), this.relaySelect === 1 ? 1 : 3);
        this.last = Math.max(this.last, now);
        if (!this.failSafeHeld && this.failSafeActive(now)) {
            // The fail-safe takes over the control registers and keeps them until written.
            this.failSafeHeld = true;
            this.failSafeTrips++;
            this.limit = this.failSafeCurrent;
            this.enabled = this.failSafeCurrent > 0 ? 1 : 0;
        }
    }

    // ---- registers ----

    private read(device: PowerBrainName, address: number, count: number): number[] {
        this.requestCount++;
        this.advance();
        if (device === 'evse') this.communicated();
        const defined = this.defined[device];
        for (let a = address; a < address + count; a++) if (!defined.has(a)) throw illegalAddress;
        const image = this.image(device);
        const out: number[] = [];
        for (let a = address; a < address + count; a++) out.push(image.get(a) ?? 0);
        return out;
    }

    /** Every register of a unit as words, from the current state. */
    private image(device: PowerBrainName): Map<number, number> {
        const words = new Map<number, number>();
        const put = (address: number, value: number | string, def?: RegisterDef): void => {
            const d = def ?? POWER_BRAIN_MAP[device].find((r) => r.address === address)!;
            const type =
                d.suffix === 's'
                    ? 'string'
                    : d.suffix === 'd'
                      ? 'int32'
                      : d.suffix === 'q'
                        ? 'int64'
                        : 'uint16';
            encode(value, type, 'big', d.words).forEach((w, i) => words.set(address + i, w));
        };
        const unit = UNIT_OF[device];
        put(8000, (0xcf05 << 16) | 0);
        put(8002, 1);
        put(8003, 0x100 + unit);
        put(8004, 0x0100_0000 | 0); // version 1.0 in the high word; 8005 = build 0
        put(8005, 0);
        put(8006, 0x100);
        put(8007, 0);
        put(8008, this.serial);
        put(8016, 'cFos Power Brain');
        if (device === 'evse') {
            const car = this.car;
            const currents = car ? car.currents : [0, 0, 0];
            put(8040, this.slaveId);
            put(8057, 1);
            put(8058, Math.floor(this.totalEnergyWh()));
            put(8062, car ? Math.round(car.powerW) : 0);
            put(8064, Math.round(currents[0]! / 100));
            put(8066, Math.round(currents[1]! / 100));
            put(8068, Math.round(currents[2]! / 100));
            put(8080, this.defaults.fixed);
            put(8081, this.defaults.limit);
            put(8082, this.defaults.enable);
            put(8083, this.failSafeDuration);
            put(8085, this.failSafeCurrent);
            put(8086, Math.max(0, Math.ceil((this.disconnectUntil - this.now()) / 1000)));
            put(8087, this.relaySelect);
            put(8088, this.relay2);
            put(8090, car ? Math.round((this.opts.cableCurrent ?? 32_000) / 100) : 0);
            put(8091, this.fixedCurrent);
            put(8092, this.cpState());
            put(8093, this.limit);
            put(8094, this.enabled);
            put(8095, Math.round(this.offered() / 100));
            put(8096, this.rfid);
            put(8111, this.rfidCount);
            put(8112, 1);
            put(8113, 0b11 | (this.opts.phaseSwitching === false ? 0 : PHASE_SWITCH_WHILE_PLUGGED));
            put(8120, this.restarts);
        } else {
            const m = this.meters[device === 'meter1' ? 0 : 1];
            const currents = m.phaseCurrents();
            put(8040, m.slaveId);
            put(8041, 1);
            put(8042, m.pulsesPerKWh);
            put(8044, m.phases);
            put(8045, m.voltages[0]);
            put(8046, m.voltages[1]);
            put(8047, m.voltages[2]);
            put(8050, m.pulses);
            put(8054, m.lastPulseGapMs);
            put(8056, m.powerW > 0 ? 0 : 1);
            put(8057, 0);
            put(8058, Math.floor(m.energyWh));
            // The device reports −1 until it has seen pulses.
            put(8062, m.pulses === 0 && m.powerW <= 0 ? -1 : Math.round(m.powerW));
            put(8064, currents[0]);
            put(8066, currents[1]);
            put(8068, currents[2]);
            put(8070, 0);
            put(8071, 0);
            put(8120, this.restarts);
        }
        return words;
    }

    private write(device: PowerBrainName, address: number, values: readonly number[]): void {
        this.requestCount++;
        this.advance();
        if (device === 'evse') this.communicated();
        // A write covers whole registers: find each one, check it may be written, apply it.
        let a = address;
        while (a < address + values.length) {
            const def = POWER_BRAIN_MAP[device].find((r) => r.address === a);
            if (!def || def.access === 'r' || a + def.words > address + values.length)
                throw illegalAddress;
            const words = values.slice(a - address, a - address + def.words);
            this.apply(device, def, words);
            if (!def.volatile) this.flashWrites++;
            a += def.words;
        }
    }

    private apply(device: PowerBrainName, def: RegisterDef, words: readonly number[]): void {
        const u16 = words[0]!;
        const u32 = ((words[0]! << 16) | (words[1] ?? 0)) >>> 0;
        const u64 = words.reduce((acc, w) => acc * 65536 + w, 0);
        if (def.address === 8040) {
            if (u16 < 1 || u16 > 247) throw illegalValue;
            if (device === 'evse') this.slaveId = u16;
            else this.meters[device === 'meter1' ? 0 : 1].slaveId = u16;
            return;
        }
        if (def.address === 8120) {
            this.restarts = u32;
            return;
        }
        if (device === 'evse') {
            switch (def.address) {
                case 8080:
                    this.defaults.fixed = u16;
                    return;
                case 8081:
                    if (u16 < 60 || u16 > 630) throw illegalValue;
                    this.defaults.limit = u16;
                    return;
                case 8082:
                    if (u16 > 1) throw illegalValue;
                    this.defaults.enable = u16;
                    return;
                case 8083:
                    this.failSafeDuration = u32;
                    return;
                case 8085:
                    if (u16 !== 0 && (u16 < 60 || u16 > 630)) throw illegalValue;
                    this.failSafeCurrent = u16;
                    return;
                case 8086:
                    this.disconnectUntil = this.now() + u16 * 1000;
                    return;
                case 8087:
                    if (u16 > 1) throw illegalValue;
                    // A contactor that moves while the car draws: counted (a real one wears).
                    if (u16 !== this.relaySelect) {
                        this.relaySwitches++;
                        if (this.car?.currents.some((c) => c > 0)) this.relaySwitchesUnderLoad++;
                    }
                    this.relaySelect = u16;
                    return;
                case 8088:
                    if (u16 > 1) throw illegalValue;
                    this.relay2 = u16;
                    return;
                case 8091:
                    this.fixedCurrent = u16;
                    return;
                case PB.currentLimit:
                    if (u16 > 630) throw illegalValue;
                    this.limit = u16;
                    return;
                case PB.chargingEnable:
                    if (u16 > 1) throw illegalValue;
                    this.enabled = u16;
                    return;
            }
            throw illegalAddress;
        }
        const m = this.meters[device === 'meter1' ? 0 : 1];
        switch (def.address) {
            case 8042:
                if (u32 === 0) throw illegalValue;
                m.pulsesPerKWh = u32;
                return;
            case 8044:
                if (u16 > 7) throw illegalValue;
                m.phases = u16;
                return;
            case 8045:
            case 8046:
            case 8047:
                m.voltages[def.address - 8045] = u16;
                return;
            case 8050:
                m.energyWh = (u64 * 1000) / m.pulsesPerKWh;
                return;
            case 8058:
                m.energyWh = u64;
                return;
            case 8070:
            case 8071:
                if (u16 === 1) m.energyWh = 0;
                return;
        }
        throw illegalAddress;
    }
}
