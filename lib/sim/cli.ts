// evcm-sim: simulated cFos Power Brain wallboxes on Modbus TCP, for trying a charging manager
// (ours or any other) without hardware.
import { parseArgs } from 'node:util';
import { DEFAULT_CAR, PowerBrainSim } from './powerbrain-sim';

export const USAGE = `Usage: evcm-sim [options]

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
}

const stdio: CliIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
};

/** Runs the simulator until SIGINT/SIGTERM; returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = stdio): Promise<number> {
    let args;
    try {
        args = parseArgs({
            args: [...argv],
            options: {
                host: { type: 'string', default: '127.0.0.1' },
                port: { type: 'string' },
                cars: { type: 'string' },
                plugged: { type: 'boolean', default: false },
                battery: { type: 'string' },
                soc: { type: 'string' },
                'car-current': { type: 'string' },
                'car-phases': { type: 'string' },
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
