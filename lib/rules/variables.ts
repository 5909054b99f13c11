// Charging Manager variables (set_cm_vars / get_cm_vars): named values that formulas read as
// `CM.<name>`. Each has an `expr` (a number or a formula) and a calculated `val`.
//
// Two views are kept: the live set (what formulas see now) and the saved set (what belongs in the
// store). A change with `tmp` touches only the live set, so it is gone after a restart, as with
// the vendor's `tmp=1`. `dirty` tells the caller whether the saved set differs from what was last
// written, because the vendor only writes when a value actually changed.
//
// Pure: no I/O and no clock.

import { FormulaError, VariableError } from './errors';
import { isPlainNumber, parseFormula, type Formula, type Resolver } from './formula';
import { isVariableName } from './formula-parser';

/** Longest variable name accepted. */
export const MAX_VARIABLE_NAME_LENGTH = 64;
/** Most variables one manager holds. */
export const MAX_VARIABLES = 256;
/** The vendor's variables that set the price and price level ("Charging Manager" as the energy
 *  provider); the only names with an underscore that may be set. */
export const PRICE_VARIABLES: ReadonlySet<string> = new Set(['_set_price', '_set_price_level']);

const CM_PREFIX = 'CM.';

/** What a variable is set to: a number or formula text (the vendor's `expr`). */
export type VariableExpr = number | string;

export interface VariableInput {
    readonly name: string;
    readonly expr: VariableExpr;
}

/** One row of get_cm_vars: `val` is null until it could be calculated. */
export interface VariableView {
    readonly name: string;
    readonly expr: VariableExpr;
    readonly val: number | null;
}

export interface SetOptions {
    /** Change only the live value: not saved, lost on restart. */
    readonly tmp?: boolean;
}

export interface SetManyOptions extends SetOptions {
    /** Delete every variable first (set_cm_vars `clear=1`). */
    readonly clear?: boolean;
}

export interface EvaluationResult {
    /** Variables that have no value this round, with the reason. */
    readonly errors: ReadonlyMap<string, VariableError>;
}

interface LiveVariable {
    readonly expr: VariableExpr;
    /** Undefined for a plain number. */
    readonly formula?: Formula;
    val: number | null;
}

/**
 * Throws a VariableError unless the name is one formulas can read as `CM.<name>`: only digits and
 * letters a–z, A–Z, and not a word that means a number (NaN, Infinity).
 */
export function validateVariableName(name: unknown): string {
    if (
        typeof name !== 'string' ||
        !(isVariableName(name) || PRICE_VARIABLES.has(name)) ||
        name.length > MAX_VARIABLE_NAME_LENGTH
    ) {
        const shown = typeof name === 'string' ? `'${name}'` : String(name);
        throw new VariableError(
            'VARIABLE_NAME',
            `invalid variable name ${shown}: only digits and letters a–z, A–Z (not NaN or Infinity), at most ${MAX_VARIABLE_NAME_LENGTH}, or _set_price / _set_price_level`,
            typeof name === 'string' ? [name] : [],
        );
    }
    return name;
}

function compile(name: string, expr: unknown): LiveVariable {
    if (typeof expr === 'number') {
        if (!Number.isFinite(expr)) {
            throw new VariableError(
                'VARIABLE_EXPR',
                `variable '${name}': ${expr} is not a finite number`,
                [name],
            );
        }
        return { expr, val: expr };
    }
    if (typeof expr !== 'string') {
        throw new VariableError(
            'VARIABLE_EXPR',
            `variable '${name}': expr must be a number or a formula`,
            [name],
        );
    }
    if (isPlainNumber(expr)) return { expr, val: Number(expr) };
    try {
        const formula = parseFormula(expr);
        return { expr, formula, val: formula.constant ? safeConstant(formula) : null };
    } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new VariableError('VARIABLE_EXPR', `variable '${name}': ${reason}`, [name], {
            cause: err,
        });
    }
}

function safeConstant(formula: Formula): number | null {
    try {
        return formula.evaluate();
    } catch {
        return null;
    }
}

export class CmVariables {
    private readonly live = new Map<string, LiveVariable>();
    /** What belongs in the store (set without tmp). */
    private readonly saved = new Map<string, VariableExpr>();
    /** Fingerprint of the saved set as last written; null = never written. */
    private writtenFingerprint: string | null;

    constructor(persisted: readonly VariableInput[] = []) {
        for (const { name, expr } of persisted) {
            validateVariableName(name);
            this.live.set(name, compile(name, expr));
            this.saved.set(name, expr);
        }
        this.writtenFingerprint = this.fingerprint();
    }

    /** Sets one variable; returns whether the saved set changed. */
    set(name: string, expr: VariableExpr, options: SetOptions = {}): boolean {
        return this.setMany([{ name, expr }], options);
    }

    /**
     * Sets several variables, all or nothing: every entry is checked before anything changes.
     * Returns whether the saved set changed.
     */
    setMany(vars: readonly VariableInput[], options: SetManyOptions = {}): boolean {
        const compiled = new Map<string, LiveVariable>();
        for (const entry of vars) {
            const name = validateVariableName((entry as { name?: unknown } | null)?.name);
            compiled.set(name, compile(name, entry.expr));
        }
        const names = new Set(options.clear ? [] : this.live.keys());
        for (const name of compiled.keys()) names.add(name);
        if (names.size > MAX_VARIABLES) {
            throw new VariableError(
                'VARIABLE_EXPR',
                `too many variables: at most ${MAX_VARIABLES}`,
                [...compiled.keys()],
            );
        }

        const before = this.fingerprint();
        if (options.clear) {
            this.live.clear();
            if (!options.tmp) this.saved.clear();
        }
        for (const [name, variable] of compiled) {
            const previous = this.live.get(name);
            // an unchanged formula keeps its last value until the next evaluation
            if (previous && previous.expr === variable.expr && variable.val === null) {
                variable.val = previous.val;
            }
            this.live.set(name, variable);
            if (!options.tmp) this.saved.set(name, variable.expr);
        }
        return this.fingerprint() !== before;
    }

    /** Deletes every variable (live and saved); returns whether the saved set changed. */
    clear(options: SetOptions = {}): boolean {
        return this.setMany([], { clear: true, tmp: options.tmp ?? false });
    }

    /** How many variables are set (live). */
    get size(): number {
        return this.live.size;
    }

    has(name: string): boolean {
        return this.live.has(name);
    }

    /** The calculated value, or undefined for an unknown variable or one without a value. */
    value(name: string): number | undefined {
        return this.live.get(name)?.val ?? undefined;
    }

    /** The get_cm_vars answer. */
    list(): { vars: VariableView[] } {
        return {
            vars: [...this.live].map(([name, v]) => ({ name, expr: v.expr, val: v.val })),
        };
    }

    /** The variables to store (set without tmp), in the order they were first set. */
    persistent(): VariableInput[] {
        return [...this.saved].map(([name, expr]) => ({ name, expr }));
    }

    /** True when the saved set differs from what was last written. */
    get dirty(): boolean {
        return this.fingerprint() !== this.writtenFingerprint;
    }

    /** The caller wrote `persistent()` to the store. */
    markSaved(): void {
        this.writtenFingerprint = this.fingerprint();
    }

    /**
     * A resolver that answers `CM.<name>` from these variables and everything else from `other`:
     * for rules and limits that read CM variables.
     */
    resolver(other: Resolver): Resolver {
        return (name) => {
            if (name.startsWith(CM_PREFIX)) {
                const variable = this.live.get(name.slice(CM_PREFIX.length));
                if (variable) return variable.val ?? undefined;
            }
            return other(name);
        };
    }

    /**
     * Calculates every formula variable. Variables read each other as `CM.<name>`; each is
     * calculated after those it reads. Variables in a reference cycle get a VARIABLE_CYCLE error
     * naming the cycle, those that fail or read a failed one a VARIABLE_EVAL error; all others
     * still get their value. `resolveOther` answers every other name.
     */
    evaluateAll(resolveOther: Resolver): EvaluationResult {
        const errors = new Map<string, VariableError>();
        const dependencies = this.dependencyGraph();
        const inCycle = new Set<string>();
        for (const component of stronglyConnected(dependencies)) {
            const first = component[0]!;
            const cyclic = component.length > 1 || dependencies.get(first)!.includes(first);
            if (!cyclic) continue;
            const members = [...component].sort();
            const path = [...members, members[0]].map((n) => `CM.${n}`).join(' → ');
            for (const name of members) {
                inCycle.add(name);
                errors.set(
                    name,
                    new VariableError('VARIABLE_CYCLE', `variable cycle: ${path}`, members),
                );
                this.live.get(name)!.val = null;
            }
        }

        const done = new Set<string>(inCycle);
        const resolve: Resolver = (name) => {
            if (name.startsWith(CM_PREFIX)) {
                const ref = name.slice(CM_PREFIX.length);
                const variable = this.live.get(ref);
                if (variable) {
                    const failure = errors.get(ref);
                    if (failure) {
                        throw new FormulaError(
                            'FORMULA_NAME',
                            `'${name}' has no value (${failure.message})`,
                        );
                    }
                    return variable.val ?? undefined;
                }
            }
            return resolveOther(name);
        };
        const calculate = (name: string): void => {
            if (done.has(name)) return;
            done.add(name);
            for (const dep of dependencies.get(name)!) calculate(dep);
            const variable = this.live.get(name)!;
            if (!variable.formula) return;
            try {
                variable.val = variable.formula.evaluate(resolve);
            } catch (err) {
                variable.val = null;
                const reason = err instanceof Error ? err.message : String(err);
                errors.set(
                    name,
                    new VariableError('VARIABLE_EVAL', `variable '${name}': ${reason}`, [name], {
                        cause: err,
                    }),
                );
            }
        };
        for (const name of this.live.keys()) calculate(name);
        return { errors };
    }

    /** name → the variables its formula reads as CM.<name>. */
    private dependencyGraph(): Map<string, string[]> {
        const graph = new Map<string, string[]>();
        for (const [name, variable] of this.live) {
            const deps: string[] = [];
            for (const ref of variable.formula?.names ?? []) {
                if (!ref.startsWith(CM_PREFIX)) continue;
                const target = ref.slice(CM_PREFIX.length);
                if (this.live.has(target)) deps.push(target);
            }
            graph.set(name, deps);
        }
        return graph;
    }

    private fingerprint(): string {
        return JSON.stringify([...this.saved]);
    }
}

/** Tarjan's algorithm: the strongly connected components of a small graph. */
function stronglyConnected(graph: ReadonlyMap<string, readonly string[]>): string[][] {
    let counter = 0;
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const components: string[][] = [];

    const visit = (node: string): void => {
        index.set(node, counter);
        low.set(node, counter);
        counter++;
        stack.push(node);
        onStack.add(node);
        for (const next of graph.get(node) ?? []) {
            if (!index.has(next)) {
                visit(next);
                low.set(node, Math.min(low.get(node)!, low.get(next)!));
            } else if (onStack.has(next)) {
                low.set(node, Math.min(low.get(node)!, index.get(next)!));
            }
        }
        if (low.get(node) === index.get(node)) {
            const component: string[] = [];
            let member: string;
            do {
                member = stack.pop()!;
                onStack.delete(member);
                component.push(member);
            } while (member !== node);
            components.push(component);
        }
    };
    for (const node of graph.keys()) if (!index.has(node)) visit(node);
    return components;
}
