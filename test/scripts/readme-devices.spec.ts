// The README's table of supported devices is the built-in definitions' (npm run readme:devices),
// and its worked example of a user definition is one the schema takes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseUserDefinitions, builtInDefinitions } from '../../lib/devices/registry';
import {
    supportedDevicesTable,
    TABLE_END,
    TABLE_START,
    withTable,
} from '../../lib/devices/supported-table';

const README = join(__dirname, '..', '..', '..', 'README.md');

/** A Markdown table's rows with the cells trimmed (prettier pads them). */
const rows = (table: string): string[] =>
    table
        .split('\n')
        .filter((l) => l.startsWith('|'))
        .map((l) =>
            l
                .split('|')
                .map((c) => c.trim().replace(/^-+$/, '---'))
                .join('|'),
        );

describe('README: supported devices', () => {
    const readme = readFileSync(README, 'utf8');

    it('lists every built-in definition as the definitions say (run npm run readme:devices)', () => {
        const defs = [...builtInDefinitions().values()];
        const table = supportedDevicesTable(defs);
        assert.ok(withTable(readme, table), 'the markers are there');
        const inReadme = readme.slice(readme.indexOf(TABLE_START), readme.indexOf(TABLE_END));
        assert.deepEqual(rows(inReadme), rows(table), 'the table is out of date');
        assert.equal(rows(inReadme).length, defs.length + 2);
    });

    it('the worked example of a user definition is a valid one', () => {
        const m = /### Your own device[\s\S]*?```json\n([\s\S]*?)```/.exec(readme);
        assert.ok(m, 'the example is there');
        const [d] = parseUserDefinitions([JSON.parse(m[1]!)]);
        assert.equal(d?.type, 'evse_user_acme');
    });
});
