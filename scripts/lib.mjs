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

/** A fresh clone has no node_modules: install exactly what the lock file says. */
export function ensureInstalled() {
    const marker = join(root, 'node_modules', '.package-lock.json');
    const lock = join(root, 'package-lock.json');
    if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
    console.log('> installing dependencies (npm ci)');
    const res = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
        cwd: root,
        stdio: 'inherit',
    });
    if (res.status !== 0) throw new Error('npm ci failed');
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
