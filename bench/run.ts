import { readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { round, type BenchModule, type Figure } from './harness';

async function main(): Promise<void> {
    const only = process.argv[2];
    const figures: Record<string, Figure> = {};
    const modules = readdirSync(__dirname)
        .filter((f) => f.endsWith('.bench.js'))
        .filter((f) => !only || f.startsWith(only))
        .sort();
    for (const file of modules) {
        console.log(`> ${file.replace(/\.js$/, '')}`);
        const mod = (await import(join(__dirname, file))) as BenchModule;
        await mod.run((name, figure) => {
            figures[name] = {
                ...figure,
                value: round(figure.value),
                ...(figure.baseline !== undefined ? { baseline: round(figure.baseline) } : {}),
                ...(figure.ratio !== undefined ? { ratio: round(figure.ratio, 3) } : {}),
            };
        });
    }
    const machine = `${cpus().length} cores, node ${process.version}`;
    const out = join(__dirname, '..', '..', 'bench', 'results.json');
    writeFileSync(out, JSON.stringify({ figures, machine }, null, 2) + '\n');

    const rows = Object.entries(figures).map(([name, f]) => [
        name,
        `${f.value} ${f.unit}`,
        f.baseline !== undefined ? `${f.baseline} ${f.unit}` : '',
        f.ratio !== undefined ? String(f.ratio) : '',
    ]);
    const head = ['figure', 'value', 'baseline', 'ratio'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    console.log('\n' + line(head));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const r of rows) console.log(line(r));
    console.log(`\n${machine}; written to bench/results.json`);
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
