// A writer process killed with SIGKILL at a random moment, as a power cut or the OOM killer would
// end it: in one run of five during its start-up, otherwise while it is busy writing. The writer
// prints `ack <n>` for each write it has made durable; what it printed before the kill is what a
// crash test may count on.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Children still running, so that a suite's `after` can kill what a failed test left. */
export const runningWriters = new Set<ChildProcess>();

export async function killAllWriters(): Promise<void> {
    for (const child of runningWriters) child.kill('SIGKILL');
    await Promise.all([...runningWriters].map((child) => once(child, 'close')));
}

/**
 * Runs `node <script> ...args` and kills it: after up to `startupMs` from its start (one run in
 * five), else up to `busyMs` after its first ack. Returns the acknowledged numbers, in order.
 */
export async function runAndKill(
    script: string,
    args: readonly string[],
    { startupMs, busyMs }: { startupMs: number; busyMs: number },
): Promise<{ acks: number[]; stderr: string }> {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    runningWriters.add(child);
    const closed = once(child, 'close');
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    try {
        if (Math.random() < 0.2) {
            await sleep(Math.random() * startupMs); // anywhere from start-up on
        } else {
            const started = Date.now();
            while (!out.includes('\n') && child.exitCode === null) {
                assert.ok(Date.now() - started < 10_000, `no ack within 10 s: ${err}`);
                await sleep(2);
            }
            await sleep(Math.random() * busyMs); // while it is busy writing
        }
        const exitedEarly = child.exitCode !== null;
        child.kill('SIGKILL');
        await closed;
        assert.equal(exitedEarly, false, `writer exited by itself: ${err}`);
    } finally {
        runningWriters.delete(child);
    }
    const acks = out
        .split('\n')
        .filter((line) => /^ack \d+$/.test(line))
        .map((line) => Number(line.slice(4)));
    return { acks, stderr: err };
}
