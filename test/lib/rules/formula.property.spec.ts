import assert from 'node:assert/strict';
import fc from 'fast-check';
import { evaluate, FormulaError, parseFormula, resolverFrom } from '../../../lib/rules/formula';

const SCALE = Number(process.env.EVCM_PROPERTY_SCALE ?? '1');
const CODES = new Set(['FORMULA_SYNTAX', 'FORMULA_LIMIT', 'FORMULA_NAME', 'FORMULA_MATH']);

const ENV: Record<string, number> = {
    'CM.a': 3,
    'CM.b': -2.5,
    'M3.current_l1': 12000,
    'E1.power_w': 7400,
    'date.hour': 0,
};
const resolve = resolverFrom(ENV);

// ---- a reference model of the language, written independently of the implementation ----

type Expr =
    | { t: 'num'; text: string }
    | { t: 'name'; name: string }
    | { t: 'exists'; name: string }
    | { t: 'neg' | 'not' | 'plus'; e: Expr }
    | { t: 'bin'; op: string; l: Expr; r: Expr }
    | { t: 'cond'; c: Expr; a: Expr; b: Expr }
    | { t: 'call'; fn: string; args: Expr[] };

class MathFailure extends Error {}
class NameFailure extends Error {}

function fin(x: number): number {
    if (!Number.isFinite(x)) throw new MathFailure();
    return x;
}
const b = (x: boolean) => (x ? 1 : 0);
function int(x: number): bigint {
    if (Math.abs(Math.trunc(x)) > Number.MAX_SAFE_INTEGER) throw new MathFailure();
    return BigInt(Math.trunc(x));
}

function reference(e: Expr): number {
    switch (e.t) {
        case 'num':
            return Number(e.text);
        case 'name':
            if (!(e.name in ENV)) throw new NameFailure();
            return ENV[e.name]!;
        case 'exists':
            return b(e.name in ENV);
        case 'neg':
            return -reference(e.e);
        case 'plus':
            return reference(e.e);
        case 'not':
            return b(reference(e.e) === 0);
        case 'cond':
            return reference(e.c) !== 0 ? reference(e.a) : reference(e.b);
        case 'call': {
            const v = e.args.map(reference);
            switch (e.fn) {
                case 'min':
                    return Math.min(...v);
                case 'max':
                    return Math.max(...v);
                case 'abs':
                    return Math.abs(v[0]!);
                case 'clamp':
                    return Math.min(Math.max(v[0]!, v[1]!), Math.max(v[1]!, v[2]!));
                case 'round':
                    return Math.sign(v[0]!) * Math.round(Math.abs(v[0]!));
                case 'sqrt':
                    if (v[0]! < 0) throw new MathFailure();
                    return Math.sqrt(v[0]!);
                case 'floor':
                    return Math.floor(v[0]!);
                default:
                    return Math.ceil(v[0]!);
            }
        }
        case 'bin': {
            const l = reference(e.l);
            if (e.op === '&&') return l === 0 ? 0 : b(reference(e.r) !== 0);
            if (e.op === '||') return l !== 0 ? 1 : b(reference(e.r) !== 0);
            const r = reference(e.r);
            switch (e.op) {
                case '+':
                    return fin(l + r);
                case '-':
                    return fin(l - r);
                case '*':
                    return fin(l * r);
                case '/':
                    if (r === 0) throw new MathFailure();
                    return fin(l / r);
                case '%':
                    if (r === 0) throw new MathFailure();
                    return l % r;
                case '^':
                    return fin(l ** r);
                case '&': {
                    const x = int(l);
                    return Number(x & int(r));
                }
                case '|': {
                    const x = int(l);
                    return Number(x | int(r));
                }
                case '<':
                    return b(l < r);
                case '<=':
                    return b(l <= r);
                case '>':
                    return b(l > r);
                case '>=':
                    return b(l >= r);
                case '==':
                    return b(l === r);
                default:
                    return b(l !== r);
            }
        }
    }
}

// Binding strength as the vendor's C-like grammar has it (higher binds tighter).
const PREC: Record<string, number> = {
    '||': 1,
    '&&': 2,
    '|': 3,
    '&': 4,
    '==': 5,
    '!=': 5,
    '<': 6,
    '<=': 6,
    '>': 6,
    '>=': 6,
    '+': 7,
    '-': 7,
    '*': 8,
    '/': 8,
    '%': 8,
    '^': 10,
};
const UNARY = 9;
const PRIMARY = 11;

function precedenceOf(e: Expr): number {
    if (e.t === 'cond') return 0;
    if (e.t === 'bin') return PREC[e.op]!;
    if (e.t === 'neg' || e.t === 'not' || e.t === 'plus') return UNARY;
    return PRIMARY;
}

/** Prints with as few parentheses as the precedence rules allow. */
function minimal(e: Expr, needed = 0): string {
    const text = ((): string => {
        switch (e.t) {
            case 'num':
                return e.text;
            case 'name':
                return e.name;
            case 'exists':
                return `exists(${e.name})`;
            case 'neg':
                return `-${minimal(e.e, UNARY)}`;
            case 'plus':
                return `+${minimal(e.e, UNARY)}`;
            case 'not':
                return `!${minimal(e.e, UNARY)}`;
            case 'cond':
                return `${minimal(e.c, 1)} ? ${minimal(e.a, 0)} : ${minimal(e.b, 0)}`;
            case 'call':
                return `${e.fn}(${e.args.map((a) => minimal(a, 0)).join(', ')})`;
            case 'bin': {
                const p = PREC[e.op]!;
                // '^' is right-associative and only a primary may stand on its left
                if (e.op === '^') return `${minimal(e.l, PRIMARY)} ^ ${minimal(e.r, UNARY)}`;
                return `${minimal(e.l, p)} ${e.op} ${minimal(e.r, p + 1)}`;
            }
        }
    })();
    return precedenceOf(e) < needed ? `(${text})` : text;
}

/** Prints every compound expression in parentheses. */
function full(e: Expr): string {
    switch (e.t) {
        case 'num':
        case 'name':
        case 'exists':
            return minimal(e);
        case 'neg':
            return `(-${full(e.e)})`;
        case 'plus':
            return `(+${full(e.e)})`;
        case 'not':
            return `(!${full(e.e)})`;
        case 'cond':
            return `(${full(e.c)} ? ${full(e.a)} : ${full(e.b)})`;
        case 'call':
            return `${e.fn}(${e.args.map(full).join(',')})`;
        case 'bin':
            return `(${full(e.l)} ${e.op} ${full(e.r)})`;
    }
}

const numberText = fc.oneof(
    fc.integer({ min: 0, max: 100 }).map(String),
    fc.integer({ min: 0, max: 40000 }).map(String),
    fc
        .tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }))
        .map(([i, f]) => `${i}.${String(f).padStart(2, '0')}`),
);
const knownName = fc.constantFrom(...Object.keys(ENV));
const anyName = fc.oneof(knownName, fc.constantFrom('CM.missing', 'M9.x'));

const exprArb = fc.letrec<{ expr: Expr }>((tie) => ({
    expr: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        numberText.map((text): Expr => ({ t: 'num', text })),
        fc
            .oneof({ weight: 9, arbitrary: knownName }, { weight: 1, arbitrary: anyName })
            .map((name): Expr => ({ t: 'name', name })),
        anyName.map((name): Expr => ({ t: 'exists', name })),
        fc
            .tuple(
                fc.constantFrom('neg', 'not', 'plus') as fc.Arbitrary<'neg' | 'not' | 'plus'>,
                tie('expr'),
            )
            .map(([t, e]): Expr => ({ t, e })),
        fc
            .tuple(fc.constantFrom(...Object.keys(PREC)), tie('expr'), tie('expr'))
            .map(([op, l, r]): Expr => ({ t: 'bin', op, l, r })),
        fc
            .tuple(tie('expr'), tie('expr'), tie('expr'))
            .map(([c, a, b2]): Expr => ({ t: 'cond', c, a, b: b2 })),
        fc
            .oneof(
                fc.tuple(
                    fc.constantFrom('min', 'max'),
                    fc.array(tie('expr'), { minLength: 1, maxLength: 4 }),
                ),
                fc.tuple(
                    fc.constantFrom('abs', 'round', 'sqrt', 'floor', 'ceil'),
                    tie('expr').map((e) => [e]),
                ),
                fc.tuple(fc.constant('clamp'), fc.tuple(tie('expr'), tie('expr'), tie('expr'))),
            )
            .map(([fn, args]): Expr => ({ t: 'call', fn, args: [...args] })),
    ),
})).expr;

type Outcome = { value: number } | { error: string };

function expected(e: Expr): Outcome {
    try {
        const v = reference(e);
        return { value: v === 0 ? 0 : v };
    } catch (err) {
        if (err instanceof MathFailure) return { error: 'FORMULA_MATH' };
        if (err instanceof NameFailure) return { error: 'FORMULA_NAME' };
        throw err;
    }
}

function actual(src: string): Outcome {
    try {
        return { value: evaluate(src, resolve) };
    } catch (err) {
        assert.ok(err instanceof FormulaError, `not a FormulaError: ${String(err)}`);
        return { error: err.code };
    }
}

describe('formula evaluator properties', () => {
    it('evaluates generated expressions like the reference, with minimal and full parentheses', () => {
        let values = 0;
        let long = 0;
        const runs = 3000 * SCALE;
        fc.assert(
            fc.property(exprArb, (e) => {
                const want = expected(e);
                if ('value' in want) values++;
                if (minimal(e).length > 30) long++;
                const min = minimal(e);
                const src = min.length <= 2000 ? min : full(e);
                assert.deepEqual(actual(src), want, src);
                const all = full(e);
                if (all.length <= 2000) assert.deepEqual(actual(all), want, all);
            }),
            { numRuns: runs },
        );
        // the generator must produce substantial expressions, most of which evaluate
        assert.ok(values > runs * 0.5, `only ${values} of ${runs} expressions had a value`);
        assert.ok(
            long > runs * 0.2,
            `only ${long} of ${runs} expressions were longer than 30 characters`,
        );
    });

    it('random text only ever fails with a coded FormulaError, and quickly', () => {
        const alphabet = fc.constantFrom(
            ...'0123456789.eE+-*/%&|^<>=!?:(),_ abcxyzCMEM'.split(''),
            '&&',
            '||',
            '==',
            '<=',
            'min(',
            'max(',
            'clamp(',
            'exists(',
            'sqrt(',
            'CM.a',
            'M3.current_l1',
            'constructor',
            '__proto__',
        );
        const text = fc.oneof(
            fc.string({ unit: alphabet, maxLength: 60 }),
            fc.string({ unit: 'binary', maxLength: 60 }),
            fc.string({ unit: alphabet, minLength: 900, maxLength: 1200 }),
        );
        fc.assert(
            fc.property(text, (src) => {
                const started = process.hrtime.bigint();
                try {
                    const formula = parseFormula(src);
                    const value = formula.evaluate(resolve);
                    assert.ok(Number.isFinite(value), `${src} gave ${value}`);
                } catch (err) {
                    assert.ok(
                        err instanceof FormulaError,
                        `${JSON.stringify(src)} threw ${String(err)}`,
                    );
                    assert.ok(CODES.has(err.code), err.code);
                    assert.match(err.message, /\S/);
                }
                const ms = Number(process.hrtime.bigint() - started) / 1e6;
                assert.ok(ms < 200, `${JSON.stringify(src.slice(0, 40))} took ${ms} ms`);
            }),
            { numRuns: 2000 * SCALE },
        );
    });
});
