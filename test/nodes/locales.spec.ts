// The message catalogs and help files of every node, in every language the package ships: the
// same keys everywhere, a help text per node, and every key the editor templates name.
// (test/browser/editor.spec.ts checks what the editor actually shows.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/node-red-process';

const nodesDir = join(repoRoot, 'nodes');
const localesDir = join(nodesDir, 'locales');
const types = Object.keys(
    (
        JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
            'node-red': { nodes: Record<string, string> };
        }
    )['node-red'].nodes,
);

function keysOf(value: unknown, prefix = ''): string[] {
    if (typeof value === 'string') return [prefix];
    assert.ok(value && typeof value === 'object', `${prefix} is a string or an object`);
    return Object.entries(value).flatMap(([k, v]) => keysOf(v, prefix ? `${prefix}.${k}` : k));
}

describe('node catalogs and help', () => {
    const languages = readdirSync(localesDir).sort();

    it('are there in English and German', () => {
        assert.deepEqual(languages, ['de', 'en-US']);
    });

    for (const type of types) {
        it(`${type}: every language has the English keys, and a help text`, () => {
            const english = keysOf(
                JSON.parse(readFileSync(join(localesDir, 'en-US', `${type}.json`), 'utf8')),
            ).sort();
            assert.ok(english.every((k) => k.startsWith(`${type}.`)));
            for (const lang of languages) {
                const catalog = JSON.parse(
                    readFileSync(join(localesDir, lang, `${type}.json`), 'utf8'),
                ) as unknown;
                assert.deepEqual(keysOf(catalog).sort(), english, `${lang}/${type}.json`);
                const help = readFileSync(join(localesDir, lang, `${type}.html`), 'utf8');
                assert.match(help, new RegExp(`data-help-name="${type}"`), `${lang}/${type}.html`);
            }
            // Every data-i18n key of the node's editor template is in the catalog.
            const html = readFileSync(join(nodesDir, `${type}.html`), 'utf8');
            const used = [...html.matchAll(/data-i18n="(?:\[\w+\])?([^"]+)"/g)].map((m) => m[1]!);
            assert.ok(used.length > 0);
            for (const key of used) assert.ok(english.includes(key), `${type}.html: ${key}`);
        });
    }
});
