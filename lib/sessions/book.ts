// The session book of one manager: the tracker's sessions, written to the durable log as each
// one ends, the running ones checkpointed every 30 s (a crash loses at most that much of a
// running session), restored into the tracker before the first cycle after a restart, and read
// back for /cnf and the flows. All writing happens here, off the control cycle: the cycle only
// counts.
import { join } from 'node:path';
import { Events } from '../core/events';
import type { RunningSession, SessionRecord } from './record';
import type { SessionTracker } from './tracker';

/** Which records a reader wants; all fields optional. */
export interface SessionFilter {
    /** Sessions that overlap [from, to] (ms). */
    from?: number | undefined;
    to?: number | undefined;
    /** A user id, a user name or a card. */
    user?: string | undefined;
    dev_id?: string | undefined;
    /** The newest n. */
    limit?: number | undefined;
}

/** Where records and checkpoints are kept: the append-only SessionLog in the user directory. */
export interface SessionStorage {
    /** The running sessions of the last checkpoint (without those logged as finished). */
    open(): Promise<{ running: RunningSession[]; dropped: number }>;
    append(record: SessionRecord): Promise<void>;
    checkpoint(running: readonly RunningSession[]): Promise<void>;
    query(filter: SessionFilter): Promise<{ records: SessionRecord[]; skipped: number }>;
    close(): Promise<void>;
}

export interface SessionBookEvents {
    /** A session ended and its record was written (or writing it failed: `error`). */
    recorded: { record: SessionRecord; error?: Error };
}

export interface SessionBookOptions {
    /** How often running sessions are checkpointed (ms, default 30 s). */
    checkpointMs?: number;
    /** Records kept in memory when there is no storage (default 1000). */
    memoryKeep?: number;
    onError?: (err: Error) => void;
}

/** `<userDir>/evcm-charging-manager/<node id>.sessions.jsonl`. */
export function sessionFileFor(userDir: string, managerId: string): string {
    return join(
        userDir,
        'evcm-charging-manager',
        `${managerId.replace(/[^A-Za-z0-9_.-]/g, '_')}.sessions.jsonl`,
    );
}

export class SessionBook {
    readonly events: Events<SessionBookEvents>;
    /** Without storage: the newest records, in memory. */
    private readonly memory: SessionRecord[] = [];
    private writes: Promise<unknown> = Promise.resolve();
    private timer: ReturnType<typeof setInterval> | undefined;
    private checkpointedRevision = -1;
    private readonly off: () => void;
    private closed = false;
    private opened = false;

    constructor(
        readonly tracker: SessionTracker,
        private readonly storage: SessionStorage | null,
        private readonly opts: SessionBookOptions = {},
    ) {
        this.events = new Events<SessionBookEvents>((event, error) =>
            opts.onError?.(new Error(`a subscriber of ${event} failed: ${error.message}`)),
        );
        const offEnded = tracker.events.on('ended', (record) => this.record(record));
        // A new session is in the checkpoint at once: a crash right after the plug-in keeps it.
        const offStarted = tracker.events.on('started', () => void this.checkpoint());
        this.off = () => {
            offEnded();
            offStarted();
        };
    }

    /**
     * Reads the log's checkpoint back into the tracker (before the first cycle) and starts the
     * checkpoints. Never rejects: a log that cannot be opened is reported, records then stay
     * in memory.
     */
    async open(): Promise<{ restored: number; dropped: number }> {
        let restored = 0;
        let dropped = 0;
        if (this.storage) {
            try {
                const found = await this.storage.open();
                this.tracker.restore(found.running);
                restored = found.running.length;
                dropped = found.dropped;
            } catch (err) {
                this.fail(err);
            }
        }
        this.opened = true;
        if (!this.closed) {
            const ms = this.opts.checkpointMs ?? 30_000;
            this.timer = setInterval(() => void this.checkpoint(), ms);
            this.timer.unref?.();
        }
        return { restored, dropped };
    }

    /** Writes the running sessions now, if anything runs or changed since the last time. */
    checkpoint(): Promise<void> {
        const storage = this.storage;
        // Before open() the file still holds the last run's sessions, not yet restored.
        if (!storage || !this.opened) return Promise.resolve();
        const running = this.tracker.runningAll();
        const revision = this.tracker.revision;
        if (!running.length && revision === this.checkpointedRevision) return Promise.resolve();
        this.checkpointedRevision = revision;
        return this.queue(() => storage.checkpoint(running)).then(() => undefined);
    }

    /** Recorded sessions matching the filter, oldest first. */
    async query(filter: SessionFilter = {}): Promise<SessionRecord[]> {
        await this.writes;
        if (this.storage) return (await this.storage.query(filter)).records;
        return applyFilter(this.memory, filter);
    }

    /** Stops checkpointing after a last checkpoint; waits for the writes under way. */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        if (this.timer) clearInterval(this.timer);
        this.off();
        await this.checkpoint();
        await this.writes;
        await this.storage?.close().catch((err: unknown) => this.fail(err));
    }

    private record(record: SessionRecord): void {
        const storage = this.storage;
        if (!storage) {
            this.memory.push(record);
            const keep = this.opts.memoryKeep ?? 1000;
            if (this.memory.length > keep) this.memory.splice(0, this.memory.length - keep);
            this.events.emit('recorded', { record });
            return;
        }
        // The record first, then a checkpoint without it: a crash between the two finds the
        // session both finished and running, and the restore ends it as recorded already.
        void this.queue(() => storage.append(record)).then((error) => {
            this.events.emit('recorded', error ? { record, error } : { record });
        });
        void this.checkpoint();
    }

    /** One write at a time, in order; resolves to the error of a failed one. */
    private queue(write: () => Promise<void>): Promise<Error | undefined> {
        const next = this.writes.then(write).then(
            () => undefined,
            (err: unknown) => this.fail(err),
        );
        this.writes = next;
        return next;
    }

    private fail(err: unknown): Error {
        const error = err instanceof Error ? err : new Error(String(err));
        this.opts.onError?.(error);
        return error;
    }
}

/** What a filter looks at; a running session has no end yet (it matches any `from`). */
type Filterable = Pick<SessionRecord, 'start' | 'dev_id' | 'user_id' | 'user' | 'card'> & {
    end?: number;
};

/** Whether a record (or a running session) matches a filter's time window, user and wallbox. */
export function matchesFilter(r: Filterable, f: SessionFilter): boolean {
    return (
        (f.from === undefined || r.end === undefined || r.end >= f.from) &&
        (f.to === undefined || r.start <= f.to) &&
        (f.dev_id === undefined || r.dev_id === f.dev_id) &&
        (f.user === undefined || r.user_id === f.user || r.user === f.user || r.card === f.user)
    );
}

/** The filter applied to records in memory (the log applies the same rules to its files). */
export function applyFilter<T extends Filterable>(records: readonly T[], f: SessionFilter): T[] {
    const out = records.filter((r) => matchesFilter(r, f));
    return f.limit !== undefined ? out.slice(-f.limit) : out;
}
