// A real Node-RED (the devDependency; Node-RED 5 in the runtime matrix) in a child process with
// this package loaded from the working tree through nodesDir, on 127.0.0.1 and a free port, with a
// temporary user directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/sim/powerbrain-sim';

export const repoRoot = join(__dirname, '..', '..', '..');
/** Node-RED's start script; the runtime matrix points 'node-red' at Node-RED 5. */
const redScript = require.resolve('node-red/red.js');

export interface NodeRedProcess {
    url: string;
    userDir: string;
    pid: number;
    /** Everything Node-RED logged so far. */
    log(): string;
    stop(): Promise<void>;
    /** SIGKILL by PID, as a power cut or the OOM killer would end it: nothing runs on the way out. */
    kill(): Promise<void>;
}

export interface StartOptions {
    /**
     * An existing user directory (a restart): its flows, credentials and stores are used, and it
     * is left in place on stop. `flows`, if given, replaces its flow file.
     */
    userDir?: string;
    /** Node credentials by node id (flows_cred.json; credentialSecret is off). */
    credentials?: Record<string, Record<string, string>>;
    /** false: the package is not loaded from the working tree (it is installed in the user dir). */
    fromWorkingTree?: boolean;
}

export async function startNodeRed(
    flows?: unknown[],
    options: StartOptions = {},
): Promise<NodeRedProcess> {
    const ownDir = !options.userDir;
    const userDir = options.userDir ?? mkdtempSync(join(tmpdir(), 'evcm-nr-'));
    const port = await freePort();
    writeFileSync(
        join(userDir, 'settings.js'),
        `module.exports = ${JSON.stringify({
            uiHost: '127.0.0.1',
            uiPort: port,
            flowFile: 'flows.json',
            credentialSecret: false,
            ...(options.fromWorkingTree === false ? {} : { nodesDir: [repoRoot] }),
            editorTheme: { projects: { enabled: false }, tours: false },
            diagnostics: { enabled: false },
            runtimeState: { enabled: false },
            telemetry: { enabled: false, updateNotification: false },
            logging: { console: { level: 'info', metrics: false, audit: false } },
        })};\n`,
    );
    if (flows || ownDir) writeFileSync(join(userDir, 'flows.json'), JSON.stringify(flows ?? []));
    if (options.credentials) {
        writeFileSync(join(userDir, 'flows_cred.json'), JSON.stringify(options.credentials));
    }
    let output = '';
    const child: ChildProcess = spawn(process.execPath, [redScript, '-u', userDir], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // SIGTERM by PID: Node-RED stops its flows (every node's close handler runs), then exits.
    const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
        if (ownDir) rmSync(userDir, { recursive: true, force: true });
    };
    const kill = async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
        if (ownDir) rmSync(userDir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 30_000;
    while (!output.includes('Started flows')) {
        if (child.exitCode !== null || Date.now() > deadline) {
            await stop();
            throw new Error(`Node-RED did not start:\n${output}`);
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    return {
        url: `http://127.0.0.1:${port}/`,
        userDir,
        pid: child.pid!,
        log: () => output,
        stop,
        kill,
    };
}
