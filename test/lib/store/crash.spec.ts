import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ManagerStore } from '../../../lib/store/store';
import { killAllWriters, runAndKill } from '../../support/kill-writer';

const WRITER = join(__dirname, '..', '..', 'support', 'store-writer.js');
const KILLS = 200;
/** Two writers (on two files) run side by side to keep the test short. */
const LANES = 2;

describe('store crash safety', function () {
    this.timeout(120_000);
    let dir: string;
    /** Set when one lane fails, so that the other stops starting writers. */
    let stopped = false;
    /** Kills that left a half-written temporary file behind: proof that kills hit writes. */
    let tornWrites = 0;

    before(async () => {
        dir = await mkdtemp(join(tmpdir(), 'evcm-crash-'));
    });

    after(async () => {
        stopped = true;
        await killAllWriters();
        await rm(dir, { recursive: true, force: true });
    });

    /** Starts the writer, kills it with SIGKILL at a random moment; returns the last acknowledged seq. */
    async function kill(file: string): Promise<number> {
        const { acks } = await runAndKill(WRITER, [file], { startupMs: 150, busyMs: 25 });
        return acks.length ? Math.max(...acks) : 0;
    }

    async function lane(file: string, kills: number): Promise<{ acked: number; seq: number }> {
        let acked = 0;
        let seq = 0;
        for (let i = 0; i < kills && !stopped; i++) {
            acked = Math.max(acked, await kill(file));
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
