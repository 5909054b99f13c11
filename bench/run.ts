import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { round, type BenchModule, type Figure } from './harness';

const ResultsSchema = z.object({
    figures: z.record(
        z.string(),
        z.object({
            value: z.number(),
            unit: z.string(),
            baseline: z.number().optional(),
            ratio: z.number().optional(),
        }),
    ),
});

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
    // A filtered run updates its own figures and keeps the others; a full run replaces the file.
    const kept = only ? previousFigures(out) : {};
    writeFileSync(
        out,
        JSON.stringify({ figures: { ...kept, ...figures }, machine }, null, 2) + '\n',
    );

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
    console.log(`\n${machine}; ${only ? 'merged into' : 'written to'} bench/results.json`);
}

/** The figures of an earlier results.json; none if there is no file. */
function previousFigures(file: string): Record<string, Figure> {
    if (!existsSync(file)) return {};
    const parsed = ResultsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (!parsed.success) {
        throw new Error(`${file} is not a results file; run every benchmark to write it anew`);
    }
    return parsed.data.figures as Record<string, Figure>;
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
