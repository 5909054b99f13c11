// The durable session log: one JSON line per finished charging session in the user directory,
// appended and fsynced before the caller is told it is done, rotated by size, read back as
// records or CSV. Running sessions are checkpointed beside it, so a crash loses no finished
// session and of a running one only what happened since its last checkpoint.
//
// Files, for the log `x.jsonl`:
//   x.jsonl             the current file, appended to
//   x.1.jsonl, x.2 …    rotated files, x.1 the newest; files numbered above `keep` are deleted
//   x.jsonl.open.json   the last checkpoint of the running sessions (replaced atomically)
//
// Appends: each line goes out in one write to the file opened for appending and is fdatasync'ed
// before the promise resolves. A crash in the middle of a write leaves a torn last line (no
// newline): open() cuts the file back to its last newline. A write that fails (disk full) is cut
// back at once the same way, so a later line never glues onto a torn one, and a rejected append
// is not in the log (the caller may retry it without making a duplicate).
//
// Rotation, once an append has taken x.jsonl over maxBytes:
//   1. with m the first free number, x.(m-1) → x.m, x.(m-2) → x.(m-1), … x.1 → x.2
//      (highest first), the directory fsynced after each rename;
//   2. x.jsonl → x.1, directory fsynced; the next append creates x.jsonl afresh, and fsyncs the
//      directory before it writes to it;
//   3. rotated files numbered above `keep` are deleted (the oldest).
// Each step is a single rename or unlink, and a rename only ever goes to a free name, so no step
// overwrites a file: after a crash between any two steps every record is in exactly one file,
// and the numbers still order the files newest → oldest (with at most one gap, where step 1 was
// interrupted). The directory fsync after each rename keeps the renames in this order on disk
// across a power cut too: otherwise `x.jsonl → x.1` could be durable while `x.1 → x.2` is not,
// and the old x.1 would be gone. open() finishes an interrupted rotation: x.jsonl still over
// maxBytes is rotated again (step 1 starts from the first free number, so it closes the gap
// first), and files above `keep` are deleted.
//
// Appends, checkpoints, rotations and queries go through one queue: never two at a time, and a
// query never sees a half-written line or a rotation half done.

import * as fsPromises from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { z } from 'zod';
import { removeStaleTempFiles, syncDirectory, writeFileAtomic } from '../store/atomic-file';
import { matchesFilter } from './book';
import { SessionRecordSchema, type RunningSession, type SessionRecord } from './record';

export const DEFAULT_MAX_BYTES = 1024 * 1024;
export const DEFAULT_KEEP = 20;

export type SessionLogErrorCode =
    /** A record, checkpoint or query filter that does not match its schema; nothing was written. */
    | 'LOG_INVALID'
    /** Writing failed (disk full, permissions); a rejected append is not in the log. */
    | 'LOG_WRITE'
    /** Rotating failed; the records are safe, the next append tries again. */
    | 'LOG_ROTATE'
    /** The checkpoint file could not be read or is not valid; it counts as empty. */
    | 'LOG_CHECKPOINT'
    /** Used before open() or after close(). */
    | 'LOG_CLOSED';

export class SessionLogError extends Error {
    override readonly name = 'SessionLogError';

    constructor(
        readonly code: SessionLogErrorCode,
        message: string,
        options?: { cause?: unknown },
    ) {
        super(message, options);
    }
}

/** The file operations the log uses: node:fs/promises, or a wrapper (tests interrupt steps). */
export type SessionLogFileSystem = Pick<
    typeof fsPromises,
    'open' | 'rename' | 'unlink' | 'readdir' | 'readFile' | 'stat' | 'mkdir'
>;

export interface SessionLogOptions {
    /** Size after which the current file is rotated (bytes). */
    readonly maxBytes?: number;
    /** Rotated files kept besides the current one. */
    readonly keep?: number;
    /** Problems that do not fail a call: a rotation that failed, an unusable checkpoint. */
    readonly onError?: (err: SessionLogError) => void;
    readonly fileSystem?: SessionLogFileSystem;
}

const OptionsSchema = z.object({
    maxBytes: z.number().int().positive().optional(),
    keep: z.number().int().nonnegative().optional(),
});

export const RunningSessionSchema = SessionRecordSchema.omit({
    end: true,
    reason: true,
    ocpp_reason: true,
}).extend({ updated: z.number().int().nonnegative() });

const CheckpointSchema = z.object({
    /** When the checkpoint was written (ms). */
    saved: z.number(),
    sessions: z.array(RunningSessionSchema),
});

export const SessionQuerySchema = z.object({
    /** A session matches when it overlaps [from, to] (ms, both ends included). */
    from: z.number().optional(),
    to: z.number().optional(),
    /** Matches the user's id, the user's name or the card (exactly, case-sensitive). */
    user: z.string().optional(),
    dev_id: z.string().optional(),
    /** Only the newest n of the matching records. */
    limit: z.number().int().nonnegative().optional(),
});
export type SessionQuery = z.infer<typeof SessionQuerySchema>;

export interface SessionQueryResult {
    /** The matching records, oldest first (by end, then as logged). */
    readonly records: SessionRecord[];
    /** Lines that are not a valid record (unparsable or not matching the schema), skipped. */
    readonly skipped: number;
}

export interface SessionLogOpenResult {
    /**
     * The running sessions of the last checkpoint, without those already in the log as finished
     * (a crash between the append of a finished session and the next checkpoint).
     */
    readonly running: RunningSession[];
    /** Lines cut off the end of the current file: a torn line left by a crash (0 or 1). */
    readonly dropped: number;
}

function errnoCode(err: unknown): string | undefined {
    return (err as NodeJS.ErrnoException | undefined)?.code;
}

function escapeRegExp(text: string): string {
    return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
    for (let offset = 0; offset < data.length;) {
        const { bytesWritten } = await handle.write(data, offset, data.length - offset);
        offset += bytesWritten;
    }
}

/** Where the last complete line of a file ends (0 when there is none). */
async function endOfLastLine(handle: FileHandle, size: number): Promise<number> {
    const chunk = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0;) {
        const start = Math.max(0, end - chunk.length);
        const { bytesRead } = await handle.read(chunk, 0, end - start, start);
        const newline = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
        if (newline >= 0) return start + newline + 1;
        end = start;
    }
    return 0;
}

export class SessionLog {
    /** The checkpoint of the running sessions. */
    readonly openFile: string;
    private readonly dir: string;
    private readonly stem: string;
    private readonly ext: string;
    private readonly rotatedPattern: RegExp;
    private readonly maxBytes: number;
    private readonly keep: number;
    private readonly fs: SessionLogFileSystem;
    private readonly onError: ((err: SessionLogError) => void) | undefined;
    /** The current file while it is open for appending, and its length up to its last line. */
    private handle: FileHandle | undefined;
    private size = 0;
    private state: 'new' | 'open' | 'closed' = 'new';
    private queue: Promise<unknown> = Promise.resolve();

    constructor(
        readonly file: string,
        options: SessionLogOptions = {},
    ) {
        this.dir = dirname(file);
        this.ext = extname(file);
        this.stem = basename(file, this.ext);
        this.rotatedPattern = new RegExp(
            `^${escapeRegExp(this.stem)}\\.([1-9][0-9]*)${escapeRegExp(this.ext)}$`,
        );
        this.openFile = `${file}.open.json`;
        const sizes = OptionsSchema.parse({ maxBytes: options.maxBytes, keep: options.keep });
        this.maxBytes = sizes.maxBytes ?? DEFAULT_MAX_BYTES;
        this.keep = sizes.keep ?? DEFAULT_KEEP;
        this.fs = options.fileSystem ?? fsPromises;
        this.onError = options.onError;
    }

    /** The rotated file number `n` (1 = the newest). */
    rotatedFile(n: number): string {
        return join(this.dir, `${this.stem}.${n}${this.ext}`);
    }

    /**
     * Makes the log ready: creates the directory, cuts a torn last line off, removes temporary
     * files of interrupted checkpoints, finishes an interrupted rotation and reads the checkpoint.
     */
    open(): Promise<SessionLogOpenResult> {
        return this.enqueue(async () => {
            if (this.state !== 'new') {
                throw new SessionLogError(
                    'LOG_CLOSED',
                    `session log ${this.file} was opened already`,
                );
            }
            let dropped: number;
            try {
                await this.fs.mkdir(this.dir, { recursive: true });
                await removeStaleTempFiles(this.openFile);
                dropped = await this.openCurrent();
            } catch (err) {
                throw this.error('LOG_WRITE', err);
            }
            this.state = 'open';
            await this.rotateIfFull();
            await this.prune().catch((err: unknown) => this.report('LOG_ROTATE', err));
            let running = await this.readCheckpoint();
            if (running.length) {
                const ids = running.map((s) => s.id);
                const logged = await this.loggedAmong(ids).catch((err: unknown) => {
                    this.report('LOG_CHECKPOINT', err);
                    return new Set<string>();
                });
                running = running.filter((s) => !logged.has(s.id));
            }
            return { running, dropped };
        });
    }

    /** Appends a finished session; resolves once it is on disk (written and fsynced). */
    append(record: SessionRecord): Promise<void> {
        const parsed = SessionRecordSchema.safeParse(record);
        if (!parsed.success) {
            return Promise.reject(
                new SessionLogError(
                    'LOG_INVALID',
                    `invalid session record: ${z.prettifyError(parsed.error)}`,
                    { cause: parsed.error },
                ),
            );
        }
        const line = Buffer.from(`${JSON.stringify(parsed.data)}\n`, 'utf8');
        return this.enqueue(async () => {
            this.assertOpen();
            try {
                if (!this.handle) await this.openCurrent();
            } catch (err) {
                throw this.error('LOG_WRITE', err);
            }
            const handle = this.handle!;
            try {
                await writeAll(handle, line);
                await handle.datasync();
            } catch (err) {
                await this.cutBack(handle);
                throw this.error('LOG_WRITE', err);
            }
            this.size += line.length;
            // The record is safe now: a failed rotation is reported, and retried next time.
            await this.rotateIfFull();
        });
    }

    /**
     * Replaces the checkpoint with `running` (all running sessions). The caller calls it at
     * least every 60 s and whenever a session starts or ends.
     */
    checkpoint(running: readonly RunningSession[]): Promise<void> {
        const parsed = z.array(RunningSessionSchema).safeParse(running);
        if (!parsed.success) {
            return Promise.reject(
                new SessionLogError(
                    'LOG_INVALID',
                    `invalid running sessions: ${z.prettifyError(parsed.error)}`,
                    { cause: parsed.error },
                ),
            );
        }
        const data = JSON.stringify({ saved: Date.now(), sessions: parsed.data });
        return this.enqueue(async () => {
            this.assertOpen();
            try {
                await writeFileAtomic(this.openFile, data, this.fs);
            } catch (err) {
                throw this.error('LOG_WRITE', err);
            }
        });
    }

    /**
     * The logged sessions that match `filter`, from every rotated file (oldest first) and the
     * current one. A line that is not a valid record is skipped and counted, never fatal.
     */
    query(filter: SessionQuery = {}): Promise<SessionQueryResult> {
        const parsed = SessionQuerySchema.safeParse(filter);
        if (!parsed.success) {
            return Promise.reject(
                new SessionLogError(
                    'LOG_INVALID',
                    `invalid session query: ${z.prettifyError(parsed.error)}`,
                    { cause: parsed.error },
                ),
            );
        }
        const wanted = parsed.data;
        const { limit } = wanted;
        return this.enqueue(async () => {
            const numbers = await this.rotatedNumbers();
            const files = [...numbers.reverse().map((n) => this.rotatedFile(n)), this.file];
            const records: SessionRecord[] = [];
            let skipped = 0;
            for (const file of files) {
                const lines = await this.readLines(file);
                skipped += lines.torn;
                for (const line of lines.complete) {
                    const record = parseRecord(line);
                    if (!record) skipped++;
                    else if (matchesFilter(record, wanted)) records.push(record);
                }
            }
            // Records are logged as sessions end; a session finished late (at a restart after a
            // crash) still sorts by its end. Array.prototype.sort is stable.
            records.sort((a, b) => a.end - b.end);
            return {
                records: limit === undefined ? records : records.slice(records.length - limit),
                skipped,
            };
        });
    }

    /** Waits for what is queued, then closes the file. Later calls fail with LOG_CLOSED. */
    close(): Promise<void> {
        return this.enqueue(async () => {
            this.state = 'closed';
            await this.closeHandle();
        });
    }

    private enqueue<T>(job: () => Promise<T>): Promise<T> {
        const run = this.queue.then(job);
        this.queue = run.catch(() => undefined);
        return run;
    }

    private assertOpen(): void {
        if (this.state !== 'open') {
            throw new SessionLogError(
                'LOG_CLOSED',
                `session log ${this.file} is ${this.state === 'new' ? 'not open' : 'closed'}`,
            );
        }
    }

    private error(code: SessionLogErrorCode, err: unknown): SessionLogError {
        if (err instanceof SessionLogError) return err;
        const message = err instanceof Error ? err.message : String(err);
        return new SessionLogError(code, `session log ${this.file}: ${message}`, { cause: err });
    }

    private report(code: SessionLogErrorCode, err: unknown): void {
        this.onError?.(this.error(code, err));
    }

    /**
     * Opens the current file for appending (creating it, and making its name durable, if it is
     * not there) and cuts a torn last line off. Returns the number of lines cut off.
     */
    private async openCurrent(): Promise<number> {
        const existed = await this.fs.stat(this.file).then(
            () => true,
            (err: unknown) => {
                if (errnoCode(err) === 'ENOENT') return false;
                throw err;
            },
        );
        const handle = await this.fs.open(this.file, 'a+', 0o600);
        try {
            if (!existed) await syncDirectory(this.fs, this.dir);
            const { size } = await handle.stat();
            const end = await endOfLastLine(handle, size);
            if (end < size) {
                await handle.truncate(end);
                await handle.datasync();
            }
            this.handle = handle;
            this.size = end;
            return end < size ? 1 : 0;
        } catch (err) {
            await handle.close().catch(() => undefined);
            throw err;
        }
    }

    /** After a failed write: cuts the file back to its last complete line. */
    private async cutBack(handle: FileHandle): Promise<void> {
        try {
            await handle.truncate(this.size);
            await handle.datasync();
        } catch {
            // The next append opens the file again, and cuts a torn line off then.
            await this.closeHandle();
        }
    }

    private async closeHandle(): Promise<void> {
        const handle = this.handle;
        this.handle = undefined;
        await handle?.close().catch(() => undefined);
    }

    private async rotateIfFull(): Promise<void> {
        if (this.size <= this.maxBytes) return;
        try {
            await this.rotate();
        } catch (err) {
            this.report('LOG_ROTATE', err);
        }
    }

    /** Rotates the current file; see the file's head for the order of steps and why. */
    private async rotate(): Promise<void> {
        await this.closeHandle();
        const present = new Set(await this.rotatedNumbers());
        let free = 1;
        while (present.has(free)) free++;
        for (let n = free - 1; n >= 1; n--) {
            await this.fs.rename(this.rotatedFile(n), this.rotatedFile(n + 1));
            await syncDirectory(this.fs, this.dir);
        }
        await this.fs.rename(this.file, this.rotatedFile(1));
        await syncDirectory(this.fs, this.dir);
        this.size = 0;
        await this.prune();
    }

    /** Deletes the rotated files numbered above `keep`. */
    private async prune(): Promise<void> {
        const excess = (await this.rotatedNumbers()).filter((n) => n > this.keep);
        for (const n of excess.reverse()) {
            await this.fs.unlink(this.rotatedFile(n)).catch((err: unknown) => {
                if (errnoCode(err) !== 'ENOENT') throw err;
            });
        }
        if (excess.length) await syncDirectory(this.fs, this.dir);
    }

    /** Numbers of the rotated files there are, ascending (newest first). */
    private async rotatedNumbers(): Promise<number[]> {
        let names: string[];
        try {
            names = await this.fs.readdir(this.dir);
        } catch (err) {
            if (errnoCode(err) === 'ENOENT') return [];
            throw err;
        }
        const numbers: number[] = [];
        for (const name of names) {
            const match = this.rotatedPattern.exec(name);
            if (match) numbers.push(Number(match[1]));
        }
        return numbers.sort((a, b) => a - b);
    }

    /** The complete lines of a file (none if it is missing), and whether a torn one followed. */
    private async readLines(file: string): Promise<{ complete: string[]; torn: number }> {
        let text: string;
        try {
            text = await this.fs.readFile(file, 'utf8');
        } catch (err) {
            if (errnoCode(err) === 'ENOENT') return { complete: [], torn: 0 };
            throw err;
        }
        const complete = text.split('\n');
        const rest = complete.pop();
        return { complete, torn: rest ? 1 : 0 };
    }

    /**
     * Which of `ids` are in the log as finished sessions. Searches every file, newest first, until
     * all are found: a checkpoint is not rewritten until the manager runs again, so after restarts
     * that died early its sessions may be several rotations deep. A cheap text search picks the
     * lines to parse.
     */
    private async loggedAmong(ids: readonly string[]): Promise<Set<string>> {
        const found = new Set<string>();
        const numbers = await this.rotatedNumbers();
        for (const file of [this.file, ...numbers.map((n) => this.rotatedFile(n))]) {
            if (found.size === ids.length) break;
            for (const line of (await this.readLines(file)).complete) {
                for (const id of ids) {
                    if (found.has(id) || !line.includes(`"id":${JSON.stringify(id)}`)) continue;
                    if (parseRecord(line)?.id === id) found.add(id);
                }
            }
        }
        return found;
    }

    private async readCheckpoint(): Promise<RunningSession[]> {
        let text: string;
        try {
            text = await this.fs.readFile(this.openFile, 'utf8');
        } catch (err) {
            if (errnoCode(err) !== 'ENOENT') this.report('LOG_CHECKPOINT', err);
            return [];
        }
        let raw: unknown;
        try {
            raw = JSON.parse(text);
        } catch (err) {
            this.report('LOG_CHECKPOINT', err);
            return [];
        }
        const parsed = CheckpointSchema.safeParse(raw);
        if (!parsed.success) {
            this.report(
                'LOG_CHECKPOINT',
                new Error(`checkpoint ${this.openFile}: ${z.prettifyError(parsed.error)}`),
            );
            return [];
        }
        return parsed.data.sessions;
    }
}

function parseRecord(line: string): SessionRecord | undefined {
    let raw: unknown;
    try {
        raw = JSON.parse(line);
    } catch {
        return undefined;
    }
    const parsed = SessionRecordSchema.safeParse(raw);
    return parsed.success ? parsed.data : undefined;
}

/** The CSV columns: what a spreadsheet shows, times as ISO 8601 UTC and as ms. */
const CSV_COLUMNS: readonly [string, (r: SessionRecord) => string | number | undefined][] = [
    ['id', (r) => r.id],
    ['dev_id', (r) => r.dev_id],
    ['name', (r) => r.name],
    ['user_id', (r) => r.user_id],
    ['user', (r) => r.user],
    ['card', (r) => r.card],
    ['start', (r) => new Date(r.start).toISOString()],
    ['end', (r) => new Date(r.end).toISOString()],
    ['start_ms', (r) => r.start],
    ['end_ms', (r) => r.end],
    ['duration_s', (r) => Math.round((r.end - r.start) / 1000)],
    ['energy_kwh', (r) => (r.energy_wh / 1000).toFixed(3)],
    ['energy_wh', (r) => r.energy_wh],
    ['energy_source', (r) => r.energy_source],
    ['meter_start_wh', (r) => r.meter_start_wh],
    ['meter_stop_wh', (r) => r.meter_stop_wh],
    ['charging_s', (r) => r.charging_s],
    ['peak_ma', (r) => r.peak_ma],
    ['mean_ma', (r) => r.mean_ma],
    ['reason', (r) => r.reason],
    ['transaction_id', (r) => r.transaction_id],
    ['ocpp_reason', (r) => r.ocpp_reason],
];

/** The CSV header row's fields. */
export const CSV_HEADER: readonly string[] = CSV_COLUMNS.map(([name]) => name);

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. Text that a
 * spreadsheet would take for a formula (a name or card starting with = + - @) gets a leading
 * apostrophe, so that a card id cannot run as a formula when the file is opened.
 */
function csvField(value: string | number | undefined): string {
    if (value === undefined) return '';
    let text = String(value);
    if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * The records as CSV (RFC 4180): a header row, comma-separated, CRLF line ends, numbers with a
 * decimal point. `bom` puts a UTF-8 byte order mark first, which Excel needs to read non-ASCII
 * names correctly.
 */
export function toCsv(records: readonly SessionRecord[], options: { bom?: boolean } = {}): string {
    const rows = [CSV_HEADER.join(',')];
    for (const record of records) {
        rows.push(CSV_COLUMNS.map(([, get]) => csvField(get(record))).join(','));
    }
    return `${options.bom ? '\ufeff' : ''}${rows.join('\r\n')}\r\n`;
}
