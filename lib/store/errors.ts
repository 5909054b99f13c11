// Errors of the store: real Error objects with a code the manager can show or translate.

export type StoreErrorCode =
    /** The file could not be read, parsed, migrated or validated; it was moved aside. */
    | 'STORE_CORRUPT'
    /** The file was written by a newer version of this package; it was moved aside. */
    | 'STORE_VERSION'
    /** Writing the file failed (disk full, permissions); the change stays pending. */
    | 'STORE_WRITE'
    /** A change would make the document invalid; nothing was changed. */
    | 'STORE_INVALID'
    /** The store was closed. */
    | 'STORE_CLOSED';

export class StoreError extends Error {
    override readonly name = 'StoreError';

    constructor(
        readonly code: StoreErrorCode,
        message: string,
        options?: { cause?: unknown },
    ) {
        super(message, options);
    }
}
