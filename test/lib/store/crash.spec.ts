import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ManagerStore } from '../../../lib/store/store';

const WRITER = join(__dirname, '..', '..', 'support', 'store-writer.js');
const KILLS = 200;
/** Two writers (on two files) run side by side to keep the test short. */
const LANES = 2;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const randomInt = (max: number) => Math.floor(Math.random() * max);

describe('store crash safety', function () {
    this.timeout(120_000);
    let dir: string;
    const children = new Set<ChildProcess>();
    /** Set when one lane fails, so that the other stops starting writers. */
    let stopped = false;
    /** Kills that left a half-written temporary file behind: proof that kills hit writes. */
    let tornWrites = 0;

    before(async () => {
        dir = await mkdtemp(join(tmpdir(), 'evcm-crash-'));
    });

    after(async () => {
        stopped = true;
        for (const child of children) child.kill('SIGKILL');
        await Promise.all([...children].map((child) => once(child, 'close')));
        await rm(dir, { recursive: true, force: true });
    });

    /** Starts the writer, kills it with SIGKILL at a random moment; returns the last acknowledged seq. */
    async function runAndKill(file: string): Promise<number> {
        const child = spawn(process.execPath, [WRITER, file], {
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.add(child);
        const closed = once(child, 'close');
        let out = '';
        let err = '';
        child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
        child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
        try {
            if (Math.random() < 0.2) {
                // anywhere from start-up (loading, cleaning up) on
                await sleep(randomInt(150));
            } else {
                // while it is busy writing
                const started = Date.now();
                while (
                    !out.includes('\n') &&
                    child.exitCode === null &&
                    Date.now() - started < 10_000
                ) {
                    await sleep(2);
                }
                await sleep(randomInt(25));
            }
            const exitedEarly = child.exitCode !== null;
            child.kill('SIGKILL');
            await closed;
            assert.equal(exitedEarly, false, `writer exited by itself: ${err}`);
        } finally {
            children.delete(child);
        }
        const acks = out
            .split('\n')
            .filter((line) => /^ack \d+$/.test(line))
            .map((line) => Number(line.slice(4)));
        return acks.length ? Math.max(...acks) : 0;
    }

    async function lane(file: string, kills: number): Promise<{ acked: number; seq: number }> {
        let acked = 0;
        let seq = 0;
        for (let i = 0; i < kills && !stopped; i++) {
            acked = Math.max(acked, await runAndKill(file));
            const prefix = `${basename(file)}.tmp-`;
            if ((await readdir(dir)).some((f) => f.startsWith(prefix))) tornWrites++;
            const store = await ManagerStore.open(file);
            try {
                const report = store.loadReport;
                assert.ok(
                    report.status === 'loaded' || (report.status === 'new' && acked === 0),
                    `kill ${i}: store ${report.status}: ${report.error?.message ?? ''}`,
                );
                const doc = store.document;
                const stored = doc.variables.find((v) => v.name === 'seq')?.expr ?? 0;
                assert.equal(typeof stored, 'number');
                seq = stored as number;
                assert.ok(seq >= acked, `kill ${i}: acknowledged ${acked} but loaded ${seq}`);
                if (seq > 0) {
                    assert.deepEqual(doc.counters.E1, { soft_meter: seq, total_energy: seq * 10 });
                    assert.equal(doc.users.length, seq % 40);
                }
            } finally {
                await store.close();
            }
        }
        return { acked, seq };
    }

    it(`no acknowledged change is lost when the writer is killed ${KILLS} times`, async () => {
        const started = Date.now();
        const files = Array.from({ length: LANES }, (_, i) => join(dir, `manager-${i}.json`));
        const settled = await Promise.allSettled(
            files.map((file) =>
                lane(file, KILLS / LANES).catch((err: unknown) => {
                    stopped = true;
                    throw err;
                }),
            ),
        );
        const results = settled.map((result) => {
            if (result.status === 'rejected') throw result.reason;
            return result.value;
        });
        for (const { acked, seq } of results) {
            assert.ok(acked > KILLS / LANES, `the writers made progress (${acked} acknowledged)`);
            assert.ok(seq >= acked);
        }
        const leftovers = (await readdir(dir)).filter((f) => !/^manager-\d\.json$/.test(f));
        assert.deepEqual(leftovers, [], 'only the store files remain');
        // the kills must land in the middle of writes, not only between them
        assert.ok(tornWrites >= 10, `only ${tornWrites} kills interrupted a write`);
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        console.log(`      ${KILLS} kills in ${seconds} s, ${tornWrites} of them during a write`);
    });
});
