import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { SessionRecord } from '../../../lib/sessions/record';
import {
    CSV_HEADER,
    SessionLog,
    toCsv,
    type SessionLogError,
    type SessionLogFileSystem,
    type SessionLogOptions,
} from '../../../lib/sessions/session-log';
import { killAllWriters, runAndKill } from '../../support/kill-writer';
import { runningSession, sessionRecord, seqOf, T0 } from '../../support/sessions';

const WRITER = join(__dirname, '..', '..', 'support', 'session-log-writer.js');
const LINE_BYTES = Buffer.byteLength(`${JSON.stringify(sessionRecord(1))}\n`);
/** A file holding 3 records is over this size, one holding 2 is not: a rotation every 3rd append. */
const THREE_PER_FILE = Math.floor(2.5 * LINE_BYTES);

const range = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** RFC 4180 reader, written independently of toCsv: rows of fields. */
function parseCsv(text: string): string[][] {
    const rows: string[][] = [];
    let row: string[] = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
        const c = text[i]!;
        if (quoted) {
            if (c === '"' && text[i + 1] === '"') {
                field += '"';
                i++;
            } else if (c === '"') quoted = false;
            else field += c;
        } else if (c === '"') {
            assert.equal(field, '', 'a quote only opens a field');
            quoted = true;
        } else if (c === ',') {
            row.push(field);
            field = '';
        } else if (c === '\r' && text[i + 1] === '\n') {
            row.push(field);
            rows.push(row);
            row = [];
            field = '';
            i++;
        } else {
            assert.ok(c !== '\n' && c !== '\r', `bare line break at ${i}`);
            field += c;
        }
    }
    assert.equal(quoted, false, 'unterminated quote');
    assert.deepEqual([row, field], [[], ''], 'the last row ends with CRLF');
    return rows;
}

describe('session log', () => {
    let dir: string;
    let file: string;
    const logs: SessionLog[] = [];

    function makeLog(options: SessionLogOptions = {}): SessionLog {
        const log = new SessionLog(file, options);
        logs.push(log);
        return log;
    }

    async function openLog(options: SessionLogOptions = {}): Promise<SessionLog> {
        const log = makeLog(options);
        await log.open();
        return log;
    }

    /** The rotated files' numbers, ascending. */
    async function rotatedNumbers(): Promise<number[]> {
        const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return [];
            throw err;
        });
        return names
            .map((name) => /^site\.sessions\.(\d+)\.jsonl$/.exec(name)?.[1])
            .filter((n): n is string => n !== undefined)
            .map(Number)
            .sort((a, b) => a - b);
    }

    async function linesOf(path: string): Promise<string[]> {
        const text = await readFile(path, 'utf8').catch(() => '');
        assert.ok(text === '' || text.endsWith('\n'), `${basename(path)} ends with a torn line`);
        return text.split('\n').slice(0, -1);
    }

    /** The sequence numbers of the records on disk, in file order: oldest file first. */
    async function seqsOnDisk(): Promise<number[]> {
        const files = (await rotatedNumbers()).reverse().map((n) => rotated(n));
        const seqs: number[] = [];
        for (const path of [...files, file]) {
            for (const line of await linesOf(path)) {
                seqs.push(seqOf((JSON.parse(line) as SessionRecord).id));
            }
        }
        return seqs;
    }

    const rotated = (n: number) => join(dir, `site.sessions.${n}.jsonl`);

    beforeEach(async () => {
        dir = await mkdtemp(join(tmpdir(), 'evcm-sessions-'));
        file = join(dir, 'logs', 'site.sessions.jsonl');
        dir = join(dir, 'logs');
    });

    afterEach(async () => {
        await Promise.all(logs.splice(0).map((log) => log.close().catch(() => undefined)));
        await rm(join(dir, '..'), { recursive: true, force: true });
    });

    describe('append and query', () => {
        it('creates its directory; each append is one JSON line, on disk when it resolves', async () => {
            const log = makeLog();
            assert.deepEqual(await log.open(), { running: [], dropped: 0 });
            for (const n of [1, 2, 3]) {
                await log.append(sessionRecord(n));
                assert.equal((await linesOf(file)).length, n, 'in the file once resolved');
            }
            const lines = await linesOf(file);
            assert.deepEqual(
                lines.map((l) => JSON.parse(l) as unknown),
                [1, 2, 3].map((n) => sessionRecord(n)),
            );
            const { records, skipped } = await log.query();
            assert.deepEqual(
                records,
                [1, 2, 3].map((n) => sessionRecord(n)),
            );
            assert.equal(skipped, 0);
        });

        it('appends made at once are written one after the other, in call order', async () => {
            // big records, so interleaved writes would show as broken lines; 4 to a file
            const big = (n: number) => sessionRecord(n, { name: 'x'.repeat(50_000) });
            const log = await openLog({ maxBytes: 180_000, keep: 100 });
            await Promise.all(range(1, 40).map((n) => log.append(big(n))));
            assert.deepEqual(await seqsOnDisk(), range(1, 40));
            assert.ok((await rotatedNumbers()).length > 5, 'rotated between the appends');
        });

        it('refuses an invalid record and writes nothing', async () => {
            const log = await openLog();
            const bad = { ...sessionRecord(1), energy_wh: -5 };
            await assert.rejects(log.append(bad), (err: SessionLogError) => {
                assert.equal(err.code, 'LOG_INVALID');
                assert.match(err.message, /energy_wh/);
                return true;
            });
            await log.append(sessionRecord(2));
            assert.deepEqual(await seqsOnDisk(), [2]);
        });

        it('fails before open() and after close()', async () => {
            const log = makeLog();
            await assert.rejects(log.append(sessionRecord(1)), { code: 'LOG_CLOSED' });
            await log.open();
            await log.append(sessionRecord(1));
            await log.close();
            await assert.rejects(log.append(sessionRecord(2)), { code: 'LOG_CLOSED' });
            await assert.rejects(log.checkpoint([]), { code: 'LOG_CLOSED' });
            assert.deepEqual(await seqsOnDisk(), [1]);
        });

        it('filters by time window (overlap), user (id, name or card), wallbox and limit', async () => {
            const log = await openLog({ maxBytes: THREE_PER_FILE, keep: 100 });
            // record n: E(n%3+1), user id 100+n%4, name "User n%4", card CARD(n%5),
            // from T0 + n min for 30 s
            for (const n of range(0, 19)) await log.append(sessionRecord(n));
            assert.ok((await rotatedNumbers()).length >= 5, 'the query reads rotated files');
            const seqs = async (filter: Parameters<SessionLog['query']>[0]) =>
                (await log.query(filter)).records.map((r) => seqOf(r.id));
            const at = (n: number, s = 0) => T0 + n * 60_000 + s * 1000;

            assert.deepEqual(await seqs({}), range(0, 19));
            // overlap, both ends included: 4 ends at 4:30, 7 starts at 7:00
            assert.deepEqual(await seqs({ from: at(4, 30), to: at(7) }), [4, 5, 6, 7]);
            assert.deepEqual(await seqs({ from: at(4, 31), to: at(6, 59) }), [5, 6]);
            assert.deepEqual(await seqs({ from: at(19, 31) }), []);
            assert.deepEqual(await seqs({ to: at(1, 59) }), [0, 1]);
            assert.deepEqual(await seqs({ from: at(5, 10), to: at(5, 20) }), [5], 'inside one');
            assert.deepEqual(await seqs({ user: '101' }), [1, 5, 9, 13, 17], 'user id');
            assert.deepEqual(await seqs({ user: 'User 2' }), [2, 6, 10, 14, 18], 'user name');
            assert.deepEqual(await seqs({ user: 'CARD3' }), [3, 8, 13, 18], 'card');
            assert.deepEqual(await seqs({ user: 'user 2' }), [], 'case-sensitive');
            assert.deepEqual(await seqs({ dev_id: 'E2' }), [1, 4, 7, 10, 13, 16, 19]);
            assert.deepEqual(await seqs({ limit: 3 }), [17, 18, 19], 'the newest, newest last');
            assert.deepEqual(await seqs({ limit: 0 }), []);
            assert.deepEqual(await seqs({ limit: 50 }), range(0, 19));
            assert.deepEqual(
                await seqs({ dev_id: 'E2', user: 'CARD3', from: at(10), limit: 5 }),
                [13],
            );
            await assert.rejects(log.query({ limit: -1 }), { code: 'LOG_INVALID' });
        });

        it('returns records by end, also one logged late (a session finished after a restart)', async () => {
            const log = await openLog();
            await log.append(sessionRecord(5));
            await log.append(sessionRecord(3, { reason: 'interrupted' }));
            await log.append(sessionRecord(6));
            const { records } = await log.query({ limit: 2 });
            assert.deepEqual(
                records.map((r) => seqOf(r.id)),
                [5, 6],
            );
        });
    });

    describe('crash recovery', () => {
        it('open() cuts a torn last line off, and the next record gets a line of its own', async () => {
            const log = await openLog();
            for (const n of [1, 2, 3]) await log.append(sessionRecord(n));
            await log.close();
            const whole = await readFile(file, 'utf8');
            // a crash in the middle of writing record 4
            await appendFile(file, JSON.stringify(sessionRecord(4)).slice(0, 57));

            const reopened = makeLog();
            assert.deepEqual(await reopened.open(), { running: [], dropped: 1 });
            assert.equal(await readFile(file, 'utf8'), whole, 'back to the last complete line');
            await reopened.append(sessionRecord(5));
            assert.deepEqual(await seqsOnDisk(), [1, 2, 3, 5]);
            const { records, skipped } = await reopened.query();
            assert.equal(records.length, 4);
            assert.equal(skipped, 0);
        });

        it('a file that is one torn line only, or zeros from a power cut, is cut to nothing', async () => {
            for (const torn of ['{"id":"17', '\0\0\0\0\0\0\0\0']) {
                await fsp.mkdir(dir, { recursive: true });
                await writeFile(file, torn);
                const log = makeLog();
                assert.equal((await log.open()).dropped, 1);
                assert.equal((await stat(file)).size, 0);
                await log.append(sessionRecord(1));
                assert.deepEqual(await seqsOnDisk(), [1]);
                await log.close();
                await rm(file);
            }
        });

        it('a write that fails half-way is cut back: the append rejects and is not in the log', async () => {
            let failNext = false;
            const failing: SessionLogFileSystem = {
                ...fsp,
                async open(...args: Parameters<typeof fsp.open>) {
                    const handle = await fsp.open(...args);
                    const write = handle.write.bind(handle) as (
                        b: Buffer,
                        o: number,
                        l: number,
                    ) => Promise<{ bytesWritten: number }>;
                    Object.assign(handle, {
                        async write(buffer: Buffer, offset: number, length: number) {
                            if (!failNext) return write(buffer, offset, length);
                            failNext = false;
                            await write(buffer, offset, Math.floor(length / 2));
                            throw Object.assign(new Error('no space left on device'), {
                                code: 'ENOSPC',
                            });
                        },
                    });
                    return handle;
                },
            } as SessionLogFileSystem;
            const log = await openLog({ fileSystem: failing });
            await log.append(sessionRecord(1));
            failNext = true;
            await assert.rejects(log.append(sessionRecord(2)), (err: SessionLogError) => {
                assert.equal(err.code, 'LOG_WRITE');
                assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOSPC');
                return true;
            });
            assert.deepEqual(await seqsOnDisk(), [1], 'no half line left');
            await log.append(sessionRecord(2));
            await log.append(sessionRecord(3));
            assert.deepEqual(await seqsOnDisk(), [1, 2, 3]);
        });

        it('skips and counts lines that are not valid records, in any file', async () => {
            const log = await openLog({ maxBytes: THREE_PER_FILE, keep: 10 });
            for (const n of range(1, 6)) await log.append(sessionRecord(n));
            await log.close();
            assert.deepEqual(await rotatedNumbers(), [1, 2]);
            await appendFile(rotated(2), 'not json\n\n');
            await appendFile(rotated(1), `${JSON.stringify({ id: 'x', dev_id: 'E1' })}\n`);
            await appendFile(file, `${JSON.stringify({ ...sessionRecord(7), reason: 'other' })}\n`);
            await appendFile(file, `${JSON.stringify(sessionRecord(8))}\n[1,2]\n`);

            const { records, skipped } = await (await openLog()).query();
            assert.deepEqual(
                records.map((r) => seqOf(r.id)),
                [1, 2, 3, 4, 5, 6, 8],
            );
            assert.equal(skipped, 5);
        });
    });

    describe('rotation', () => {
        it('rotates past maxBytes, keeps order and the newest `keep` files', async () => {
            const log = await openLog({ maxBytes: THREE_PER_FILE, keep: 3 });
            for (const n of range(1, 20)) {
                await log.append(sessionRecord(n));
                const files = Math.floor(n / 3);
                assert.deepEqual(await rotatedNumbers(), range(1, Math.min(files, 3)));
                // the oldest files beyond `keep` are gone, nothing else
                assert.deepEqual(await seqsOnDisk(), range(Math.max(1, 3 * (files - 3) + 1), n));
            }
            for (const n of [1, 2, 3]) {
                assert.equal((await stat(rotated(n))).size, 3 * LINE_BYTES);
            }
            const { records } = await log.query();
            assert.deepEqual(
                records.map((r) => seqOf(r.id)),
                range(10, 20),
            );
        });

        it('finishes a rotation cut short at open, and deletes files beyond `keep`', async () => {
            // as a crash may leave it: a gap where x.1 was being moved up, the current file full
            const lines = (seqs: number[]) =>
                seqs.map((n) => `${JSON.stringify(sessionRecord(n))}\n`).join('');
            await fsp.mkdir(dir, { recursive: true });
            await writeFile(rotated(4), lines([1, 2]));
            await writeFile(rotated(3), lines([3, 4]));
            await writeFile(rotated(1), lines([5, 6]));
            await writeFile(file, lines(range(7, 12)));
            const log = await openLog({ maxBytes: THREE_PER_FILE, keep: 3 });
            assert.deepEqual(await rotatedNumbers(), [1, 2, 3]);
            assert.deepEqual(await seqsOnDisk(), range(3, 12));
            await log.append(sessionRecord(13));
            assert.deepEqual(await seqsOnDisk(), range(3, 13));
        });

        /** Steps of the rotation file operations: renames, unlinks and directory fsyncs. */
        function steppingFs(
            onStep: (step: string) => 'go' | 'crash' | 'fail',
            handles: fsp.FileHandle[] = [],
        ) {
            const gate = async <T>(step: string, op: () => Promise<T>): Promise<T> => {
                const what = onStep(step);
                // a crash: this step and everything after it never happen
                if (what === 'crash') return new Promise<T>(() => undefined);
                if (what === 'fail') throw Object.assign(new Error('I/O error'), { code: 'EIO' });
                return op();
            };
            return {
                ...fsp,
                rename: (from: string, to: string) =>
                    gate(`rename ${basename(from)} ${basename(to)}`, () => fsp.rename(from, to)),
                unlink: (path: string) => gate(`unlink ${basename(path)}`, () => fsp.unlink(path)),
                open: (path: string, flags?: string, mode?: number) =>
                    flags === 'r'
                        ? gate('sync dir', () => fsp.open(path, flags))
                        : fsp.open(path, flags, mode).then((h) => (handles.push(h), h)),
            } as SessionLogFileSystem;
        }

        /**
         * Files 3 records each, keep 2: records 1..8 are in, and the 9th append rotates with
         * x.1 (4-6) and x.2 (1-3) there; a full rotation ends with x.1 (7-9), x.2 (4-6), and the
         * 10th append creates the current file anew.
         */
        async function rotationSteps(): Promise<string[]> {
            const steps: string[] = [];
            let armed = false;
            const fs = steppingFs((step) => {
                if (armed) steps.push(step);
                return 'go';
            });
            const log = await openLog({ maxBytes: THREE_PER_FILE, keep: 2, fileSystem: fs });
            for (const n of range(1, 8)) await log.append(sessionRecord(n));
            armed = true;
            await log.append(sessionRecord(9));
            await log.append(sessionRecord(10));
            await log.close();
            assert.deepEqual(await seqsOnDisk(), range(4, 10));
            await rm(dir, { recursive: true });
            return steps;
        }

        it('the rotation steps go in an order that never overwrites a file', async () => {
            assert.deepEqual(await rotationSteps(), [
                'rename site.sessions.2.jsonl site.sessions.3.jsonl',
                'sync dir',
                'rename site.sessions.1.jsonl site.sessions.2.jsonl',
                'sync dir',
                'rename site.sessions.jsonl site.sessions.1.jsonl',
                'sync dir',
                'unlink site.sessions.3.jsonl',
                'sync dir',
                'sync dir', // the next append creates the file
            ]);
        });

        it('a crash at any step of a rotation loses and duplicates no record', async () => {
            const steps = await rotationSteps();
            for (let crashAt = 0; crashAt < steps.length; crashAt++) {
                let step = 0;
                let crashed: () => void = () => undefined;
                const crash = new Promise<void>((resolve) => (crashed = resolve));
                let armed = false;
                const handles: fsp.FileHandle[] = [];
                const fs = steppingFs(() => {
                    if (!armed || step++ !== crashAt) return 'go';
                    crashed();
                    return 'crash';
                }, handles);
                const log = new SessionLog(file, {
                    maxBytes: THREE_PER_FILE,
                    keep: 2,
                    fileSystem: fs,
                });
                await log.open();
                for (const n of range(1, 8)) await log.append(sessionRecord(n));
                armed = true;
                // the 9th append rotates; the last step is the 10th's (creating the file)
                const appending = log
                    .append(sessionRecord(9))
                    .then(() => log.append(sessionRecord(10)));
                void appending.catch(() => undefined); // never settles: the process "died"
                await crash;
                // what the dead process held open, the kernel would close
                await Promise.all(handles.map((h) => h.close().catch(() => undefined)));

                const seqs = await seqsOnDisk();
                assert.ok(
                    [range(1, 9).join(), range(4, 9).join()].includes(seqs.join()),
                    `crash at step ${crashAt} (${steps[crashAt]}): ${seqs.join()} on disk`,
                );
                const after = await openLog({ maxBytes: THREE_PER_FILE, keep: 2 });
                assert.deepEqual(await seqsOnDisk(), range(4, 9), `after a crash at ${crashAt}`);
                assert.deepEqual(await rotatedNumbers(), [1, 2]);
                for (const n of range(10, 12)) await after.append(sessionRecord(n));
                assert.deepEqual(await seqsOnDisk(), range(7, 12));
                await after.close();
                await rm(dir, { recursive: true });
            }
        });

        it('a failed rotation step is reported, the append still resolves, the next append heals it', async () => {
            const steps = await rotationSteps();
            for (let failAt = 0; failAt < steps.length - 1; failAt++) {
                let step = 0;
                let armed = false;
                const errors: SessionLogError[] = [];
                const fs = steppingFs(() => (armed && step++ === failAt ? 'fail' : 'go'));
                const log = await openLog({
                    maxBytes: THREE_PER_FILE,
                    keep: 2,
                    fileSystem: fs,
                    onError: (err) => errors.push(err),
                });
                for (const n of range(1, 8)) await log.append(sessionRecord(n));
                armed = true;
                await log.append(sessionRecord(9));
                assert.deepEqual(
                    errors.map((e) => e.code),
                    ['LOG_ROTATE'],
                    `step ${failAt} (${steps[failAt]}) failed`,
                );
                for (const n of range(10, 14)) await log.append(sessionRecord(n));
                // two rotations later, as if none had failed
                const seqs = await seqsOnDisk();
                assert.deepEqual(seqs, range(seqs[0]!, 14), `step ${failAt}: in order, whole`);
                assert.ok(seqs[0]! <= 7, `step ${failAt}: nothing beyond keep was lost`);
                assert.deepEqual(await rotatedNumbers(), [1, 2]);
                await log.close();
                await rm(dir, { recursive: true });
            }
        });
    });

    describe('checkpoint of running sessions', () => {
        it('open() returns the last checkpoint, without sessions that were logged meanwhile', async () => {
            const log = await openLog({ maxBytes: THREE_PER_FILE, keep: 5 });
            await log.checkpoint([runningSession(1), runningSession(2)]);
            await log.checkpoint([runningSession(2), runningSession(3), runningSession(4)]);
            // a crash after 3 ended, before the checkpoint that drops it; then restarts that
            // died before their first checkpoint, while other sessions ended
            for (const n of [1, 2]) await log.append(sessionRecord(n * 10));
            await log.append(sessionRecord(3));
            for (const n of range(4, 9)) await log.append(sessionRecord(n * 10));
            await log.close();
            assert.deepEqual(await rotatedNumbers(), [1, 2, 3], '3 is two rotations deep');

            const reopened = makeLog();
            assert.deepEqual(await reopened.open(), {
                running: [runningSession(2), runningSession(4)],
                dropped: 0,
            });
            assert.deepEqual(
                (await readdir(dir)).filter((f) => f.includes('.tmp-')),
                [],
                'no temporary files',
            );
        });

        it('an unusable checkpoint is reported and counts as empty; temp files are removed', async () => {
            const cases = [
                '{"saved":1,"sessions":[{"id":"x"',
                '{"saved":1,"sessions":[{"id":"x"}]}',
                '[]',
            ];
            for (const content of cases) {
                await fsp.mkdir(dir, { recursive: true });
                await writeFile(`${file}.open.json`, content);
                await writeFile(`${dir}/site.sessions.jsonl.open.json.tmp-99-1`, '{"sav');
                const errors: SessionLogError[] = [];
                const log = makeLog({ onError: (err) => errors.push(err) });
                assert.deepEqual(await log.open(), { running: [], dropped: 0 }, content);
                assert.deepEqual(
                    errors.map((e) => e.code),
                    ['LOG_CHECKPOINT'],
                );
                assert.deepEqual((await readdir(dir)).sort(), [
                    'site.sessions.jsonl',
                    'site.sessions.jsonl.open.json',
                ]);
                await log.checkpoint([runningSession(1)]);
                await log.close();
                const again = makeLog();
                assert.deepEqual((await again.open()).running, [runningSession(1)]);
                await again.close();
                await rm(dir, { recursive: true });
            }
        });

        it('refuses running sessions that do not match the schema', async () => {
            const log = await openLog();
            const bad = { ...runningSession(1), updated: Number.NaN };
            await assert.rejects(log.checkpoint([bad]), { code: 'LOG_INVALID' });
        });
    });

    describe('CSV', () => {
        it('has a header, RFC 4180 quoting, CRLF rows, ISO times and kWh with 3 decimals', () => {
            const records = [
                sessionRecord(1, {
                    name: 'Garage, left',
                    user: 'Anna "Nan" Müller',
                    card: '=HYPERLINK("x")',
                    energy_wh: 12345.6,
                    ocpp_reason: 'EVDisconnected\r\nline two',
                    transaction_id: '42',
                }),
                sessionRecord(2, {
                    user_id: undefined,
                    user: undefined,
                    card: undefined,
                    meter_start_wh: undefined,
                    meter_stop_wh: undefined,
                    energy_wh: 0.4,
                    energy_source: 'power',
                }),
            ];
            const csv = toCsv(records);
            const rows = parseCsv(csv);
            assert.deepEqual(rows[0], [...CSV_HEADER]);
            assert.equal(rows.length, 3);
            const row = (i: number) =>
                Object.fromEntries(CSV_HEADER.map((h, j) => [h, rows[i]![j]])) as Record<
                    string,
                    string
                >;
            assert.ok(rows.every((r) => r.length === CSV_HEADER.length));
            const first = row(1);
            assert.equal(first.name, 'Garage, left');
            assert.equal(first.user, 'Anna "Nan" Müller');
            assert.equal(first.card, `'=HYPERLINK("x")`, 'not a formula in a spreadsheet');
            assert.equal(first.ocpp_reason, 'EVDisconnected\r\nline two');
            assert.equal(first.start, '2026-01-01T00:01:00.000Z');
            assert.equal(first.end, '2026-01-01T00:01:30.000Z');
            assert.equal(first.start_ms, String(T0 + 60_000));
            assert.equal(first.duration_s, '30');
            assert.equal(first.energy_kwh, '12.346');
            assert.equal(first.energy_wh, '12345.6');
            assert.equal(first.peak_ma, '16000');
            assert.equal(first.transaction_id, '42');
            const second = row(2);
            assert.equal(second.user, '');
            assert.equal(second.card, '');
            assert.equal(second.meter_start_wh, '');
            assert.equal(second.energy_kwh, '0.000');
            assert.equal(second.energy_source, 'power');
            assert.equal(toCsv([]), `${CSV_HEADER.join(',')}\r\n`);
            assert.ok(toCsv(records, { bom: true }).startsWith(`\ufeff${CSV_HEADER[0]},`));
        });
    });

    describe('kill -9', function () {
        this.timeout(120_000);
        const ROUNDS = process.env.EVCM_TEST_LONG ? 60 : 15;
        const MAX_BYTES = 2048;
        const KEEP = 6;
        after(killAllWriters);

        /** Runs the writer from `first` on and kills it; returns the acknowledged sequence numbers. */
        async function kill(first: number): Promise<number[]> {
            const args = [file, String(first), String(MAX_BYTES), String(KEEP)];
            const { acks, stderr } = await runAndKill(WRITER, args, {
                startupMs: 300,
                busyMs: 150,
            });
            assert.equal(stderr, '', 'the writer reported no problem');
            return acks;
        }

        it(`every acknowledged record is there exactly once after ${ROUNDS} kills`, async () => {
            const acked = new Set<number>();
            let next = 1;
            let tornLines = 0;
            let cutRotations = 0;
            for (let round = 0; round < ROUNDS; round++) {
                for (const seq of await kill(next)) acked.add(seq);
                const size = await stat(file).then(
                    (s) => s.size,
                    () => 0,
                );
                const numbers = await rotatedNumbers();
                if (
                    size > MAX_BYTES ||
                    numbers.some((n, i) => n !== i + 1) ||
                    numbers.length > KEEP
                )
                    cutRotations++;

                const errors: SessionLogError[] = [];
                const log = makeLog({
                    maxBytes: MAX_BYTES,
                    keep: KEEP,
                    onError: (e) => errors.push(e),
                });
                const { running, dropped } = await log.open();
                tornLines += dropped;
                assert.deepEqual(errors, [], `round ${round}: nothing reported`);
                const seqs = await seqsOnDisk(); // also: no torn line in any file
                const lowest = seqs[0] ?? 1;
                assert.deepEqual(
                    seqs,
                    range(lowest, lowest + seqs.length - 1),
                    `round ${round}: in order, once each`,
                );
                const highest = seqs.at(-1) ?? 0;
                for (const seq of acked) {
                    if (seq >= lowest) assert.ok(seq <= highest, `round ${round}: ack ${seq} lost`);
                }
                const files = await rotatedNumbers();
                assert.deepEqual(files, range(1, files.length));
                if (lowest > 1)
                    assert.equal(files.length, KEEP, 'only whole files beyond keep went');
                const { records, skipped } = await log.query();
                assert.equal(records.length, seqs.length);
                assert.equal(skipped, 0);
                for (const session of running) {
                    assert.ok(!seqs.includes(seqOf(session.id)), 'a running session is not logged');
                }
                await log.close();
                next = highest + 1;
            }
            assert.ok(acked.size > ROUNDS * 5, `the writer made progress (${acked.size} acks)`);
            console.log(
                `      ${ROUNDS} kills, ${acked.size} records acknowledged, ${cutRotations} kills cut a rotation short, ${tornLines} torn lines`,
            );
        });
    });
});
