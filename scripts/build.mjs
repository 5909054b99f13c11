import { build, ensureInstalled } from './lib.mjs';

ensureInstalled();
process.exitCode = await build();
