import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURES } from '../../../lib/sim/fixtures';
import { main, MODBUS_USAGE, USAGE } from '../../../lib/sim/cli';
import { parseBusAddress } from '../../../lib/modbus/address';
import { Bus } from '../../../lib/modbus/bus';
import { freePort, hasCommand, independentClient, PtyPair } from '../../support/modbus';

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

/** Runs the CLI in-process for the commands that return at once. */
async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
}

describe('evcm-sim modbus', function () {
    this.timeout(15000);

    it('lists every fixture with its states, and explains itself', async () => {
        const list = await run(['modbus', '--list']);
        assert.equal(list.code, 0);
        assert.equal(list.out.length, FIXTURES.length);
        for (const f of FIXTURES) {
            const line = list.out.find((l) => l.startsWith(`${f.type} `));
            assert.ok(line, `${f.type} listed`);
            for (const state of Object.keys(f.states))
                assert.match(line, new RegExp(`\\b${state}\\b`));
        }
        const help = await run(['modbus', '--help']);
        assert.equal(help.code, 0);
        assert.deepEqual(help.out, [MODBUS_USAGE]);
        assert.match(USAGE, /evcm-sim modbus --device/);
    });

    it('refuses an unknown device, an unknown state and a bad option', async () => {
        const device = await run(['modbus', '--device', 'evse_nobody']);
        assert.equal(device.code, 1);
        assert.match(device.err.join('\n'), /no simulated device "evse_nobody"/);
        const state = await run(['modbus', '--device', 'evse_heidelberg', '--state', 'flying']);
        assert.equal(state.code, 1);
        assert.match(state.err.join('\n'), /no state "flying".*idle/);
        const missing = await run(['modbus']);
        assert.equal(missing.code, 1);
        assert.match(missing.err.join('\n'), /--device is required/);
        const bad = await run(['modbus', '--colour', 'red']);
        assert.equal(bad.code, 2);
        assert.match(bad.err.join('\n'), /Usage: evcm-sim modbus/);
    });

    it('serves a fixture on TCP, prints writes, switches state from stdin and stops on SIGTERM', async () => {
        const port = await freePort();
        const bin = join(__dirname, '..', '..', '..', '..', 'bin', 'evcm-sim.js');
        const child = spawn(
            process.execPath,
            [
                bin,
                'modbus',
                '--device',
                'evse_heidelberg',
                '--state',
                'charging',
                '--port',
                String(port),
            ],
            { stdio: ['pipe', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
        try {
            await until('listening', () => out.includes(`127.0.0.1:${port}`));
            assert.match(out, /Heidelberg Energy Control \(evse_heidelberg\).*state charging/);
            // Charging state C2 (7) and 16.0 / 15.9 / 16.1 A in input registers 5–8.
            const words = await independentClient(
                port,
                1,
                async (c) => (await c.readInputRegisters(5, 4)).data,
            );
            assert.deepEqual(words, [7, 160, 159, 161]);
            // A register the device does not have answers exception 2.
            await assert.rejects(
                independentClient(port, 1, (c) => c.readInputRegisters(20, 1)),
                /Illegal data address/i,
            );
            await independentClient(port, 1, (c) => c.writeRegister(261, 100));
            await until('the write printed', () => /write fc 6 unit 1 register 261: 100/.test(out));
            child.stdin.write('error\n');
            await until('state switched', () => /state error/.test(out));
            const state = await independentClient(
                port,
                1,
                async (c) => (await c.readInputRegisters(5, 1)).data,
            );
            assert.deepEqual(state, [11]);
            // The written current survives the state change.
            const current = await independentClient(
                port,
                1,
                async (c) => (await c.readHoldingRegisters(261, 1)).data,
            );
            assert.deepEqual(current, [100]);
            process.kill(child.pid!, 'SIGTERM');
            assert.equal(await exited, 0);
        } finally {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
    });

    it('serves an RS-485 family on a serial line (RTU on a socat pty pair)', async function () {
        if (!hasCommand('socat')) this.skip();
        const pty = new PtyPair();
        await pty.start();
        const bin = join(__dirname, '..', '..', '..', '..', 'bin', 'evcm-sim.js');
        const child = spawn(
            process.execPath,
            [
                bin,
                'modbus',
                '--device',
                'evse_abl_emh1',
                '--state',
                'charging',
                '--serial',
                pty.a,
                '--baud',
                '38400',
            ],
            { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
        const bus = new Bus(parseBusAddress(`${pty.b},38400,8,N,1`), { timeoutMs: 500 });
        try {
            await until('serving', () => out.includes(`RTU on ${pty.a} at 38400 Bd, unit 1`));
            // State C2 in the low byte of 0x0004; currents L3, L2, L1 in 0.1 A at 0x0030.
            assert.deepEqual(
                await bus.read({ device: 'E1', unit: 1, address: 4, count: 1 }),
                [0xc2],
            );
            assert.deepEqual(
                await bus.read({ device: 'E1', unit: 1, address: 0x30, count: 3 }),
                [161, 158, 160],
            );
            await bus.write({ device: 'E1', unit: 1, address: 0x14, values: [250], fc: 16 });
            await until('the write printed', () => /write fc 16 unit 1 register 20: 250/.test(out));
            process.kill(child.pid!, 'SIGTERM');
            assert.equal(await exited, 0);
        } finally {
            await bus.close();
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
            await pty.stop();
        }
    });
});
