import assert from 'node:assert/strict';
import {
    evaluate,
    FormulaError,
    isPlainNumber,
    MAX_AST_NODES,
    MAX_FORMULA_LENGTH,
    MAX_NESTING_DEPTH,
    parseFormula,
    parseNumberOrFormula,
    resolverFrom,
    valueOf,
    type Resolver,
} from '../../../lib/rules/formula';

const names = resolverFrom({
    'CM.AVAIL': 50,
    'CM.TARIF': 1,
    'M3.current': 12000,
    'M3.current_l1': 9000,
    'E1.power_w': 7400,
    'E1.com_err': false,
    'GM.surplus': 4200,
    'date.hour': 13,
    'PB.input1': true,
    _rule_val: 6000,
});

function fails(src: string, resolve: Resolver = names): FormulaError {
    try {
        evaluate(src, resolve);
    } catch (err) {
        assert.ok(
            err instanceof FormulaError,
            `expected a FormulaError for ${src}, got ${String(err)}`,
        );
        return err;
    }
    assert.fail(`expected ${JSON.stringify(src)} to fail`);
}

describe('formula evaluator', () => {
    describe('operators and functions', () => {
        const cases: [string, number][] = [
            ['1 + 2', 3],
            ['7 - 10', -3],
            ['6 * 7', 42],
            ['7 / 2', 3.5],
            ['7 % 3', 1],
            ['-7 % 3', -1],
            ['7.5 % 2', 1.5],
            ['12 & 10', 8],
            ['12 | 3', 15],
            ['-1 & 255', 255],
            ['5.9 & 7', 5],
            ['2 ^ 10', 1024],
            ['10^2', 100],
            ['4 ^ 0.5', 2],
            ['2 ^ -1', 0.5],
            ['1 < 2', 1],
            ['2 < 2', 0],
            ['2 <= 2', 1],
            ['3 > 2', 1],
            ['2 >= 3', 0],
            ['2 == 2', 1],
            ['2 != 2', 0],
            ['!0', 1],
            ['!5', 0],
            ['!!7', 1],
            ['1 && 2', 1],
            ['1 && 0', 0],
            ['0 || 0', 0],
            ['0 || -3', 1],
            ['1 ? 10 : 20', 10],
            ['0 ? 10 : 20', 20],
            ['-(3)', -3],
            ['+4', 4],
            ['- -4', 4],
            ['(1 + 2) * 3', 9],
            ['min(3, 1, 2)', 1],
            ['min(5)', 5],
            ['max(3, 1, 2)', 3],
            ['abs(-2)', 2],
            ['clamp(5, 6, 16)', 6],
            ['clamp(20, 6, 16)', 16],
            ['clamp(10, 6, 16)', 10],
            ['round(2.5)', 3],
            ['round(-2.5)', -3],
            ['round(2.4)', 2],
            ['sqrt(16)', 4],
            ['floor(-1.5)', -2],
            ['ceil(1.2)', 2],
            ['exists(CM.AVAIL)', 1],
            ['exists(CM.nothing)', 0],
            ['1.25 + .75', 2],
            ['1e3', 1000],
            ['0 * -1', 0],
        ];
        for (const [src, expected] of cases) {
            it(`${src} = ${expected}`, () => {
                assert.equal(evaluate(src, names), expected);
            });
        }
    });

    describe('precedence and associativity', () => {
        const cases: [string, number][] = [
            ['1 + 2 * 3', 7],
            ['2 * 3 + 1', 7],
            ['10 - 4 - 3', 3],
            ['100 / 10 / 5', 2],
            ['2 * 3 % 4', 2],
            ['2 ^ 3 ^ 2', 512],
            ['-2 ^ 2', -4],
            ['(-2) ^ 2', 4],
            ['2 * 3 ^ 2', 18],
            ['1 + 2 < 4', 1],
            ['1 < 2 == 1', 1],
            ['3 == 3 & 1', 1],
            ['6 & 3 == 3', 0],
            ['4 | 1 & 2', 4],
            ['1 || 0 && 0', 1],
            ['0 && 0 || 1', 1],
            ['!0 + 1', 2],
            ['!(0 + 1)', 0],
            ['1 ? 2 : 3 ? 4 : 5', 2],
            ['0 ? 2 : 0 ? 4 : 5', 5],
            ['0 ? 1 : 2 + 3', 5],
            ['1 < 2 ? 10 : 20', 10],
            ['1 ? 0 ? 7 : 8 : 9', 8],
            ['min(1 + 1, 3) * 2', 4],
        ];
        for (const [src, expected] of cases) {
            it(`${src} = ${expected}`, () => {
                assert.equal(evaluate(src, names), expected);
            });
        }
    });

    describe('names', () => {
        it('resolves dotted device, meter, CM, date and input names', () => {
            assert.equal(evaluate('55000 * CM.AVAIL / 100', names), 27500);
            assert.equal(evaluate('min(16000, 29000 - M3.current)', names), 16000);
            assert.equal(evaluate('M3.current_l1 + E1.power_w + GM.surplus', names), 20600);
            assert.equal(evaluate('date.hour >= 12 && CM.TARIF', names), 1);
            assert.equal(evaluate('max(10000, _rule_val)', names), 10000);
        });
        it('reads booleans as 1 and 0', () => {
            assert.equal(evaluate('PB.input1 + E1.com_err', names), 1);
        });
        it('reports the names a formula reads, including those only tested', () => {
            const formula = parseFormula('exists(CM.x) ? CM.x : M3.current + M3.current');
            assert.deepEqual([...formula.names].sort(), ['CM.x', 'M3.current']);
            assert.equal(formula.constant, false);
            assert.equal(parseFormula('1 + 2').constant, true);
        });
        it('evaluates a compiled formula again with other values', () => {
            const formula = parseFormula('E1.power_w / 230');
            assert.equal(formula.evaluate(resolverFrom({ 'E1.power_w': 2300 })), 10);
            assert.equal(formula.evaluate(resolverFrom(new Map([['E1.power_w', 4600]]))), 20);
            assert.equal(formula.source, 'E1.power_w / 230');
        });
        it('does not read a name on a branch it does not take', () => {
            assert.equal(evaluate('exists(CM.x) && CM.x > 3', names), 0);
            assert.equal(evaluate('1 || CM.x', names), 1);
            assert.equal(evaluate('CM.AVAIL > 10 ? 1 : CM.x', names), 1);
            assert.equal(evaluate('0 && 1 / 0', names), 0);
        });
        it('names an unknown name and where it is', () => {
            const err = fails('1 + CM.nothing');
            assert.equal(err.code, 'FORMULA_NAME');
            assert.equal(err.message, "unknown name 'CM.nothing' at 4");
            assert.equal(err.position, 4);
        });
        it('rejects a name whose value is not a finite number', () => {
            const resolve: Resolver = (n) => (n === 'M1.x' ? NaN : undefined);
            assert.equal(fails('M1.x', resolve).message, "'M1.x' has no finite numeric value at 0");
            const text = (() => 'abc') as unknown as Resolver;
            assert.equal(fails('M1.x', text).code, 'FORMULA_NAME');
        });
        it('turns a failing resolver into a FORMULA_NAME error', () => {
            const err = fails('2 * M1.x', () => {
                throw new Error('meter offline');
            });
            assert.equal(err.code, 'FORMULA_NAME');
            assert.equal(err.message, "cannot read 'M1.x' at 4: meter offline");
            assert.equal(
                evaluate('exists(M1.x)', () => assert.fail('x')),
                0,
            );
        });
    });

    describe('errors', () => {
        const bad: [string, string, string][] = [
            ['', 'FORMULA_SYNTAX', 'empty formula at 0'],
            ['   ', 'FORMULA_SYNTAX', 'empty formula at 0'],
            ['1 +', 'FORMULA_SYNTAX', 'unexpected end of formula at 3'],
            ['(1 + 2', 'FORMULA_SYNTAX', "expected ')' but found end of formula at 6"],
            ['(1 + 2))', 'FORMULA_SYNTAX', "unexpected ')' at 7"],
            ['1 2', 'FORMULA_SYNTAX', "unexpected '2' at 2"],
            ['* 3', 'FORMULA_SYNTAX', "unexpected '*' at 0"],
            ['1 = 2', 'FORMULA_SYNTAX', "unexpected '=' (compare with '==') at 2"],
            ['1 ? 2', 'FORMULA_SYNTAX', "expected ':' but found end of formula at 5"],
            ['1 : 2', 'FORMULA_SYNTAX', "unexpected ':' at 2"],
            ['2x', 'FORMULA_SYNTAX', "unexpected 'x' at 1"],
            ['1.2.3', 'FORMULA_SYNTAX', "unexpected '.' at 3"],
            ['CM.', 'FORMULA_SYNTAX', "unexpected '.' at 2"],
            ['CM..x', 'FORMULA_SYNTAX', "unexpected '.' at 2"],
            ['.', 'FORMULA_SYNTAX', "unexpected '.' at 0"],
            ['1 # 2', 'FORMULA_SYNTAX', "unexpected character '#' at 2"],
            ['"a"', 'FORMULA_SYNTAX', `unexpected character '"' at 0`],
            ['a[0]', 'FORMULA_SYNTAX', "unexpected character '[' at 1"],
            ['1;2', 'FORMULA_SYNTAX', "unexpected character ';' at 1"],
            ['x => 1', 'FORMULA_SYNTAX', "unexpected '=' (compare with '==') at 2"],
            ['\u0000', 'FORMULA_SYNTAX', 'unexpected character U+0000 at 0'],
            ['foo(1)', 'FORMULA_SYNTAX', "unknown function 'foo' at 0"],
            ['min()', 'FORMULA_SYNTAX', 'min() takes at least 1 argument, got 0 at 0'],
            ['abs(1, 2)', 'FORMULA_SYNTAX', 'abs() takes 1 argument, got 2 at 0'],
            ['clamp(1, 2)', 'FORMULA_SYNTAX', 'clamp() takes 3 arguments, got 2 at 0'],
            ['min(1,)', 'FORMULA_SYNTAX', "unexpected ')' at 6"],
            ['exists(1)', 'FORMULA_SYNTAX', "exists() takes a name, found '1' at 7"],
            ['exists(a + b)', 'FORMULA_SYNTAX', "expected ')' but found '+' at 9"],
            ['1e999', 'FORMULA_SYNTAX', 'number 1e999 out of range at 0'],
            ['1 / 0', 'FORMULA_MATH', 'division by zero at 2'],
            ['5 % 0', 'FORMULA_MATH', 'modulo by zero at 2'],
            ['1 / (M3.current - 12000)', 'FORMULA_MATH', 'division by zero at 2'],
            ['sqrt(-4)', 'FORMULA_MATH', 'square root of a negative number at 0'],
            ['10 ^ 400', 'FORMULA_MATH', 'result of ^ is not a finite number at 3'],
            ['(-8) ^ 0.5', 'FORMULA_MATH', 'result of ^ is not a finite number at 5'],
            ['1e300 * 1e300', 'FORMULA_MATH', 'result of * is not a finite number at 6'],
            ['1e300 * 1e10 - 1', 'FORMULA_MATH', 'result of * is not a finite number at 6'],
            ['1e20 & 1', 'FORMULA_MATH', 'operand of a bitwise operator is too large at 5'],
        ];
        for (const [src, code, message] of bad) {
            it(`${JSON.stringify(src)} → ${code}: ${message}`, () => {
                const err = fails(src);
                assert.equal(err.code, code);
                assert.equal(err.message, message);
                assert.equal(err.name, 'FormulaError');
                assert.ok(err instanceof Error);
            });
        }

        it('rejects formulas beyond the length limit', () => {
            const long = '1+'.repeat(MAX_FORMULA_LENGTH / 2) + '1';
            const err = fails(long);
            assert.equal(err.code, 'FORMULA_LIMIT');
            assert.match(err.message, /^formula too long: 2001 characters, at most 2000$/);
        });
        it('rejects nesting beyond the depth limit but accepts it up to the limit', () => {
            const deep = (n: number) => '('.repeat(n) + '1' + ')'.repeat(n);
            assert.equal(evaluate(deep(MAX_NESTING_DEPTH)), 1);
            const err = fails(deep(MAX_NESTING_DEPTH + 1));
            assert.equal(err.code, 'FORMULA_LIMIT');
            assert.equal(err.message, 'formula nested too deeply: more than 64 levels at 64');
            assert.equal(fails('-'.repeat(100) + '1').code, 'FORMULA_LIMIT');
            assert.equal(fails('!'.repeat(100) + '1').code, 'FORMULA_LIMIT');
            assert.equal(fails('2^'.repeat(100) + '1').code, 'FORMULA_LIMIT');
            assert.equal(fails('1?'.repeat(100) + '1' + ':1'.repeat(100)).code, 'FORMULA_LIMIT');
            assert.equal(fails('abs('.repeat(100) + '1' + ')'.repeat(100)).code, 'FORMULA_LIMIT');
        });
        it('rejects formulas with too many elements', () => {
            assert.equal(evaluate(`min(${'1,'.repeat(MAX_AST_NODES / 2)}1)`), 1);
            const err = fails(`${'1+'.repeat(MAX_AST_NODES / 2)}1`);
            assert.equal(err.code, 'FORMULA_LIMIT');
            assert.match(err.message, /^formula too large: more than 1000 elements at \d+$/);
        });
        it('rejects input that is not text', () => {
            assert.throws(() => parseFormula(42 as unknown as string), {
                code: 'FORMULA_SYNTAX',
                message: 'a formula must be text',
            });
        });
    });

    describe('never executes code', () => {
        const attempts: [string, string][] = [
            ['constructor', 'FORMULA_NAME'],
            ['__proto__', 'FORMULA_NAME'],
            ['toString', 'FORMULA_NAME'],
            ['constructor.constructor', 'FORMULA_NAME'],
            ['process.exit(1)', 'FORMULA_SYNTAX'],
            ['constructor.constructor("process.exit(1)")()', 'FORMULA_SYNTAX'],
            ['require("child_process")', 'FORMULA_SYNTAX'],
            ['this', 'FORMULA_NAME'],
            ['globalThis.process', 'FORMULA_NAME'],
            ['eval(1)', 'FORMULA_SYNTAX'],
            ['Function(1)', 'FORMULA_SYNTAX'],
            ['__proto__.polluted', 'FORMULA_NAME'],
            ['`1`', 'FORMULA_SYNTAX'],
            ['1; process.exit(1)', 'FORMULA_SYNTAX'],
            ['new Date()', 'FORMULA_SYNTAX'],
        ];
        for (const [src, code] of attempts) {
            it(`${src} → ${code}`, () => {
                let called = false;
                const record = resolverFrom({});
                const err = fails(src, (name) => {
                    called = true;
                    return record(name);
                });
                assert.equal(err.code, code);
                if (code === 'FORMULA_SYNTAX') assert.equal(called, false);
            });
        }
        it('the record resolver ignores inherited properties', () => {
            const resolve = resolverFrom({ a: 1 });
            assert.equal(resolve('constructor'), undefined);
            assert.equal(resolve('__proto__'), undefined);
            assert.equal(resolve('hasOwnProperty'), undefined);
            assert.equal(evaluate('exists(constructor) + exists(a)', resolve), 1);
        });
    });

    describe('number or formula settings', () => {
        it('tells a plain number from a formula', () => {
            for (const text of ['32000', ' 16000 ', '-1.5', '+2', '1e3', '.5']) {
                assert.equal(isPlainNumber(text), true, text);
            }
            for (const text of [
                '',
                '1 + 1',
                'min(16000, 29000 - M3.current)',
                'CM.x',
                '1e999',
                '0x10',
                'abc',
            ]) {
                assert.equal(isPlainNumber(text), false, text);
            }
        });
        it('parses either kind and gives its value', () => {
            assert.deepEqual(parseNumberOrFormula('32000'), { kind: 'number', value: 32000 });
            assert.deepEqual(parseNumberOrFormula(16000), { kind: 'number', value: 16000 });
            const setting = parseNumberOrFormula('min(16000, 29000 - M3.current)');
            assert.equal(setting.kind, 'formula');
            assert.equal(valueOf(setting, names), 16000);
            assert.equal(valueOf(parseNumberOrFormula('6000'), names), 6000);
        });
        it('rejects a setting that is neither', () => {
            assert.throws(() => parseNumberOrFormula('min(16000,'), { code: 'FORMULA_SYNTAX' });
            assert.throws(() => parseNumberOrFormula(Infinity), { code: 'FORMULA_MATH' });
        });
    });
});
