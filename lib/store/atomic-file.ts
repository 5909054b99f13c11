// Crash-safe file replacement: the new content goes to a temporary file in the same directory,
// which is flushed to disk, renamed over the target (atomic on POSIX file systems) and then the
// directory itself is flushed so that the rename survives a power cut. A reader therefore sees
// either the old or the new file, never a torn one.

import * as fsPromises from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The file operations a write uses: node:fs/promises, or a wrapper that records them (tests). */
export type AtomicFileSystem = Pick<typeof fsPromises, 'open' | 'rename' | 'unlink'>;

let tempCounter = 0;

function tempPrefix(file: string): string {
    return `${basename(file)}.tmp-`;
}

/** Flushes a directory entry table; not possible on every platform (Windows), so best effort. */
export async function syncDirectory(fs: AtomicFileSystem, dir: string): Promise<void> {
    let handle;
    try {
        handle = await fs.open(dir, 'r');
        await handle.sync();
    } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw err;
    } finally {
        await handle?.close();
    }
}

/** Replaces `file` with `data` atomically and durably (temp file, fsync, rename, fsync dir). */
export async function writeFileAtomic(
    file: string,
    data: string,
    fs: AtomicFileSystem = fsPromises,
): Promise<void> {
    const dir = dirname(file);
    const temp = join(dir, `${tempPrefix(file)}${process.pid}-${++tempCounter}`);
    try {
        const handle = await fs.open(temp, 'w', 0o600);
        try {
            await handle.writeFile(data, 'utf8');
            await handle.sync();
        } finally {
            await handle.close();
        }
        await fs.rename(temp, file);
    } catch (err) {
        await fs.unlink(temp).catch(() => undefined);
        throw err;
    }
    await syncDirectory(fs, dir);
}

/** Deletes temporary files left by writes that were interrupted (a crash between open and rename). */
export async function removeStaleTempFiles(file: string): Promise<void> {
    const dir = dirname(file);
    const prefix = tempPrefix(file);
    let entries: string[];
    try {
        entries = await fsPromises.readdir(dir);
    } catch {
        return;
    }
    await Promise.all(
        entries
            .filter((name) => name.startsWith(prefix))
            .map((name) => fsPromises.unlink(join(dir, name)).catch(() => undefined)),
    );
}
