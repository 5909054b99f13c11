// npm run bench [prefix]: builds, then runs every benchmark (or those whose file starts with prefix).
import { join } from 'node:path';
import { build, ensureInstalled, root, run } from './lib.mjs';

ensureInstalled();
if ((await build()) !== 0) process.exit(1);
process.exitCode = await run(process.execPath, [
    '--expose-gc',
    join(root, 'dist', 'bench', 'run.js'),
    ...process.argv.slice(2),
]);
