// evcm-sim: simulated cFos Power Brain wallboxes on Modbus TCP, simulated OCPP charge points
// (`evcm-sim ocpp`), or any device family's fixture served register by register (`evcm-sim
// modbus`), for trying a charging manager (ours or any other) without hardware.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { FIXTURES, fixtureFor } from './fixtures';
import { OcppChargePointSim } from './ocpp-sim';
import { DEFAULT_CAR, PowerBrainSim } from './powerbrain-sim';
import { RegisterSim } from './register-sim';

export const USAGE = `Usage: evcm-sim [options]
       evcm-sim ocpp --url <ws-url> --id <identity> [options]   (see evcm-sim ocpp --help)
       evcm-sim modbus --device <dev_type> [options]            (see evcm-sim modbus --help)

Simulated cFos Power Brain wallboxes on Modbus TCP, each with a car that follows the
current limit it is given. Wallbox i (from 0) serves its EVSE on port + 3·i (unit 1; the
port also answers units 2 and 3), S0 meter 1 on the next port and S0 meter 2 on the one after.

Options:
  --host <addr>      address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)
  --port <n>         first EVSE port (default 4701)
  --cars <n>         number of wallboxes (default 1)
  --plugged          plug a car into every wallbox at start
  --battery <kWh>    battery of the cars (default ${DEFAULT_CAR.batteryWh / 1000})
  --soc <percent>    state of charge at plug-in (default ${DEFAULT_CAR.soc * 100})
  --car-current <A>  largest current the cars draw per phase (default ${DEFAULT_CAR.maxCurrent / 1000})
  --car-phases <n>   phases the cars charge on, 1..3 (default ${DEFAULT_CAR.phases})
  --follow <s>       seconds a car takes to follow a new limit (default ${(DEFAULT_CAR.followMs ?? 3000) / 1000})
  --status <s>       print each wallbox's state every s seconds (default 10; 0 = never)
  -h, --help         show this help

Example: evcm-sim --port 4701 --cars 2 --plugged
  mbpoll -m tcp -a 1 -p 4701 -t 4 -0 -r 8092 -c 4 -1 127.0.0.1   (state, limit, enable, current)
`;

function number(
    value: string | undefined,
    name: string,
    min: number,
    max: number,
    fallback: number,
): number {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max)
        throw new Error(`--${name} must be a number within ${min}..${max}`);
    return n;
}

export interface CliIo {
    out: (line: string) => void;
    err: (line: string) => void;
    /** Lines typed while a simulator runs (`evcm-sim modbus`: a state name switches to it). */
    input?: NodeJS.ReadableStream;
}

const stdio: CliIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    input: process.stdin,
};

/** The options of the simulated cars, the same in both modes. */
const CAR_OPTIONS = {
    plugged: { type: 'boolean', default: false },
    battery: { type: 'string' },
    soc: { type: 'string' },
    'car-current': { type: 'string' },
    'car-phases': { type: 'string' },
} as const;

/** Runs the simulator until SIGINT/SIGTERM; returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = stdio): Promise<number> {
    if (argv[0] === 'ocpp') return mainOcpp(argv.slice(1), io);
    if (argv[0] === 'modbus') return mainModbus(argv.slice(1), io);
    let args;
    try {
        args = parseArgs({
            args: [...argv],
            options: {
                host: { type: 'string', default: '127.0.0.1' },
                port: { type: 'string' },
                cars: { type: 'string' },
                ...CAR_OPTIONS,
                follow: { type: 'string' },
                status: { type: 'string' },
                help: { type: 'boolean', short: 'h', default: false },
            },
            strict: true,
        }).values;
    } catch (e) {
        io.err(`${(e as Error).message}\n\n${USAGE}`);
        return 2;
    }
    if (args.help) {
        io.out(USAGE);
        return 0;
    }
    let sims: PowerBrainSim[] = [];
    let statusTimer: NodeJS.Timeout | undefined;
    try {
        const port = number(args.port, 'port', 1, 65533, 4701);
        const cars = number(args.cars, 'cars', 1, 1000, 1);
        if (port + 3 * cars - 1 > 65535) throw new Error('--port and --cars leave the port range');
        const car = {
            batteryWh: number(args.battery, 'battery', 1, 500, DEFAULT_CAR.batteryWh / 1000) * 1000,
            soc: number(args.soc, 'soc', 0, 100, DEFAULT_CAR.soc * 100) / 100,
            maxCurrent:
                number(args['car-current'], 'car-current', 6, 63, DEFAULT_CAR.maxCurrent / 1000) *
                1000,
            phases: number(args['car-phases'], 'car-phases', 1, 3, DEFAULT_CAR.phases) as 1 | 2 | 3,
            followMs:
                number(args.follow, 'follow', 0, 60, (DEFAULT_CAR.followMs ?? 3000) / 1000) * 1000,
        };
        const statusS = number(args.status, 'status', 0, 3600, 10);
        sims = Array.from(
            { length: cars },
            (_, i) =>
                new PowerBrainSim({
                    host: args.host,
                    port: port + 3 * i,
                    car,
                    plugged: args.plugged,
                }),
        );
        for (const sim of sims) await sim.start();
        sims.forEach((sim, i) => {
            const p = sim.ports;
            io.out(
                `wallbox ${i + 1}: EVSE ${args.host}:${p.evse} (unit 1), S0 meter 1 :${p.meter1} (unit 2), S0 meter 2 :${p.meter2} (unit 3)${args.plugged ? ', car plugged in' : ''}`,
            );
        });
        if (statusS > 0) {
            statusTimer = setInterval(() => {
                sims.forEach((sim, i) => {
                    const s = sim.state;
                    const soc = s.soc === undefined ? '' : ` soc ${(s.soc * 100).toFixed(1)}%`;
                    io.out(
                        `wallbox ${i + 1}: state ${'ABCDEF'[s.cpState] ?? '?'} limit ${s.currentLimit / 1000} A ${s.chargingEnabled ? 'on' : 'off'}${s.failSafeActive ? ' fail-safe' : ''} draw ${s.currents.map((c) => (c / 1000).toFixed(1)).join('/')} A ${Math.round(s.powerW)} W ${(s.totalEnergyWh / 1000).toFixed(3)} kWh${soc}`,
                    );
                });
            }, statusS * 1000);
        }
    } catch (e) {
        io.err(`evcm-sim: ${(e as Error).message}`);
        await Promise.all(sims.map((s) => s.close()));
        return 1;
    }
    await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
    });
    if (statusTimer) clearInterval(statusTimer);
    await Promise.all(sims.map((s) => s.close()));
    return 0;
}

export const OCPP_USAGE = `Usage: evcm-sim ocpp --url <ws-url> --id <identity> [options]

Simulated OCPP-J charge points (one connector each) that connect to a central system, with a
car that follows the charging profiles they are given. Runs until Ctrl-C and prints each
charge point's effective limit.

Options:
  --url <url>        central system endpoint without the identity, e.g. ws://127.0.0.1:1880/ocpp
  --id <identity>    charge point identity (default CP-1); with --count N the ids count up
                     from its trailing number (CP-42, CP-43, …)
  --count <n>        number of charge points (default 1)
  --protocol <v>     1.6 or 2.0.1 (default 1.6)
  --password <pw>    Basic-auth password (security profile 1; with wss:// profile 2)
  --ca <file>        CA certificate (PEM) to trust for wss://
  --insecure         accept any server certificate for wss://
  --max-current <A>  largest current of the charge point (default 32)
  --plugged          plug a car into every charge point at start
  --card <idTag>     present this card once it is online (with --plugged: charging starts)
  --battery <kWh>    battery of the cars (default ${DEFAULT_CAR.batteryWh / 1000})
  --soc <percent>    state of charge at plug-in (default ${DEFAULT_CAR.soc * 100})
  --car-current <A>  largest current the cars draw per phase (default ${DEFAULT_CAR.maxCurrent / 1000})
  --car-phases <n>   phases the cars charge on, 1..3 (default ${DEFAULT_CAR.phases})
  --interval <s>     meter value interval (default 10)
  --status <s>       print each charge point's state every s seconds (default 10; 0 = never)
  -h, --help         show this help

Example: evcm-sim ocpp --url ws://127.0.0.1:1880/ocpp --id CP-42 --count 2 --plugged --card 0411
`;

/** Identity i (from 0) of a row of charge points: the trailing number counts up. */
export function ocppIdentity(base: string, i: number): string {
    if (i === 0) return base;
    const m = /^(.*?)(\d+)$/.exec(base);
    if (!m) return `${base}-${i + 1}`;
    const n = String(Number(m[2]) + i).padStart(m[2]!.length, '0');
    return `${m[1]}${n}`;
}

async function mainOcpp(argv: readonly string[], io: CliIo): Promise<number> {
    let args;
    try {
        args = parseArgs({
            args: [...argv],
            options: {
                url: { type: 'string' },
                id: { type: 'string', default: 'CP-1' },
                count: { type: 'string' },
                protocol: { type: 'string', default: '1.6' },
                password: { type: 'string' },
                ca: { type: 'string' },
                insecure: { type: 'boolean', default: false },
                'max-current': { type: 'string' },
                card: { type: 'string' },
                ...CAR_OPTIONS,
                interval: { type: 'string' },
                status: { type: 'string' },
                help: { type: 'boolean', short: 'h', default: false },
            },
            strict: true,
        }).values;
    } catch (e) {
        io.err(`${(e as Error).message}\n\n${OCPP_USAGE}`);
        return 2;
    }
    if (args.help) {
        io.out(OCPP_USAGE);
        return 0;
    }
    let sims: OcppChargePointSim[] = [];
    let statusTimer: NodeJS.Timeout | undefined;
    try {
        if (!args.url || !/^wss?:\/\//.test(args.url)) {
            throw new Error('--url must be a ws:// or wss:// URL');
        }
        if (args.protocol !== '1.6' && args.protocol !== '2.0.1') {
            throw new Error('--protocol must be 1.6 or 2.0.1');
        }
        const protocol = args.protocol === '1.6' ? 'ocpp1.6' : 'ocpp2.0.1';
        const count = number(args.count, 'count', 1, 1000, 1);
        const car = {
            batteryWh: number(args.battery, 'battery', 1, 500, DEFAULT_CAR.batteryWh / 1000) * 1000,
            soc: number(args.soc, 'soc', 0, 100, DEFAULT_CAR.soc * 100) / 100,
            maxCurrent:
                number(args['car-current'], 'car-current', 6, 63, DEFAULT_CAR.maxCurrent / 1000) *
                1000,
            phases: number(args['car-phases'], 'car-phases', 1, 3, DEFAULT_CAR.phases) as 1 | 2 | 3,
            followMs: DEFAULT_CAR.followMs,
        };
        const maxCurrent = number(args['max-current'], 'max-current', 6, 80, 32) * 1000;
        const interval = number(args.interval, 'interval', 0, 3600, 10);
        const statusS = number(args.status, 'status', 0, 3600, 10);
        const { readFileSync } = await import('node:fs');
        const tls =
            args.ca || args.insecure
                ? {
                      ca: args.ca ? readFileSync(args.ca) : undefined,
                      rejectUnauthorized: !args.insecure,
                  }
                : undefined;
        const url = args.url.replace(/\/+$/, '');
        sims = Array.from(
            { length: count },
            (_, i) =>
                new OcppChargePointSim({
                    url,
                    identity: ocppIdentity(args.id, i),
                    protocol,
                    password: args.password,
                    tls,
                    maxCurrent,
                    car,
                    plugged: args.plugged,
                    meterValueInterval: interval,
                    ...(args.card !== undefined ? { cardAfterBoot: args.card } : {}),
                }),
        );
        await Promise.all(sims.map((sim) => sim.start()));
        for (const sim of sims) {
            const s = sim.state;
            io.out(
                `${s.identity}: ${args.protocol} ${url}/${s.identity} ${s.connected ? 'connected' : 'not connected yet (retrying)'}${args.plugged ? ', car plugged in' : ''}`,
            );
        }
        if (statusS > 0) {
            statusTimer = setInterval(() => {
                for (const sim of sims) {
                    const s = sim.state;
                    const soc = s.soc === undefined ? '' : ` soc ${(s.soc * 100).toFixed(1)}%`;
                    const from =
                        s.limitProfileId === undefined ? 'max' : `profile ${s.limitProfileId}`;
                    io.out(
                        `${s.identity}: ${s.connected ? 'online' : 'offline'} ${s.status} limit ${s.effectiveLimit / 1000} A (${from}) draw ${s.currents.map((c) => (c / 1000).toFixed(1)).join('/')} A ${Math.round(s.powerW)} W ${(s.energyWh / 1000).toFixed(3)} kWh${soc}`,
                    );
                }
            }, statusS * 1000);
        }
    } catch (e) {
        io.err(`evcm-sim: ${(e as Error).message}`);
        await Promise.all(sims.map((s) => s.close()));
        return 1;
    }
    await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
    });
    if (statusTimer) clearInterval(statusTimer);
    await Promise.all(sims.map((s) => s.close()));
    return 0;
}

export const MODBUS_USAGE = `Usage: evcm-sim modbus --device <dev_type> [options]
       evcm-sim modbus --list

A simulated Modbus device of one of the built-in families, answering register by register
from its fixture: the words a real device gives, written from the manufacturer's register
document. Registers the device does not have answer exception 2; writes land only in the
registers the device lets a controller write, and each one is printed. Type a state name
and Enter to switch the device to that state (e.g. "charging").

Options:
  --device <type>    the dev_type, e.g. evse_heidelberg (see --list)
  --state <name>     state at start (default: the fixture's first, e.g. idle)
  --host <addr>      address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)
  --port <n>         Modbus TCP port (default 1502)
  --serial <path>    serve Modbus RTU on this serial device instead of TCP (e.g. one end of
                     a socat pty pair); answers the fixture's unit id only
  --baud <n>         baud rate on --serial (default 9600)
  --strict-unit      on TCP, answer only the fixture's unit id (default: any)
  --list             list the devices and their states
  -h, --help         show this help

Example: evcm-sim modbus --device evse_heidelberg --state charging --port 1502
  mbpoll -m tcp -a 1 -p 1502 -t 3 -0 -r 5 -c 14 127.0.0.1   (state, currents, …)
`;

/** One line per fixture: dev_type, title, unit and states. */
export function fixtureList(): string[] {
    return FIXTURES.map(
        (f) =>
            `${f.type.padEnd(22)} ${f.title} (unit ${f.unit}; states: ${Object.keys(f.states).join(', ')})`,
    );
}

async function mainModbus(argv: readonly string[], io: CliIo): Promise<number> {
    let args;
    try {
        args = parseArgs({
            args: [...argv],
            options: {
                device: { type: 'string' },
                state: { type: 'string' },
                host: { type: 'string', default: '127.0.0.1' },
                port: { type: 'string' },
                serial: { type: 'string' },
                baud: { type: 'string' },
                'strict-unit': { type: 'boolean', default: false },
                list: { type: 'boolean', default: false },
                help: { type: 'boolean', short: 'h', default: false },
            },
            strict: true,
        }).values;
    } catch (e) {
        io.err(`${(e as Error).message}\n\n${MODBUS_USAGE}`);
        return 2;
    }
    if (args.help) {
        io.out(MODBUS_USAGE);
        return 0;
    }
    if (args.list) {
        for (const line of fixtureList()) io.out(line);
        return 0;
    }
    let sim: RegisterSim | undefined;
    let watch: NodeJS.Timeout | undefined;
    let lines: ReturnType<typeof createInterface> | undefined;
    try {
        if (!args.device) throw new Error('--device is required (see --list)');
        const fixture = fixtureFor(args.device);
        if (!fixture) throw new Error(`no simulated device "${args.device}" (see --list)`);
        if (args.state !== undefined && !(args.state in fixture.states)) {
            throw new Error(
                `${fixture.type} has no state "${args.state}" (states: ${Object.keys(fixture.states).join(', ')})`,
            );
        }
        const port = number(args.port, 'port', 1, 65535, 1502);
        const baud = number(args.baud, 'baud', 300, 4_000_000, 9600);
        sim = new RegisterSim(fixture, {
            host: args.host,
            port,
            strictUnit: args['strict-unit'],
            ...(args.state !== undefined ? { state: args.state } : {}),
        });
        if (args.serial) {
            await sim.listenSerial(args.serial, baud);
            io.out(
                `${fixture.title} (${fixture.type}): RTU on ${args.serial} at ${baud} Bd, unit ${fixture.unit}, state ${sim.state}`,
            );
        } else {
            const bound = await sim.listen();
            io.out(
                `${fixture.title} (${fixture.type}): Modbus TCP ${args.host}:${bound}, unit ${fixture.unit}${args['strict-unit'] ? '' : ' (any unit answers)'}, state ${sim.state}`,
            );
        }
        io.out(`states: ${Object.keys(fixture.states).join(', ')}; source: ${fixture.source}`);
        let seen = 0;
        const running = sim;
        watch = setInterval(() => {
            for (; seen < running.writes.length; seen++) {
                const w = running.writes[seen]!;
                io.out(
                    `write fc ${w.fc} unit ${w.unit} register ${w.address}: ${w.values.join(' ')}`,
                );
            }
        }, 100);
        if (io.input) {
            lines = createInterface({ input: io.input, terminal: false });
            lines.on('line', (line) => {
                const name = line.trim().replace(/^state\s+/, '');
                if (name === '') return;
                if (name in fixture.states) {
                    running.setState(name);
                    io.out(`state ${name}`);
                } else {
                    io.err(
                        `no state "${name}" (states: ${Object.keys(fixture.states).join(', ')})`,
                    );
                }
            });
        }
    } catch (e) {
        io.err(`evcm-sim: ${(e as Error).message}`);
        if (watch) clearInterval(watch);
        lines?.close();
        await sim?.close();
        return 1;
    }
    await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
    });
    clearInterval(watch);
    lines?.close();
    await sim.close();
    return 0;
}
