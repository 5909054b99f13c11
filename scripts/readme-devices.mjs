// Rewrites the README's table of supported devices from the built-in definitions (after a build).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build, root, run } from './lib.mjs';

if ((await build()) !== 0) process.exit(1);
const require = createRequire(import.meta.url);
const { supportedDevicesTable, withTable } = require(
    join(root, 'dist', 'lib', 'devices', 'supported-table.js'),
);
const { builtInDefinitions } = require(join(root, 'dist', 'lib', 'devices', 'registry.js'));
const file = join(root, 'README.md');
const table = supportedDevicesTable([...builtInDefinitions().values()]);
writeFileSync(file, withTable(readFileSync(file, 'utf8'), table));
await run(join(root, 'node_modules', '.bin', 'prettier'), ['--write', file]);
console.log('README.md: supported devices table written');
