// The package as users get it: what `npm pack` puts in it, and a Node-RED that installs the
// tarball into its user directory (as `npm install <tarball>` there, or the palette manager,
// does) and loads every node from it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, startNodeRed } from '../support/node-red-process';

interface PackFile {
    path: string;
    size: number;
}

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    name: string;
    'node-red': { nodes: Record<string, string> };
};

function npm(args: string[], cwd: string): string {
    const res = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout: 180_000 });
    assert.equal(res.status, 0, `npm ${args.join(' ')}:\n${res.stdout}\n${res.stderr}`);
    return res.stdout;
}

describe('the npm package', function () {
    this.timeout(240_000);
    let dir: string;
    let tarball: string;
    let files: PackFile[];

    before(() => {
        dir = mkdtempSync(join(tmpdir(), 'evcm-pack-'));
        // dist/ is built by npm test; --ignore-scripts skips prepack's second build.
        const out = JSON.parse(
            npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], repoRoot),
        ) as { filename: string; files: PackFile[] }[];
        tarball = join(dir, out[0]!.filename);
        files = out[0]!.files;
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('holds every node, its editor file and locales, and no source maps or tests', () => {
        const paths = new Set(files.map((f) => f.path));
        for (const [type, js] of Object.entries(pkg['node-red'].nodes)) {
            assert.ok(paths.has(js), `${type}: ${js}`);
            assert.ok(paths.has(js.replace(/\.js$/, '.html')), `${type} html`);
            assert.ok(paths.has(`dist/nodes/locales/en-US/${type}.json`), `${type} locale`);
        }
        assert.deepEqual(
            files.filter((f) => f.path.endsWith('.map')).map((f) => f.path),
            [],
        );
        assert.deepEqual(
            files.filter((f) => /^dist\/(test|bench)\//.test(f.path)).map((f) => f.path),
            [],
        );
        assert.ok(files.some((f) => f.path.startsWith('examples/')));
    });

    it('installs from the tarball into a user directory and Node-RED loads every node', async () => {
        const userDir = join(dir, 'user');
        spawnSync('mkdir', ['-p', userDir]);
        writeFileSync(join(userDir, 'package.json'), '{"name":"node-red-project","private":true}');
        // The dependencies come from npm's cache where it has them (the test's own install).
        npm(['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], userDir);
        const red = await startNodeRed([], { userDir, fromWorkingTree: false });
        try {
            const res = await fetch(`${red.url}nodes`, { headers: { Accept: 'application/json' } });
            const sets = (await res.json()) as { module: string; types: string[]; err?: string }[];
            const ours = sets.filter((s) => s.module === pkg.name);
            assert.deepEqual(
                ours.filter((s) => s.err).map((s) => s.err),
                [],
            );
            const types = ours.flatMap((s) => s.types).sort();
            assert.deepEqual(types, Object.keys(pkg['node-red'].nodes).sort());
        } finally {
            await red.stop();
        }
    });
});
