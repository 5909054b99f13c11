import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
    removeStaleTempFiles,
    writeFileAtomic,
    type AtomicFileSystem,
} from '../../../lib/store/atomic-file';
import { StoreError } from '../../../lib/store/errors';
import { migrateDocument, type Migration } from '../../../lib/store/migrations';
import { emptyDocument, STORE_VERSION, type StoreDocument } from '../../../lib/store/schema';
import { ManagerStore } from '../../../lib/store/store';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('manager store', () => {
    let dir: string;
    let file: string;
    const open: ManagerStore[] = [];

    async function openStore(
        options: Parameters<typeof ManagerStore.open>[1] = {},
    ): Promise<ManagerStore> {
        const store = await ManagerStore.open(file, { debounceMs: 20, ...options });
        open.push(store);
        return store;
    }

    async function onDisk(): Promise<StoreDocument> {
        return JSON.parse(await readFile(file, 'utf8')) as StoreDocument;
    }

    beforeEach(async () => {
        dir = await mkdtemp(join(tmpdir(), 'evcm-store-'));
        file = join(dir, 'evcm-manager-1.json');
    });

    afterEach(async () => {
        await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
        await rm(dir, { recursive: true, force: true });
    });

    function fill(doc: StoreDocument): void {
        doc.params.max_total_current = 'min(32000, 40000 - M3.current)';
        doc.params.reserve_current = 2000;
        doc.params.lb_enabled = true;
        doc.devices.E1 = { added: false, config: { max_charging_cur: 16000, prio: 2 } };
        doc.devices.E4 = {
            added: true,
            config: {
                dev_type: 'evse_powerbrain',
                name: 'Garage',
                address: '10.0.0.9:4701',
                id: 1,
            },
        };
        doc.deleted.push('M2');
        doc.users.push({
            id: '2167520770',
            name: 'Anna',
            display: true,
            dev_ids: ['E1'],
            rfids: [{ id: '04A1B2C3', name: 'blue card', ac_auth: true }],
            budget_kwh: 30,
        });
        doc.rfids.push({ id: '1234', name: 'PIN', ac_auth: true, used_phases: 0 });
        doc.variables.push({ name: 'AVAIL', expr: 100 }, { name: 'lim', expr: 'CM.AVAIL * 320' });
        doc.adminPasswordHash = 'scrypt$16384$8$1$c2FsdA$aGFzaA';
        doc.counters.E1 = { soft_meter: 12345.5, total_energy: 987654 };
        doc.editorBaseline['param:max_total_current'] = 'abc';
    }

    describe('round trip', () => {
        it('starts empty without a file and reads back everything it wrote', async () => {
            const store = await openStore();
            assert.deepEqual(store.loadReport, { status: 'new' });
            assert.deepEqual(store.document, emptyDocument());
            store.update(fill);
            assert.equal(store.pending, true);
            await store.close();
            assert.equal(store.pending, false);

            const again = await openStore();
            assert.deepEqual(again.loadReport, { status: 'loaded', fromVersion: STORE_VERSION });
            const expected = emptyDocument();
            fill(expected);
            assert.deepEqual(again.document, expected);
            assert.equal((await onDisk()).version, 1);
        });
        it('keeps unknown user fields for the layers that refine them later', async () => {
            const store = await openStore();
            store.update(fill);
            await store.flush();
            const reread = await openStore();
            assert.equal(reread.document.users[0]!.budget_kwh, 30);
        });
        it('never persists max_total_cur_prc', async () => {
            const store = await openStore();
            store.update((doc) => {
                doc.params.max_total_cur_prc = 50;
                doc.params.reserve_current = 1000;
            });
            await store.flush();
            assert.deepEqual(store.document.params, { reserve_current: 1000 });
            assert.deepEqual((await onDisk()).params, { reserve_current: 1000 });
        });
        it('refuses an invalid change as a whole', async () => {
            const store = await openStore();
            store.update((doc) => (doc.params.title = 'kept'));
            assert.throws(
                () =>
                    store.update((doc) => {
                        doc.params.title = 'lost';
                        doc.adminPasswordHash = 'plain text';
                    }),
                (err: unknown) => err instanceof StoreError && err.code === 'STORE_INVALID',
            );
            assert.equal(store.document.params.title, 'kept');
        });
        it('hands out copies, so the caller cannot change the document behind its back', async () => {
            const store = await openStore();
            const doc = store.document;
            doc.params.title = 'sneaky';
            assert.deepEqual(store.document.params, {});
        });
        it('refuses changes after close', async () => {
            const store = await openStore();
            await store.close();
            assert.throws(() => store.update(() => undefined), { code: 'STORE_CLOSED' });
        });
    });

    describe('writing', () => {
        it('coalesces a burst of changes into one write after the debounce time', async () => {
            const store = await openStore({ debounceMs: 60 });
            for (let i = 0; i < 100; i++) store.update((doc) => (doc.params.reserve_current = i));
            await sleep(20);
            await assert.rejects(stat(file), { code: 'ENOENT' });
            await sleep(120);
            assert.equal((await onDisk()).params.reserve_current, 99);
            assert.equal(store.pending, false);
        });
        it('flush writes at once and resolves when the data is on disk', async () => {
            const store = await openStore({ debounceMs: 60_000 });
            store.update((doc) => (doc.params.title = 'now'));
            await store.flush();
            assert.equal((await onDisk()).params.title, 'now');
            await store.flush(); // nothing pending: no write, no error
        });
        it('serialises writes: the last change wins however flushes overlap', async () => {
            const store = await openStore({ debounceMs: 0 });
            const flushes: Promise<void>[] = [];
            for (let i = 1; i <= 40; i++) {
                store.update((doc) => {
                    doc.params.reserve_current = i;
                    doc.params.desc = 'x'.repeat((i * 97) % 3000);
                });
                flushes.push(store.flush());
                if (i % 7 === 0) await sleep(1);
            }
            await Promise.all(flushes);
            assert.equal((await onDisk()).params.reserve_current, 40);
            assert.deepEqual(
                (await readdir(dir)).filter((f) => f.includes('.tmp-')),
                [],
                'no temporary files left',
            );
        });
        it('reports a failed background write and keeps the change pending', async () => {
            const store = await openStore({ debounceMs: 5 });
            const errors: StoreError[] = [];
            store.onError((err) => errors.push(err));
            await rm(dir, { recursive: true });
            store.update((doc) => (doc.params.title = 'waiting'));
            await sleep(60);
            assert.equal(errors.length, 1);
            assert.equal(errors[0]!.code, 'STORE_WRITE');
            assert.match(errors[0]!.message, /could not be written/);
            assert.equal(store.pending, true);
            await assert.rejects(store.flush(), { code: 'STORE_WRITE' });
            await mkdir(dir);
            await store.flush();
            assert.equal((await onDisk()).params.title, 'waiting');
        });
    });

    describe('group commit', () => {
        /**
         * The real file system, with every step of every write recorded in order: the content a
         * temporary file got, its fsync, the rename and the directory's fsync.
         */
        function recordingFs(log: string[], writes: string[]): AtomicFileSystem {
            return {
                async open(path, flags, mode) {
                    const handle = await fsp.open(path, flags, mode);
                    const isDir = flags === 'r';
                    let write = -1;
                    return {
                        async writeFile(data: string, encoding: BufferEncoding) {
                            write = writes.push(data) - 1;
                            await handle.writeFile(data, encoding);
                        },
                        async sync() {
                            await handle.sync();
                            log.push(isDir ? 'dir-sync' : `file-sync ${write}`);
                        },
                        close: () => handle.close(),
                    } as unknown as fsp.FileHandle;
                },
                async rename(from, to) {
                    await fsp.rename(from, to);
                    log.push('rename');
                },
                unlink: (path) => fsp.unlink(path),
            };
        }

        it('concurrent commits share writes, and each resolves only after its write and the directory are fsynced', async () => {
            const log: string[] = [];
            const writes: string[] = [];
            const store = await openStore({
                debounceMs: 60_000,
                fileSystem: recordingFs(log, writes),
            });
            const BURSTS = 6;
            const PER_BURST = 10;
            const commits: Promise<void>[] = [];
            for (let burst = 0; burst < BURSTS; burst++) {
                for (let j = 0; j < PER_BURST; j++) {
                    const name = `v${burst * PER_BURST + j}`;
                    store.update((doc) => void doc.variables.push({ name, expr: 1 }));
                    commits.push(store.commit().then(() => void log.push(`resolved ${name}`)));
                }
                await sleep(1);
            }
            await Promise.all(commits);

            const changes = BURSTS * PER_BURST;
            assert.ok(
                writes.length < changes / 2,
                `${writes.length} writes for ${changes} changes`,
            );
            assert.ok(writes.length >= 2, 'changes made during a write wait for the next one');
            for (let i = 0; i < changes; i++) {
                const name = `v${i}`;
                const resolvedAt = log.indexOf(`resolved ${name}`);
                assert.ok(resolvedAt >= 0, `${name} resolved`);
                // the first write that holds the change, and its steps before the answer
                const write = writes.findIndex((w) => w.includes(`"${name}"`));
                assert.ok(write >= 0, `${name} was written`);
                const synced = log.indexOf(`file-sync ${write}`);
                assert.ok(synced >= 0 && synced < resolvedAt, `${name}: file fsynced first`);
                const renamed = log.indexOf('rename', synced);
                const dirSynced = log.indexOf('dir-sync', renamed);
                assert.ok(
                    renamed > synced && dirSynced > renamed && dirSynced < resolvedAt,
                    `${name}: renamed and directory fsynced before the answer: ${log.join(', ')}`,
                );
            }
            assert.equal((await onDisk()).variables.length, changes);
            assert.equal(store.pending, false);
        });

        it('a failed write rejects the commits it held; changes made meanwhile get the next write, which saves both', async () => {
            const log: string[] = [];
            const writes: string[] = [];
            const real = recordingFs(log, writes);
            let failRename = true;
            const store = await openStore({
                debounceMs: 60_000,
                fileSystem: {
                    ...real,
                    async rename(from, to) {
                        if (failRename) {
                            failRename = false;
                            throw Object.assign(new Error('no space left on device'), {
                                code: 'ENOSPC',
                            });
                        }
                        await real.rename(from, to);
                    },
                },
            });
            const errors: StoreError[] = [];
            store.onError((err) => errors.push(err));
            store.update((doc) => (doc.params.title = 'first'));
            const first = store.commit();
            store.update((doc) => (doc.params.reserve_current = 2000)); // while the first is in flight
            const second = store.commit();
            await assert.rejects(first, (err: StoreError) => {
                assert.equal(err.code, 'STORE_WRITE');
                assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOSPC');
                return true;
            });
            await second;
            assert.equal(errors.length, 1, 'the failed write is reported once');
            assert.equal(writes.length, 2);
            const saved = await onDisk();
            assert.equal(saved.params.title, 'first', 'retried with the next write');
            assert.equal(saved.params.reserve_current, 2000);
            assert.deepEqual(
                (await readdir(dir)).filter((f) => f.includes('.tmp-')),
                [],
                'the failed write left no temporary file',
            );
        });

        it('commit resolves at once when nothing is pending', async () => {
            const log: string[] = [];
            const store = await openStore({ fileSystem: recordingFs(log, []) });
            await store.commit();
            assert.deepEqual(log, []);
        });
    });

    describe('atomic file replacement', () => {
        it('a reader sees the old or the new file, never a torn one', async () => {
            const versions = Array.from({ length: 30 }, (_, i) =>
                JSON.stringify({ i, pad: 'y'.repeat(20_000 + i * 1000) }),
            );
            await writeFile(file, versions[0]!);
            let reading = true;
            let reads = 0;
            const reader = (async () => {
                while (reading) {
                    const text = await readFile(file, 'utf8');
                    const parsed = JSON.parse(text) as { i: number };
                    assert.equal(text, versions[parsed.i]);
                    reads++;
                }
            })();
            for (const text of versions) await writeFileAtomic(file, text);
            reading = false;
            await reader;
            assert.ok(reads > 0);
            assert.equal(await readFile(file, 'utf8'), versions.at(-1));
        });
        it('creates the file readable by its owner only', async () => {
            await writeFileAtomic(file, '{}');
            assert.equal((await stat(file)).mode & 0o777, 0o600);
        });
        it('leaves the old file and no temporary file when the write fails', async () => {
            await writeFile(file, 'old');
            const target = join(dir, 'sub');
            await mkdir(target);
            await assert.rejects(writeFileAtomic(target, 'new'));
            assert.equal(await readFile(file, 'utf8'), 'old');
            assert.deepEqual((await readdir(dir)).sort(), ['evcm-manager-1.json', 'sub']);
        });
        it('removes temporary files of interrupted writes when opening', async () => {
            await writeFile(`${file}.tmp-999-1`, '{"half":');
            await writeFile(join(dir, 'other.json.tmp-1-1'), 'not ours');
            await removeStaleTempFiles(file);
            assert.deepEqual(await readdir(dir), ['other.json.tmp-1-1']);
        });
    });

    describe('a store that cannot be used', () => {
        const now = () => Date.UTC(2026, 10, 23, 19, 52, 1, 123);
        const aside = () => `${file}.corrupt-2026-11-23T19-52-01-123Z`;

        async function expectRecovered(
            content: string,
            code: string,
            message: RegExp,
        ): Promise<void> {
            await writeFile(file, content);
            const store = await openStore({ now });
            const report = store.loadReport;
            assert.equal(report.status, 'recovered');
            assert.ok(report.error instanceof StoreError);
            assert.equal(report.error.code, code);
            assert.match(report.error.message, message);
            assert.equal(report.movedTo, aside());
            assert.equal(await readFile(aside(), 'utf8'), content, 'kept aside unchanged');
            await assert.rejects(stat(file), { code: 'ENOENT' });
            assert.deepEqual(store.document, emptyDocument());
            // the manager carries on and writes a fresh store
            store.update((doc) => (doc.params.title = 'fresh'));
            await store.flush();
            assert.equal((await onDisk()).params.title, 'fresh');
        }

        it('is kept aside and reported when it is not JSON', async () => {
            await expectRecovered('{"version":1,"par', 'STORE_CORRUPT', /is not valid JSON/);
        });
        it('is kept aside and reported when it does not match the schema', async () => {
            const doc = emptyDocument() as unknown as Record<string, unknown>;
            doc.counters = { E1: { total_energy: -5 } };
            await expectRecovered(
                JSON.stringify(doc),
                'STORE_CORRUPT',
                /does not match its schema[\s\S]*counters/,
            );
        });
        it('is kept aside and reported when it is not an object', async () => {
            await expectRecovered('[1,2]', 'STORE_CORRUPT', /not a JSON object/);
        });
        it('is kept aside when a newer version wrote it', async () => {
            await expectRecovered(
                JSON.stringify({ ...emptyDocument(), version: 7 }),
                'STORE_VERSION',
                /store version 7 is newer/,
            );
        });
        it('is kept aside when it cannot be read at all', async () => {
            await mkdir(file);
            const store = await openStore({ now });
            assert.equal(store.loadReport.status, 'recovered');
            assert.match(store.loadReport.error!.message, /cannot be read/);
            assert.equal((await stat(aside())).isDirectory(), true);
        });
        it('does not overwrite an earlier file kept aside', async () => {
            await writeFile(aside(), 'first');
            await writeFile(file, 'second');
            const store = await openStore({ now });
            assert.equal(store.loadReport.movedTo, `${aside()}-1`);
            assert.equal(await readFile(aside(), 'utf8'), 'first');
        });
    });

    describe('migrations', () => {
        it('reads a version 0 file (no version field) and fills the missing sections', async () => {
            await writeFile(
                file,
                JSON.stringify({
                    params: { reserve_current: 3000 },
                    variables: [{ name: 'AVAIL', expr: 80 }],
                    counters: { E1: { total_energy: 5000 } },
                }),
            );
            const store = await openStore();
            assert.deepEqual(store.loadReport, { status: 'migrated', fromVersion: 0 });
            const expected = emptyDocument();
            expected.params.reserve_current = 3000;
            expected.variables.push({ name: 'AVAIL', expr: 80 });
            expected.counters.E1 = { total_energy: 5000 };
            assert.deepEqual(store.document, expected);
            store.update((doc) => (doc.params.title = 'x'));
            await store.flush();
            assert.equal((await onDisk()).version, 1);
        });
        it('runs a table of steps in order', async () => {
            // a synthetic version 0 with other field names, migrated by a custom table
            const steps: Record<number, Migration> = {
                0: ({ vars, admin_pwd, ...rest }) => ({
                    ...emptyDocument(),
                    ...rest,
                    variables: vars,
                    adminPasswordHash: admin_pwd,
                    version: 1,
                }),
            };
            await writeFile(
                file,
                JSON.stringify({
                    vars: [{ name: 'x', expr: '1+1' }],
                    admin_pwd: 'scrypt$abc',
                    deleted: ['E2'],
                }),
            );
            const store = await openStore({ migrations: steps });
            assert.equal(store.loadReport.status, 'migrated');
            assert.deepEqual(store.document.variables, [{ name: 'x', expr: '1+1' }]);
            assert.equal(store.document.adminPasswordHash, 'scrypt$abc');
            assert.deepEqual(store.document.deleted, ['E2']);

            const chain: Record<number, Migration> = {
                0: (d) => ({ ...d, a: 1, version: 1 }),
                1: (d) => ({ ...d, b: (d.a as number) + 1, version: 2 }),
                2: (d) => ({ ...d, c: (d.b as number) + 1, version: 3 }),
            };
            assert.deepEqual(migrateDocument({ version: 1, a: 5 }, chain, 3), {
                doc: { version: 3, a: 5, b: 6, c: 7 },
                fromVersion: 1,
            });
            assert.throws(() => migrateDocument({ version: 0 }, { 0: (d) => d }, 1), {
                code: 'STORE_CORRUPT',
                message: 'migration from store version 0 did not produce version 1',
            });
            assert.throws(() => migrateDocument({ version: 1 }, {}, 2), {
                message: 'no migration from store version 1',
            });
            assert.throws(() => migrateDocument({ version: 'x' }), { code: 'STORE_CORRUPT' });
        });
        it('keeps a file aside whose migration fails', async () => {
            await writeFile(file, JSON.stringify({ params: 'not an object' }));
            const store = await openStore();
            assert.equal(store.loadReport.status, 'recovered');
            assert.equal(store.loadReport.error!.code, 'STORE_CORRUPT');
        });
    });

    describe('energy counters', () => {
        it('a change never lowers a counter', async () => {
            const store = await openStore();
            store.update((doc) => (doc.counters.E1 = { soft_meter: 100, total_energy: 5000 }));
            store.update((doc) => (doc.counters.E1 = { soft_meter: 50, total_energy: 6000 }));
            assert.deepEqual(store.document.counters.E1, { soft_meter: 100, total_energy: 6000 });
            store.update((doc) => (doc.counters.E1 = { total_energy: 7000 }));
            assert.deepEqual(store.document.counters.E1, { soft_meter: 100, total_energy: 7000 });
        });
        it('a save never lowers a counter below what is on disk', async () => {
            await writeFile(
                file,
                JSON.stringify({
                    ...emptyDocument(),
                    counters: { E1: { total_energy: 9000 }, M1: { soft_meter: 3 } },
                }),
            );
            const store = await openStore();
            store.update((doc) => {
                doc.counters.E1 = { total_energy: 100, soft_meter: 7 };
                doc.counters.M1 = { soft_meter: 4 };
            });
            await store.flush();
            assert.deepEqual((await onDisk()).counters, {
                E1: { total_energy: 9000, soft_meter: 7 },
                M1: { soft_meter: 4 },
            });
        });
        it('drops the counters of a device that is removed', async () => {
            const store = await openStore();
            store.update((doc) => (doc.counters.E9 = { total_energy: 10 }));
            await store.flush();
            store.update((doc) => delete doc.counters.E9);
            await store.flush();
            assert.deepEqual((await onDisk()).counters, {});
        });
        it('setCounters sets an explicit lower value, on disk too; later changes stay monotonic', async () => {
            const store = await openStore();
            store.update((doc) => (doc.counters.E1 = { total_energy: 9000, own_energy: 9000 }));
            await store.flush();
            store.setCounters('E1', { total_energy: 1000, own_energy: 9000 });
            assert.deepEqual(store.document.counters.E1, { total_energy: 1000, own_energy: 9000 });
            await store.flush();
            assert.deepEqual((await onDisk()).counters.E1, {
                total_energy: 1000,
                own_energy: 9000,
            });
            store.update((doc) => (doc.counters.E1 = { total_energy: 500, own_energy: 10 }));
            await store.flush();
            // own_energy is not a monotonic counter; total_energy is again
            assert.deepEqual((await onDisk()).counters.E1, { total_energy: 1000, own_energy: 10 });
        });
        it('an explicit lower value set while a write is in flight is not raised by that write', async () => {
            const store = await openStore({ debounceMs: 60_000 });
            store.update((doc) => (doc.counters.E1 = { total_energy: 9000 }));
            const inFlight = store.commit();
            store.setCounters('E1', { total_energy: 1000 }); // soft_meter during the write
            await inFlight;
            await store.commit();
            assert.deepEqual((await onDisk()).counters.E1, { total_energy: 1000 });
        });
        it('keeps charging plans, an optional section older version 1 files do not have', async () => {
            await writeFile(file, JSON.stringify(emptyDocument()));
            const store = await openStore();
            assert.equal(store.loadReport.status, 'loaded');
            assert.equal(store.document.plans, undefined);
            store.update((doc) => (doc.plans = { E1: [{ dc: false, st: 60, dr: 30, lm: 6000 }] }));
            assert.throws(
                () => store.update((doc) => (doc.plans = { E1: [{ st: 60 }] as never })),
                (err: StoreError) => err.code === 'STORE_INVALID',
            );
            await store.flush();
            assert.deepEqual((await onDisk()).plans, {
                E1: [{ dc: false, st: 60, dr: 30, lm: 6000 }],
            });
        });
    });
});
