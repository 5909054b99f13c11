// npm test: install if needed, build, lint, run every test; the last line is "N passed, N failed".
// `--long` multiplies the generated cases of the property tests and runs the long crash loops.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build, ensureInstalled, root, run } from './lib.mjs';

const long = process.argv.includes('--long');
const mochaArgs = process.argv.slice(2).filter((a) => a !== '--long');
const bin = (name) => join(root, 'node_modules', '.bin', name);

function finish(passes, failures, pending) {
    console.log(`${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}`);
    process.exit(failures > 0 ? 1 : 0);
}

ensureInstalled();
if ((await build()) !== 0) {
    console.error('build failed');
    finish(0, 1, 0);
}

let lintFailures = 0;
console.log('> eslint');
if ((await run(bin('eslint'), ['.'])) !== 0) lintFailures++;
console.log('> prettier --check');
if ((await run(bin('prettier'), ['--check', '--log-level', 'warn', '.'])) !== 0) lintFailures++;
if (lintFailures) console.error(`lint: ${lintFailures} check(s) failed`);

const summaryFile = join(root, '.test-summary.json');
rmSync(summaryFile, { force: true });
const env = { ...process.env, EVCM_TEST_SUMMARY: summaryFile };
if (long) {
    env.EVCM_PROPERTY_SCALE = env.EVCM_PROPERTY_SCALE ?? '20';
    env.EVCM_TEST_LONG = '1';
}

// Mocha runs without --exit so that a leaked socket or timer shows up: if it has not exited
// 15 s after its last test, that is reported as a failure instead of hanging CI.
const mocha = spawn(bin('mocha'), mochaArgs, { cwd: root, env, stdio: 'inherit' });
let hung = false;
const watchdog = setInterval(() => {
    if (!existsSync(summaryFile) || watchdog.armedAt) return;
    watchdog.armedAt = Date.now();
    setTimeout(() => {
        hung = true;
        console.error('mocha did not exit 15 s after its last test: open handles were left behind');
        mocha.kill('SIGKILL');
    }, 15000).unref();
}, 500);
const code = await new Promise((resolve) => mocha.on('exit', (c) => resolve(c ?? 1)));
clearInterval(watchdog);

if (!existsSync(summaryFile)) {
    console.error(`mocha ended (exit ${code}) without finishing its run`);
    finish(0, 1 + lintFailures, 0);
}
const s = JSON.parse(readFileSync(summaryFile, 'utf8'));
rmSync(summaryFile, { force: true });
finish(s.passes, s.failures + lintFailures + (hung ? 1 : 0), s.pending);
