// npm start and npm test on a fresh clone install first; without a reachable registry they must
// end with a message that says so, not wait in silence.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../lib/sim/powerbrain-sim';

const root = join(__dirname, '..', '..', '..');

describe('install on a fresh clone', function () {
    this.timeout(120_000);

    it('npm start without node_modules and without a registry fails fast and says why', async () => {
        const clone = mkdtempSync(join(tmpdir(), 'evcm-clone-'));
        try {
            for (const f of ['package.json', 'package-lock.json', 'scripts']) {
                cpSync(join(root, f), join(clone, f), { recursive: true });
            }
            // A loopback port nobody listens on: the registry refuses at once. An empty cache:
            // npm cannot fall back on packages this machine happens to hold.
            const port = await freePort();
            const started = Date.now();
            const child = spawn(process.execPath, [join(clone, 'scripts', 'start.mjs')], {
                cwd: clone,
                env: {
                    ...process.env,
                    npm_config_registry: `http://127.0.0.1:${port}/`,
                    npm_config_cache: join(clone, '.npm-cache'),
                    PORT: String(await freePort()),
                },
                stdio: ['ignore', 'pipe', 'pipe'],
            });
            let out = '';
            child.stdout.on('data', (c: Buffer) => (out += c.toString()));
            child.stderr.on('data', (c: Buffer) => (out += c.toString()));
            const code = await new Promise<number | null>((resolve) => {
                const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
                child.on('exit', (c) => {
                    clearTimeout(timer);
                    resolve(c);
                });
            });
            const seconds = (Date.now() - started) / 1000;
            assert.equal(code, 1, out);
            assert.match(
                out,
                /Cannot install the dependencies: the npm registry http:\/\/127\.0\.0\.1:\d+\/ did not answer/,
            );
            assert.ok(seconds < 60, `took ${seconds} s`);
            assert.ok(!existsSync(join(clone, '.node-red')), 'Node-RED was not started');
        } finally {
            rmSync(clone, { recursive: true, force: true });
        }
    });
});
