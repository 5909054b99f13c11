// Shared steps for the npm scripts: install when needed, build, run a child process.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs a command with inherited stdio; resolves to its exit code. */
export function run(cmd, args, opts = {}) {
    return new Promise((resolve) => {
        const child = spawn(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
        child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
}

/** Longest a whole `npm ci` may take before it is given up (EVCM_INSTALL_TIMEOUT_S). */
const INSTALL_TIMEOUT_MS = Number(process.env.EVCM_INSTALL_TIMEOUT_S ?? 900) * 1000;
/** Longest wait for the npm registry to answer at all. */
const REGISTRY_PROBE_MS = 15_000;

function fail(message) {
    console.error(`\n${message}\n`);
    process.exit(1);
}

function npmRegistry() {
    const res = spawnSync('npm', ['config', 'get', 'registry'], { cwd: root, encoding: 'utf8' });
    return (res.stdout || '').trim() || 'https://registry.npmjs.org/';
}

/** Whether the registry answers an HTTP request at all within REGISTRY_PROBE_MS. */
function registryAnswers(registry) {
    const probe = `fetch(${JSON.stringify(registry)}, { method: 'HEAD', signal: AbortSignal.timeout(${REGISTRY_PROBE_MS}) }).then(() => process.exit(0), () => process.exit(1));`;
    const res = spawnSync(process.execPath, ['-e', probe], {
        stdio: 'ignore',
        timeout: REGISTRY_PROBE_MS + 5000,
    });
    return res.status === 0;
}

/**
 * A fresh clone has no node_modules: install exactly what the lock file says. Without a registry
 * npm would retry for a long time in silence; instead the registry is asked first, npm's own cache
 * is tried when it does not answer, and anything that still fails ends with a message.
 */
export function ensureInstalled() {
    const marker = join(root, 'node_modules', '.package-lock.json');
    const lock = join(root, 'package-lock.json');
    if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
    const registry = npmRegistry();
    const flags = ['--no-audit', '--no-fund'];
    if (!registryAnswers(registry)) {
        console.log(
            `> the npm registry ${registry} does not answer; trying npm's cache (npm ci --offline)`,
        );
        const offline = spawnSync('npm', ['ci', '--offline', ...flags], {
            cwd: root,
            stdio: 'inherit',
            timeout: INSTALL_TIMEOUT_MS,
            killSignal: 'SIGKILL',
        });
        if (offline.status === 0) return;
        fail(
            `Cannot install the dependencies: the npm registry ${registry} did not answer within ` +
                `${REGISTRY_PROBE_MS / 1000} s and npm's cache does not hold every package.\n` +
                'Connect this machine to the registry (or set a reachable one with ' +
                '`npm config set registry <url>`), then run the command again.',
        );
    }
    console.log('> installing dependencies (npm ci)');
    const res = spawnSync('npm', ['ci', ...flags, '--fetch-retries=2', '--fetch-timeout=60000'], {
        cwd: root,
        stdio: 'inherit',
        timeout: INSTALL_TIMEOUT_MS,
        killSignal: 'SIGKILL',
    });
    if (res.error?.code === 'ETIMEDOUT') {
        fail(
            `npm ci did not finish within ${INSTALL_TIMEOUT_MS / 1000} s (is the registry ${registry} ` +
                'reachable and fast enough?). Run the command again, or set EVCM_INSTALL_TIMEOUT_S.',
        );
    }
    if (res.status !== 0) fail(`npm ci failed (exit ${res.status}); see its output above.`);
}

/** Mirrors the editor files (html, locales, icons) next to the compiled node JS. */
export function copyAssets() {
    const out = join(root, 'dist', 'nodes');
    mkdirSync(out, { recursive: true });
    const nodesDir = join(root, 'nodes');
    for (const f of readdirSync(nodesDir)) {
        if (f.endsWith('.html')) cpSync(join(nodesDir, f), join(out, f));
    }
    if (existsSync(join(nodesDir, 'locales'))) {
        cpSync(join(nodesDir, 'locales'), join(out, 'locales'), { recursive: true });
    }
    if (existsSync(join(root, 'icons'))) {
        cpSync(join(root, 'icons'), join(out, 'icons'), { recursive: true });
    }
}

export async function build() {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const code = await run(process.execPath, [tsc, '-p', 'tsconfig.json']);
    if (code !== 0) return code;
    copyAssets();
    return 0;
}
