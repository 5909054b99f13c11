// Benchmark plumbing: every *.bench.ts module exports `run(report)`; bench/run.ts collects the
// figures into bench/results.json and prints one table.

export interface Figure {
    value: number;
    unit: string;
    /** The same quantity for a reference measured in the same run. */
    baseline?: number;
    /** value / baseline (or the inverse, where the benchmark says so). */
    ratio?: number;
}

export type Report = (name: string, figure: Figure) => void;

export interface BenchModule {
    run(report: Report): Promise<void>;
}

/** Median of a list of numbers (the list is sorted in place). */
export function median(values: number[]): number {
    values.sort((a, b) => a - b);
    const mid = values.length >> 1;
    return values.length % 2 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2;
}

/** Rounds to a number of significant digits so that the table stays readable. */
export function round(value: number, digits = 4): number {
    if (value === 0 || !Number.isFinite(value)) return value;
    return Number(value.toPrecision(digits));
}
