// npm run soak [minutes]: the reliability harness (loopback only, bounded, stops by itself).
import { join } from 'node:path';
import { build, ensureInstalled, root, run } from './lib.mjs';

ensureInstalled();
if ((await build()) !== 0) process.exit(1);
process.exitCode = await run(process.execPath, [
    '--expose-gc',
    join(root, 'dist', 'bench', 'soak-run.js'),
    ...process.argv.slice(2),
]);
