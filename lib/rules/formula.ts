// Formula evaluator for charging rules, formula-valued limits and CM variables (vendor formula
// language). Text is parsed once into a tree (formula-parser.ts) and the tree is turned into
// plain closures; nothing is ever handed to eval, Function or vm.
//
// Semantics: numbers are doubles; comparisons and logical operators give 1 or 0; any non-zero
// value is true; `&&`, `||` and `?:` evaluate only the branch they need, so
// `exists(CM.x) && CM.x > 3` is safe; `&` and `|` work on the integer part (as a 64-bit integer
// would); division or modulo by zero, a negative square root and any result that is not a finite
// number are errors, never Infinity or NaN.

import { FormulaError } from './errors';
import { parseToTree, type FormulaNode } from './formula-parser';

export { FormulaError } from './errors';
export { MAX_AST_NODES, MAX_FORMULA_LENGTH, MAX_NESTING_DEPTH } from './formula-parser';

/**
 * Looks up a name such as `CM.AVAIL`, `M3.current_l1` or `date.hour`. `undefined` means the
 * name does not exist; booleans count as 1/0.
 */
export type Resolver = (name: string) => number | boolean | undefined;

export interface Formula {
    readonly source: string;
    /** Every name the formula reads (including those only tested with exists()). */
    readonly names: ReadonlySet<string>;
    /** True when the formula reads no names: its value never changes. */
    readonly constant: boolean;
    /** Evaluates with the given names; throws a FormulaError (FORMULA_NAME / FORMULA_MATH). */
    evaluate(resolve?: Resolver): number;
}

type Compiled = (resolve: Resolver) => number;

const noNames: Resolver = () => undefined;

/** Largest integer that `&` and `|` accept (beyond it a double has no exact integer part). */
const MAX_BITWISE = Number.MAX_SAFE_INTEGER;

function mathError(message: string, pos: number): FormulaError {
    return new FormulaError('FORMULA_MATH', `${message} at ${pos}`, pos);
}

function finite(value: number, what: string, pos: number): number {
    if (!Number.isFinite(value)) throw mathError(`${what} is not a finite number`, pos);
    return value;
}

function readName(resolve: Resolver, name: string, pos: number): number {
    let value: unknown;
    try {
        value = resolve(name);
    } catch (err) {
        if (err instanceof FormulaError) throw err;
        throw new FormulaError(
            'FORMULA_NAME',
            `cannot read '${name}' at ${pos}: ${err instanceof Error ? err.message : String(err)}`,
            pos,
            { cause: err },
        );
    }
    if (value === undefined)
        throw new FormulaError('FORMULA_NAME', `unknown name '${name}' at ${pos}`, pos);
    if (typeof value === 'boolean') return value ? 1 : 0;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new FormulaError(
            'FORMULA_NAME',
            `'${name}' has no finite numeric value at ${pos}`,
            pos,
        );
    }
    return value;
}

function toBitwiseOperand(value: number, pos: number): bigint {
    const whole = Math.trunc(value);
    if (Math.abs(whole) > MAX_BITWISE)
        throw mathError('operand of a bitwise operator is too large', pos);
    return BigInt(whole);
}

/** Rounds half away from zero, as C's round() does (Math.round rounds -2.5 to -2). */
function roundHalfAway(value: number): number {
    return value < 0 ? -Math.round(-value) : Math.round(value);
}

const truth = (value: boolean): number => (value ? 1 : 0);

function compileNode(node: FormulaNode): Compiled {
    switch (node.type) {
        case 'number': {
            const value = node.value;
            return () => value;
        }
        case 'name': {
            const { name, pos } = node;
            return (resolve) => readName(resolve, name, pos);
        }
        case 'exists': {
            const { name } = node;
            return (resolve) => {
                try {
                    return truth(resolve(name) !== undefined);
                } catch {
                    return 0;
                }
            };
        }
        case 'unary': {
            const operand = compileNode(node.operand);
            if (node.op === '!') return (r) => truth(operand(r) === 0);
            if (node.op === '-') return (r) => -operand(r);
            return operand;
        }
        case 'conditional': {
            const test = compileNode(node.test);
            const then = compileNode(node.then);
            const otherwise = compileNode(node.otherwise);
            return (r) => (test(r) !== 0 ? then(r) : otherwise(r));
        }
        case 'call':
            return compileCall(node.fn, node.args.map(compileNode), node.pos);
        case 'binary':
            return compileBinary(
                node.op,
                compileNode(node.left),
                compileNode(node.right),
                node.pos,
            );
    }
}

function compileCall(fn: string, args: Compiled[], pos: number): Compiled {
    const [a, b, c] = args;
    switch (fn) {
        case 'min':
            return (r) => args.reduce((acc, arg) => Math.min(acc, arg(r)), Infinity);
        case 'max':
            return (r) => args.reduce((acc, arg) => Math.max(acc, arg(r)), -Infinity);
        case 'abs':
            return (r) => Math.abs(a!(r));
        case 'clamp':
            // clamp(x, lo, hi): with lo > hi the lower bound wins
            return (r) => {
                const x = a!(r);
                const lo = b!(r);
                return Math.max(lo, Math.min(c!(r), x));
            };
        case 'round':
            return (r) => roundHalfAway(a!(r));
        case 'floor':
            return (r) => Math.floor(a!(r));
        case 'ceil':
            return (r) => Math.ceil(a!(r));
        case 'sqrt':
            return (r) => {
                const x = a!(r);
                if (x < 0) throw mathError('square root of a negative number', pos);
                return Math.sqrt(x);
            };
        default:
            // the parser only produces the functions above
            throw new FormulaError('FORMULA_SYNTAX', `unknown function '${fn}' at ${pos}`, pos);
    }
}

function compileBinary(op: string, left: Compiled, right: Compiled, pos: number): Compiled {
    switch (op) {
        case '+':
            return (r) => finite(left(r) + right(r), 'result of +', pos);
        case '-':
            return (r) => finite(left(r) - right(r), 'result of -', pos);
        case '*':
            return (r) => finite(left(r) * right(r), 'result of *', pos);
        case '/':
            return (r) => {
                const dividend = left(r);
                const divisor = right(r);
                if (divisor === 0) throw mathError('division by zero', pos);
                return finite(dividend / divisor, 'result of /', pos);
            };
        case '%':
            return (r) => {
                const dividend = left(r);
                const divisor = right(r);
                if (divisor === 0) throw mathError('modulo by zero', pos);
                return dividend % divisor;
            };
        case '^':
            return (r) => finite(Math.pow(left(r), right(r)), 'result of ^', pos);
        case '&':
            return (r) => {
                const x = toBitwiseOperand(left(r), pos);
                return Number(x & toBitwiseOperand(right(r), pos));
            };
        case '|':
            return (r) => {
                const x = toBitwiseOperand(left(r), pos);
                return Number(x | toBitwiseOperand(right(r), pos));
            };
        case '<':
            return (r) => truth(left(r) < right(r));
        case '<=':
            return (r) => truth(left(r) <= right(r));
        case '>':
            return (r) => truth(left(r) > right(r));
        case '>=':
            return (r) => truth(left(r) >= right(r));
        case '==':
            return (r) => truth(left(r) === right(r));
        case '!=':
            return (r) => truth(left(r) !== right(r));
        case '&&':
            return (r) => truth(left(r) !== 0 && right(r) !== 0);
        case '||':
            return (r) => truth(left(r) !== 0 || right(r) !== 0);
        default:
            throw new FormulaError('FORMULA_SYNTAX', `unknown operator '${op}' at ${pos}`, pos);
    }
}

class CompiledFormula implements Formula {
    readonly constant: boolean;

    constructor(
        readonly source: string,
        readonly names: ReadonlySet<string>,
        private readonly run: Compiled,
    ) {
        this.constant = names.size === 0;
    }

    evaluate(resolve: Resolver = noNames): number {
        // -0 only confuses JSON and comparisons downstream
        const value = this.run(resolve);
        return value === 0 ? 0 : value;
    }

    toString(): string {
        return this.source;
    }
}

/** Parses and compiles a formula for repeated evaluation; throws a FormulaError on bad text. */
export function parseFormula(src: string): Formula {
    const { root, names } = parseToTree(src);
    return new CompiledFormula(src, names, compileNode(root));
}

/** Parses and evaluates in one go (for one-off values; keep the Formula for repeated use). */
export function evaluate(src: string, resolve?: Resolver): number {
    return parseFormula(src).evaluate(resolve);
}

/**
 * A resolver over a plain record or Map. Only the record's own keys count, so names such as
 * `constructor` or `__proto__` are unknown names rather than inherited properties.
 */
export function resolverFrom(
    values: Readonly<Record<string, number | boolean>> | ReadonlyMap<string, number | boolean>,
): Resolver {
    if (values instanceof Map) return (name) => values.get(name);
    const record = values as Readonly<Record<string, number | boolean>>;
    return (name) => (Object.hasOwn(record, name) ? record[name] : undefined);
}

const PLAIN_NUMBER_RE = /^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$/;

/** True for text that is just a number ("32000", " -1.5 "), false for a formula or anything else. */
export function isPlainNumber(text: string): boolean {
    return PLAIN_NUMBER_RE.test(text) && Number.isFinite(Number(text));
}

/**
 * A setting that may be a number or a formula, such as max_total_current ("32000" or
 * "min(16000, 29000 - M3.current)").
 */
export type NumberOrFormula =
    | { readonly kind: 'number'; readonly value: number }
    | { readonly kind: 'formula'; readonly formula: Formula };

/** Classifies and parses such a setting; throws a FormulaError when it is neither. */
export function parseNumberOrFormula(value: number | string): NumberOrFormula {
    if (typeof value === 'number') {
        if (!Number.isFinite(value)) {
            throw new FormulaError('FORMULA_MATH', `${value} is not a finite number`);
        }
        return { kind: 'number', value };
    }
    if (isPlainNumber(value)) return { kind: 'number', value: Number(value) };
    return { kind: 'formula', formula: parseFormula(value) };
}

/** The value of a number-or-formula setting now. */
export function valueOf(setting: NumberOrFormula, resolve?: Resolver): number {
    return setting.kind === 'number' ? setting.value : setting.formula.evaluate(resolve);
}
