// The session book between the tracker and the log on real files: records are written as sessions
// end (and only then announced), running sessions are checkpointed on start, on end and on the
// timer, and read back into a new tracker before its first update.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EvseReading } from '../../../lib/core/types';
import { SessionBook } from '../../../lib/sessions/book';
import { SessionLog } from '../../../lib/sessions/session-log';
import { SessionTracker } from '../../../lib/sessions/tracker';

const T0 = Date.UTC(2026, 11, 3, 8);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Waits (fsyncs take their time on a busy disk) until `check` holds. */
async function eventually(what: string, check: () => boolean): Promise<void> {
    for (let i = 0; i < 200; i++) {
        try {
            if (check()) return;
        } catch {
            // not there yet
        }
        await sleep(25);
    }
    assert.fail(`never: ${what}`);
}

describe('session book', () => {
    let dir: string;
    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), 'evcm-book-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const feed = (t: SessionTracker, now: number, id: string, r: EvseReading) =>
        t.update(now, [{ dev_id: id, name: id, reading: r, takenAt: now }]);
    const checkpoint = (file: string) =>
        (
            JSON.parse(readFileSync(`${file}.open.json`, 'utf8')) as {
                sessions: { id: string; energy_wh: number }[];
            }
        ).sessions;

    it('writes each record before announcing it, checkpoints the running ones, and restores them', async () => {
        const file = join(dir, 'm.sessions.jsonl');
        const tracker = new SessionTracker();
        const book = new SessionBook(tracker, new SessionLog(file), { checkpointMs: 50 });
        assert.deepEqual(await book.open(), { restored: 0, dropped: 0 });
        const announced: string[] = [];
        book.events.on('recorded', ({ record, error }) => {
            assert.equal(error, undefined);
            // Announced only once it is in the file.
            assert.ok(readFileSync(file, 'utf8').includes(record.id));
            announced.push(record.dev_id);
        });
        feed(tracker, T0, 'E1', { state: 2, totalEnergyWh: 100 });
        await eventually('checkpoint on start', () => checkpoint(file)[0]?.id === `${T0}-E1`);
        feed(tracker, T0 + 60_000, 'E1', {
            state: 3,
            totalEnergyWh: 400,
            currents: [16_000, 16_000, 16_000],
        });
        await eventually('checkpoint on the timer', () => checkpoint(file)[0]?.energy_wh === 300);
        await book.close();

        // A new start: the running session comes back and ends with its whole energy.
        const again = new SessionTracker();
        const book2 = new SessionBook(again, new SessionLog(file), { checkpointMs: 50 });
        book2.events.on('recorded', ({ record }) =>
            announced.push(`${record.dev_id}:${record.energy_wh}`),
        );
        assert.deepEqual(await book2.open(), { restored: 1, dropped: 0 });
        feed(again, T0 + 120_000, 'E1', { state: 3, totalEnergyWh: 650 }); // still there
        feed(again, T0 + 180_000, 'E1', { state: 1, totalEnergyWh: 700 });
        await eventually('the record announced', () => announced.length === 1);
        assert.deepEqual(announced, ['E1:600']);
        const done = await book2.query({ dev_id: 'E1' });
        assert.equal(done.length, 1);
        assert.equal(done[0]!.reason, 'unplugged');
        await eventually('checkpoint on end', () => checkpoint(file).length === 0);
        await book2.close();
    });

    it('without storage keeps the newest records in memory', async () => {
        const tracker = new SessionTracker();
        const book = new SessionBook(tracker, null, { memoryKeep: 2 });
        await book.open();
        for (let i = 0; i < 3; i++) {
            feed(tracker, T0 + i * 2000, 'E1', { state: 2 });
            feed(tracker, T0 + i * 2000 + 1000, 'E1', { state: 1 });
        }
        const kept = await book.query();
        assert.deepEqual(
            kept.map((r) => r.start),
            [T0 + 2000, T0 + 4000],
        );
        await book.close();
    });
});
