// The persistent store of one manager (DESIGN §6): a JSON document in one file, loaded once,
// changed in memory, written back atomically and durably.
//
// - Loading migrates older versions and validates the whole document. A file that cannot be
//   read, parsed, migrated or validated is renamed aside (`<file>.corrupt-<time>`), reported in
//   `loadReport`, and the manager starts from an empty document: nothing is lost silently.
// - commit() resolves once every change made before the call is on disk (file and directory
//   fsynced). Commits group: while a write is in flight, the changes made meanwhile collect and
//   go out together in the next write, so many callers share one fsync.
// - Changes nobody commits (periodic counter saves) are written after a debounce time.
// - Writes are serialised: one at a time, never two renames racing.
// - Energy counters never go down: neither a change nor a save lowers a counter below the value
//   held in memory or on disk.

import { readFile, rename, stat } from 'node:fs/promises';
import { z } from 'zod';
import { removeStaleTempFiles, writeFileAtomic, type AtomicFileSystem } from './atomic-file';
import { StoreError } from './errors';
import { migrateDocument, MIGRATIONS, type Migration } from './migrations';
import {
    COUNTER_NAMES,
    CountersSchema,
    emptyDocument,
    StoreDocumentSchema,
    STORE_VERSION,
    type DeviceCounters,
    type StoreDocument,
} from './schema';

export interface StoreOptions {
    /** Time from the first change of a burst to the write (ms). */
    readonly debounceMs?: number;
    /** Clock, for the name of a file moved aside. */
    readonly now?: () => number;
    /** Migration steps (tests use their own). */
    readonly migrations?: Readonly<Record<number, Migration>>;
    /** File operations for writes (tests record them); node:fs/promises by default. */
    readonly fileSystem?: AtomicFileSystem;
}

export const DEFAULT_DEBOUNCE_MS = 500;

export interface LoadReport {
    /**
     * new: no file yet; loaded: read as is; migrated: read from an older version;
     * recovered: the file was unusable, moved aside, and the document starts empty.
     */
    readonly status: 'new' | 'loaded' | 'migrated' | 'recovered';
    /** Version of the file read (loaded / migrated). */
    readonly fromVersion?: number;
    /** Why the file was unusable (recovered). */
    readonly error?: StoreError;
    /** Where the unusable file now is (recovered), unless it could not be moved. */
    readonly movedTo?: string;
}

type Counters = StoreDocument['counters'];

/** Raises every counter of `next` to at least its value in `floor` (devices absent from `next` stay absent). */
function keepCountersMonotonic(next: Counters, floor: Counters): void {
    for (const [devId, counters] of Object.entries(next)) {
        const lower = floor[devId];
        if (!lower) continue;
        for (const name of COUNTER_NAMES) {
            const low = lower[name];
            if (low !== undefined && (counters[name] === undefined || counters[name] < low)) {
                counters[name] = low;
            }
        }
    }
}

function corruptName(file: string, now: number): string {
    return `${file}.corrupt-${new Date(now).toISOString().replace(/[:.]/g, '-')}`;
}

async function exists(path: string): Promise<boolean> {
    return stat(path).then(
        () => true,
        () => false,
    );
}

/** Moves an unusable file out of the way; returns the new path, or undefined if that failed. */
async function moveAside(file: string, now: number): Promise<string | undefined> {
    const base = corruptName(file, now);
    let target = base;
    for (let n = 1; await exists(target); n++) target = `${base}-${n}`;
    try {
        await rename(file, target);
        return target;
    } catch {
        return undefined;
    }
}

async function load(
    file: string,
    migrations: Readonly<Record<number, Migration>>,
): Promise<{ doc: StoreDocument; fromVersion: number } | undefined> {
    let text: string;
    try {
        text = await readFile(file, 'utf8');
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new StoreError(
            'STORE_CORRUPT',
            `store ${file} cannot be read: ${(err as Error).message}`,
            {
                cause: err,
            },
        );
    }
    let raw: unknown;
    try {
        raw = JSON.parse(text);
    } catch (err) {
        throw new StoreError(
            'STORE_CORRUPT',
            `store ${file} is not valid JSON: ${(err as Error).message}`,
            {
                cause: err,
            },
        );
    }
    const { doc, fromVersion } = migrateDocument(raw, migrations, STORE_VERSION);
    const parsed = StoreDocumentSchema.safeParse(doc);
    if (!parsed.success) {
        throw new StoreError(
            'STORE_CORRUPT',
            `store ${file} does not match its schema: ${z.prettifyError(parsed.error)}`,
            { cause: parsed.error },
        );
    }
    return { doc: parsed.data, fromVersion };
}

/** A caller of commit() waiting for the write that holds its changes. */
interface CommitWaiter {
    readonly generation: number;
    resolve(): void;
    reject(err: StoreError): void;
}

export class ManagerStore {
    private doc: StoreDocument;
    /** Counters as last read from or written to the file. */
    private countersOnDisk: Counters;
    /** Devices whose counters were set explicitly since the write in flight took its copy. */
    private countersSetSinceWrite = new Set<string>();
    /** Bumped by every change; a write records the generation it holds. */
    private generation = 0;
    /** The newest generation that is on disk. */
    private writtenGeneration = 0;
    private closed = false;
    private closing: Promise<void> | undefined;
    private timer: ReturnType<typeof setTimeout> | undefined;
    private waiters: CommitWaiter[] = [];
    /** The write loop while it runs (one at a time). */
    private writing: Promise<void> | undefined;
    private beforeWrite: (() => void) | undefined;
    private readonly errorListeners = new Set<(err: StoreError) => void>();
    private readonly debounceMs: number;
    private readonly fileSystem: AtomicFileSystem | undefined;

    private constructor(
        readonly file: string,
        doc: StoreDocument,
        readonly loadReport: LoadReport,
        options: StoreOptions,
    ) {
        this.doc = doc;
        this.countersOnDisk = structuredClone(doc.counters);
        this.debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
        this.fileSystem = options.fileSystem;
    }

    /** Loads (or starts) the store in `file`. Never fails because of the file's content. */
    static async open(file: string, options: StoreOptions = {}): Promise<ManagerStore> {
        const now = options.now ?? Date.now;
        await removeStaleTempFiles(file);
        try {
            const loaded = await load(file, options.migrations ?? MIGRATIONS);
            if (!loaded) return new ManagerStore(file, emptyDocument(), { status: 'new' }, options);
            const status = loaded.fromVersion === STORE_VERSION ? 'loaded' : 'migrated';
            return new ManagerStore(
                file,
                loaded.doc,
                { status, fromVersion: loaded.fromVersion },
                options,
            );
        } catch (err) {
            const error =
                err instanceof StoreError
                    ? err
                    : new StoreError('STORE_CORRUPT', `store ${file} cannot be loaded`, {
                          cause: err,
                      });
            const movedTo = await moveAside(file, now());
            const report: LoadReport = movedTo
                ? { status: 'recovered', error, movedTo }
                : { status: 'recovered', error };
            return new ManagerStore(file, emptyDocument(), report, options);
        }
    }

    /** A copy of the current document. */
    get document(): StoreDocument {
        return structuredClone(this.doc);
    }

    /** Counts the changes made to the document (update and setCounters). */
    get revision(): number {
        return this.generation;
    }

    /** True while a change has not reached the disk. */
    get pending(): boolean {
        return this.generation > this.writtenGeneration;
    }

    /**
     * Changes the document, all or nothing: `change` edits a copy, which must pass the schema
     * (STORE_INVALID otherwise, and nothing changes). The write follows with the next commit, at
     * the latest after the debounce time.
     */
    update(change: (doc: StoreDocument) => void): void {
        if (this.closed) throw new StoreError('STORE_CLOSED', `store ${this.file} is closed`);
        const draft = structuredClone(this.doc);
        change(draft);
        const parsed = StoreDocumentSchema.safeParse(draft);
        if (!parsed.success) {
            throw new StoreError(
                'STORE_INVALID',
                `invalid store change: ${z.prettifyError(parsed.error)}`,
                {
                    cause: parsed.error,
                },
            );
        }
        keepCountersMonotonic(parsed.data.counters, this.doc.counters);
        this.doc = parsed.data;
        this.generation++;
        this.timer ??= setTimeout(() => {
            this.timer = undefined;
            // a failed write is reported to the error listeners by the write loop
            this.commit().catch(() => undefined);
        }, this.debounceMs);
    }

    /**
     * Sets one device's counters to exactly `counters`, lower values included: for an explicit
     * reset (soft_meter with a value), which the monotonic rule of update() would refuse.
     */
    setCounters(devId: string, counters: DeviceCounters): void {
        this.update((doc) => {
            doc.counters[devId] = { ...counters };
        });
        // update() kept the old values as a floor: put the requested ones in, and drop the
        // on-disk floor of this device so that the next write does not raise them again.
        const parsed = CountersSchema.parse(counters);
        this.doc.counters[devId] = parsed;
        delete this.countersOnDisk[devId];
        this.countersSetSinceWrite.add(devId);
    }

    /**
     * Resolves once every change made before the call is on disk: written to a temporary file,
     * fsynced, renamed over the store and the directory fsynced. Rejects with STORE_WRITE when
     * the write that holds the changes fails; the changes stay pending and go out with the next
     * write. Calls made while a write is in flight share the next write.
     */
    commit(): Promise<void> {
        if (!this.pending) return Promise.resolve();
        return new Promise<void>((resolve, reject) => {
            this.waiters.push({ generation: this.generation, resolve, reject });
            this.writing ??= this.drain();
        });
    }

    /** commit() at once, without waiting for the debounce time of changes made before. */
    flush(): Promise<void> {
        return this.commit();
    }

    /**
     * Called just before each write takes its copy of the document: the place to add state that
     * changes all the time and is saved only when a write goes out anyway (energy counters).
     * Not called for a write after close().
     */
    setBeforeWrite(hook: (() => void) | undefined): void {
        this.beforeWrite = hook;
    }

    /** Writes what is pending and refuses further changes. */
    close(): Promise<void> {
        this.closed = true;
        this.closing ??= this.flush();
        return this.closing;
    }

    /** Failed background writes (the change stays pending and is retried on the next write). */
    onError(listener: (err: StoreError) => void): () => void {
        this.errorListeners.add(listener);
        return () => this.errorListeners.delete(listener);
    }

    private report(err: unknown): void {
        const error =
            err instanceof StoreError
                ? err
                : new StoreError('STORE_WRITE', String(err), { cause: err });
        for (const listener of this.errorListeners) listener(error);
    }

    /**
     * Writes until nobody waits: each write holds every change made before it started, and
     * settles the commits those changes belong to. Each failed write is reported once.
     */
    private async drain(): Promise<void> {
        while (this.waiters.length) {
            const { generation, error } = await this.writeOnce();
            const settled = this.waiters.filter((w) => w.generation <= generation);
            this.waiters = this.waiters.filter((w) => w.generation > generation);
            for (const waiter of settled) {
                if (error) waiter.reject(error);
                else waiter.resolve();
            }
        }
        this.writing = undefined;
    }

    /** One write of the whole document; returns the generation it held and how it ended. */
    private async writeOnce(): Promise<{ generation: number; error?: StoreError }> {
        if (!this.closed && this.beforeWrite) {
            try {
                this.beforeWrite();
            } catch (err) {
                this.report(err);
            }
        }
        // This write takes every change made so far: a debounced write for them is not needed.
        if (this.timer) {
            clearTimeout(this.timer);
            this.timer = undefined;
        }
        keepCountersMonotonic(this.doc.counters, this.countersOnDisk);
        const doc = this.doc;
        const generation = this.generation;
        this.countersSetSinceWrite.clear();
        try {
            await writeFileAtomic(this.file, JSON.stringify(doc, null, 2) + '\n', this.fileSystem);
        } catch (err) {
            const error = new StoreError(
                'STORE_WRITE',
                `store ${this.file} could not be written: ${(err as Error).message}`,
                { cause: err },
            );
            this.report(error);
            return { generation, error };
        }
        this.writtenGeneration = Math.max(this.writtenGeneration, generation);
        // Later changes replace this.doc by a new object, so `doc` is exactly what was written;
        // a counter set explicitly meanwhile must not get the written value as its floor.
        this.countersOnDisk = structuredClone(doc.counters);
        for (const devId of this.countersSetSinceWrite) delete this.countersOnDisk[devId];
        return { generation };
    }
}
