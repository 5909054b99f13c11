// Formula evaluation cost: a typical rule formula, compiled once, evaluated many times. The
// baseline is the same arithmetic written directly in TypeScript.

import { median, type Report } from './harness';
import { parseFormula, type Resolver } from '../lib/rules/formula';

const SOURCE =
    'CM.TARIF == 1 && date.hour >= 22 ? min(16000, 29000 - M3.current_l1) : max(6000, GM.surplus / 230 * 1000)';

const values: Record<string, number> = {
    'CM.TARIF': 1,
    'date.hour': 23,
    'M3.current_l1': 9000,
    'GM.surplus': 4200,
};
const resolve: Resolver = (name) => values[name];

function direct(r: Resolver): number {
    const v = (n: string) => r(n) as number;
    return v('CM.TARIF') === 1 && v('date.hour') >= 22
        ? Math.min(16000, 29000 - v('M3.current_l1'))
        : Math.max(6000, (v('GM.surplus') / 230) * 1000);
}

function nsPerCall(fn: () => number, calls: number): number {
    let sink = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) sink += fn();
    const ns = Number(process.hrtime.bigint() - start) / calls;
    if (sink === -1) console.log(sink);
    return ns;
}

export async function run(report: Report): Promise<void> {
    const formula = parseFormula(SOURCE);
    const calls = 100_000;
    const evalSamples: number[] = [];
    const directSamples: number[] = [];
    for (let round = 0; round < 15; round++) {
        evalSamples.push(nsPerCall(() => formula.evaluate(resolve), calls));
        directSamples.push(nsPerCall(() => direct(resolve), calls));
    }
    const evalNs = median(evalSamples);
    const directNs = median(directSamples);
    report('formula.eval_ns', {
        value: evalNs,
        unit: 'ns',
        baseline: directNs,
        ratio: evalNs / directNs,
    });

    const parseSamples: number[] = [];
    for (let round = 0; round < 15; round++) {
        parseSamples.push(nsPerCall(() => parseFormula(SOURCE).names.size, 2000));
    }
    report('formula.parse_us', { value: median(parseSamples) / 1000, unit: 'µs' });
    await Promise.resolve();
}
