// Schema migrations: each step turns a document of version N into version N + 1. On load the
// steps run in order from the file's version up to STORE_VERSION, then the result is validated
// as a whole. A step receives plain parsed JSON and must not assume more than its version had.

import { StoreError } from './errors';
import { STORE_VERSION } from './schema';

type RawDocument = Record<string, unknown>;
export type Migration = (doc: RawDocument) => RawDocument;

/** from-version → step to from-version + 1. */
export const MIGRATIONS: Readonly<Record<number, Migration>> = {
    // Version 0: a document without a `version` field (the first stores were written without
    // one). Sections that were absent start empty.
    0: (doc) => ({
        params: {},
        devices: {},
        deleted: [],
        users: [],
        rfids: [],
        variables: [],
        adminPasswordHash: null,
        counters: {},
        editorBaseline: {},
        ...doc,
        version: 1,
    }),
};

function isRecord(value: unknown): value is RawDocument {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The version a parsed document claims; a document without one is version 0. */
export function documentVersion(doc: unknown): number {
    if (!isRecord(doc)) throw new StoreError('STORE_CORRUPT', 'store is not a JSON object');
    const version = doc.version ?? 0;
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) {
        throw new StoreError(
            'STORE_CORRUPT',
            `store has an invalid version ${JSON.stringify(version)}`,
        );
    }
    return version;
}

/**
 * Runs the migration steps from the document's version up to `target`. Throws STORE_VERSION for
 * a document newer than `target` and STORE_CORRUPT when a step is missing or fails.
 */
export function migrateDocument(
    doc: unknown,
    migrations: Readonly<Record<number, Migration>> = MIGRATIONS,
    target: number = STORE_VERSION,
): { doc: unknown; fromVersion: number } {
    const fromVersion = documentVersion(doc);
    if (fromVersion > target) {
        throw new StoreError(
            'STORE_VERSION',
            `store version ${fromVersion} is newer than this version of the package understands (${target})`,
        );
    }
    let current = doc as RawDocument;
    for (let version = fromVersion; version < target; version++) {
        const step = migrations[version];
        if (!step)
            throw new StoreError('STORE_CORRUPT', `no migration from store version ${version}`);
        try {
            current = step(structuredClone(current));
        } catch (err) {
            throw new StoreError(
                'STORE_CORRUPT',
                `migration from store version ${version} failed`,
                {
                    cause: err,
                },
            );
        }
        if (!isRecord(current) || current.version !== version + 1) {
            throw new StoreError(
                'STORE_CORRUPT',
                `migration from store version ${version} did not produce version ${version + 1}`,
            );
        }
    }
    return { doc: current, fromVersion };
}
