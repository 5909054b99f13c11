// A simulated Modbus device that answers from a fixture: the register words a real device of a
// family gives in each state, written from the manufacturer's register document (not from our
// device definition, so that a wrong address, type or scale in a definition fails its test).
// Registers the fixture does not list answer exception 2 (illegal data address), as the real
// devices do; writes land only in registers the fixture names as writable and are recorded.
//
// Served on Modbus TCP (any unit id, or only the fixture's) or on a serial line (RTU, e.g. one
// end of a socat pseudo-terminal pair).
import type { Server, Socket } from 'node:net';
import { ServerSerial, ServerTCP } from 'modbus-serial';
import { freePort } from './powerbrain-sim';

/** Register address → 16-bit word. */
export type RegisterWords = Readonly<Record<number, number>>;

/** What a controller must make of a state's registers (values in A, W, Wh, V). */
export interface FixtureExpectation {
    /** Vendor state 1–6 (wallboxes). */
    state?: number;
    currentsA?: readonly [number, number, number];
    powerW?: number;
    energyWh?: number;
    importWh?: number;
    exportWh?: number;
    voltagesV?: readonly [number, number, number];
    model?: string;
    serial?: string;
}

export interface FixtureState {
    /** Words that differ from the fixture's base registers in this state. */
    holding?: RegisterWords;
    input?: RegisterWords;
    expect: FixtureExpectation;
}

/** A write a controller makes and the words that must arrive (address → words, in order). */
export interface FixtureWrite {
    /** e.g. `current 16 A`, `enable`, `stop`, `phases 1`, `fail-safe 6 A / 60 s`. */
    what: string;
    /** The controller's request, for the test to issue. */
    request:
        | { current: number }
        | { enable: boolean }
        | { phases: 1 | 3 }
        | { failSafe: { current: number; timeoutS: number } }
        /** What a controller writes once after connecting (e.g. a "controlled by Modbus" mode). */
        | { init: true }
        /** The register a controller must keep writing or the device falls back (life bit). */
        | { keepAlive: true };
    /** Registers and the words they must hold afterwards (coils: 1 = ON, 0 = OFF, with fc 5). */
    registers: Readonly<Record<number, readonly number[]>>;
    /** Function code the device needs for it (6 or 16; 5 for a coil), where the document insists on one. */
    fc?: 5 | 6 | 16;
}

export interface DeviceFixture {
    /** The dev_type a definition for this family has. */
    type: string;
    title: string;
    /** The manufacturer's document (name, version, section) the words come from. */
    source: string;
    unit: number;
    /** Words every state shares: holding registers (fc 3) and input registers (fc 4). */
    holding?: RegisterWords;
    input?: RegisterWords;
    /** Holding registers a controller may write (others answer exception 2). */
    writable?: readonly number[];
    /** Coils (fc 1/5) with their state, 1 = ON; all of them writable. */
    coils?: RegisterWords;
    /** The device answers input reads from its holding registers too (one address space). */
    oneSpace?: boolean;
    /** Named states; the first is the one at start. */
    states: Readonly<Record<string, FixtureState>>;
    writes?: readonly FixtureWrite[];
}

export interface RegisterSimOptions {
    host?: string;
    /** 0 = any free port. */
    port?: number;
    /** Answer only the fixture's unit id (default: any unit). */
    strictUnit?: boolean;
    /** Start in this state (default: the fixture's first). */
    state?: string;
}

export interface RecordedWrite {
    unit: number;
    address: number;
    /** Register words, or for a coil (fc 5) 1 = ON / 0 = OFF. */
    values: number[];
    fc: 5 | 6 | 16;
}

interface ModbusFault {
    modbusErrorCode: number;
}

const ILLEGAL_ADDRESS: ModbusFault = { modbusErrorCode: 2 };

export class RegisterSim {
    readonly fixture: DeviceFixture;
    private readonly holding = new Map<number, number>();
    private readonly input = new Map<number, number>();
    private readonly coils = new Map<number, number>();
    private readonly writable: ReadonlySet<number>;
    /** Registers written by a controller: they keep their words across state changes. */
    private readonly written = new Map<number, number>();
    private stateName: string;
    /** Every write received, oldest first. */
    readonly writes: RecordedWrite[] = [];
    /** Requests answered (reads and writes), for counting a cycle's requests. */
    requests = 0;
    private tcp: ServerTCP | undefined;
    private serial: ServerSerial | undefined;
    private readonly strictUnit: boolean;
    private readonly host: string;
    private readonly wantedPort: number;

    constructor(fixture: DeviceFixture, options: RegisterSimOptions = {}) {
        this.fixture = fixture;
        this.writable = new Set(fixture.writable ?? []);
        this.strictUnit = options.strictUnit ?? false;
        this.host = options.host ?? '127.0.0.1';
        this.wantedPort = options.port ?? 0;
        const first = Object.keys(fixture.states)[0];
        if (first === undefined) throw new Error(`fixture ${fixture.type} has no states`);
        this.stateName = first;
        for (const [a, v] of Object.entries(fixture.coils ?? {}))
            this.coils.set(Number(a), v ? 1 : 0);
        this.setState(options.state ?? first);
    }

    get state(): string {
        return this.stateName;
    }

    /** Loads a state's registers over the base ones; writes made so far are kept. */
    setState(name: string): void {
        const state = this.fixture.states[name];
        if (!state) throw new Error(`fixture ${this.fixture.type} has no state "${name}"`);
        this.stateName = name;
        load(this.holding, this.fixture.holding, state.holding, this.written);
        load(this.input, this.fixture.input, state.input);
    }

    /** The word a register holds now (undefined: the device has no such register). */
    word(fc: 3 | 4, address: number): number | undefined {
        return (fc === 3 ? this.holding : this.input).get(address);
    }

    /** A coil's state, 1 = ON (undefined: the device has no such coil). */
    coil(address: number): number | undefined {
        return this.coils.get(address);
    }

    /** Sets a register word directly (a test playing the device's own behaviour). */
    poke(fc: 3 | 4, address: number, word: number): void {
        (fc === 3 ? this.holding : this.input).set(address, word & 0xffff);
    }

    private checkUnit(unit: number): void {
        // Unit 0 is broadcast; a device on a shared line ignores other ids (a timeout there).
        if (this.strictUnit && unit !== this.fixture.unit)
            throw { modbusErrorCode: 11 } satisfies ModbusFault;
    }

    private read(fc: 3 | 4, address: number, count: number, unit: number): number[] {
        this.checkUnit(unit);
        this.requests++;
        const space =
            fc === 4 && !this.fixture.oneSpace
                ? this.input
                : fc === 4
                  ? this.merged()
                  : this.holding;
        const words: number[] = [];
        for (let a = address; a < address + count; a++) {
            const w = space.get(a);
            if (w === undefined) throw ILLEGAL_ADDRESS;
            words.push(w);
        }
        return words;
    }

    private merged(): Map<number, number> {
        return new Map([...this.holding, ...this.input]);
    }

    private write(address: number, values: number[], unit: number, fc: 6 | 16): void {
        this.checkUnit(unit);
        this.requests++;
        for (let i = 0; i < values.length; i++) {
            if (!this.writable.has(address + i)) throw ILLEGAL_ADDRESS;
        }
        values.forEach((v, i) => {
            this.holding.set(address + i, v & 0xffff);
            this.written.set(address + i, v & 0xffff);
        });
        this.writes.push({ unit, address, values: [...values], fc });
    }

    private readCoils(address: number, count: number, unit: number): boolean[] {
        this.checkUnit(unit);
        this.requests++;
        const out: boolean[] = [];
        for (let a = address; a < address + count; a++) {
            const v = this.coils.get(a);
            if (v === undefined) throw ILLEGAL_ADDRESS;
            out.push(v === 1);
        }
        return out;
    }

    private writeCoil(address: number, on: boolean, unit: number): void {
        this.checkUnit(unit);
        this.requests++;
        if (!this.coils.has(address)) throw ILLEGAL_ADDRESS;
        this.coils.set(address, on ? 1 : 0);
        this.writes.push({ unit, address, values: [on ? 1 : 0], fc: 5 });
    }

    private vector(): object {
        return {
            getCoil: (addr: number, unit: number): boolean => this.readCoils(addr, 1, unit)[0]!,
            setCoil: (addr: number, value: boolean, unit: number): void =>
                this.writeCoil(addr, value, unit),
            getHoldingRegister: (addr: number, unit: number): number =>
                this.read(3, addr, 1, unit)[0]!,
            getMultipleHoldingRegisters: (addr: number, length: number, unit: number): number[] =>
                this.read(3, addr, length, unit),
            getInputRegister: (addr: number, unit: number): number =>
                this.read(4, addr, 1, unit)[0]!,
            getMultipleInputRegisters: (addr: number, length: number, unit: number): number[] =>
                this.read(4, addr, length, unit),
            setRegister: (addr: number, value: number, unit: number): void =>
                this.write(addr, [value], unit, 6),
            setRegisterArray: (addr: number, values: number[], unit: number): void =>
                this.write(addr, values, unit, 16),
        };
    }

    /** Serves Modbus TCP; resolves to the port. */
    async listen(): Promise<number> {
        const port = this.wantedPort === 0 ? await freePort(this.host) : this.wantedPort;
        return new Promise<number>((resolve, reject) => {
            const server = new ServerTCP(this.vector(), { host: this.host, port, unitID: 255 });
            this.tcp = server;
            const internal = server as unknown as { _server: Server };
            internal._server.on('connection', (s: Socket) => s.setNoDelay(true));
            server.on('socketError', () => undefined);
            server.once('serverError', (e: unknown) =>
                reject(e instanceof Error ? e : new Error(String(e))),
            );
            server.once('initialized', () => {
                const a = internal._server.address();
                resolve(typeof a === 'object' && a ? a.port : port);
            });
        });
    }

    /** Serves RTU on a serial device (e.g. a socat pseudo-terminal), answering the fixture's unit. */
    async listenSerial(path: string, baudRate = 9600): Promise<void> {
        const server = new ServerSerial(this.vector(), {
            path,
            baudRate,
            unitID: this.fixture.unit,
        } as never);
        this.serial = server;
        await new Promise<void>((resolve) => server.once('initialized', () => resolve()));
    }

    /** Stops serving. Never rejects. */
    async close(): Promise<void> {
        const tcp = this.tcp;
        const serial = this.serial;
        this.tcp = undefined;
        this.serial = undefined;
        if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
        if (serial) await new Promise<void>((resolve) => serial.close(() => resolve()));
    }
}

function load(
    into: Map<number, number>,
    base?: RegisterWords,
    overlay?: RegisterWords,
    written?: ReadonlyMap<number, number>,
): void {
    into.clear();
    for (const source of [base, overlay]) {
        if (!source) continue;
        for (const [a, w] of Object.entries(source)) into.set(Number(a), w & 0xffff);
    }
    for (const [a, w] of written ?? []) into.set(a, w);
}

/** Words of a Latin-1 string, two characters per register, NUL-padded to `words` registers. */
export function stringWords(text: string, words: number): number[] {
    const bytes = Buffer.alloc(words * 2);
    Buffer.from(text, 'latin1').copy(bytes);
    return Array.from({ length: words }, (_, i) => bytes.readUInt16BE(i * 2));
}

/** Spreads words over consecutive addresses: `at(100, [1, 2])` → `{100: 1, 101: 2}`. */
export function at(address: number, words: readonly number[]): Record<number, number> {
    const out: Record<number, number> = {};
    words.forEach((w, i) => {
        out[address + i] = w & 0xffff;
    });
    return out;
}
