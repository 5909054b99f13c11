import assert from 'node:assert/strict';
import { VariableError } from '../../../lib/rules/errors';
import { resolverFrom } from '../../../lib/rules/formula';
import { CmVariables, validateVariableName } from '../../../lib/rules/variables';

const others = resolverFrom({ 'M1.current': 8000, 'CM._num_charging': 2 });

function byName(vars: CmVariables): Record<string, number | null> {
    return Object.fromEntries(vars.list().vars.map((v) => [v.name, v.val]));
}

describe('CM variables', () => {
    describe('names', () => {
        it('accepts digits and letters only', () => {
            for (const name of ['AVAIL', 'var1', '1', 'TARIF', 'a'.repeat(64)]) {
                assert.equal(validateVariableName(name), name);
            }
        });
        it('rejects anything else with a clear message', () => {
            for (const name of [
                '',
                'a-b',
                'a.b',
                'a b',
                'ä',
                '_x',
                'CM.x',
                'a'.repeat(65),
                '__proto__',
                'NaN',
                'Infinity',
                'inf',
                'INF',
            ]) {
                assert.throws(
                    () => validateVariableName(name),
                    (err: unknown) =>
                        err instanceof VariableError &&
                        err.code === 'VARIABLE_NAME' &&
                        err.message.startsWith(
                            `invalid variable name '${name}': only digits and letters`,
                        ),
                );
            }
            assert.throws(() => validateVariableName(42), { code: 'VARIABLE_NAME' });
        });
    });

    describe('set, list and clear', () => {
        it('sets numbers and formulas and lists them with their values', () => {
            const vars = new CmVariables();
            vars.set('var1', 1.5);
            vars.set('var2', '2');
            vars.set('limit', 'min(16000, 29000 - M1.current)');
            assert.deepEqual(vars.list(), {
                vars: [
                    { name: 'var1', expr: 1.5, val: 1.5 },
                    { name: 'var2', expr: '2', val: 2 },
                    { name: 'limit', expr: 'min(16000, 29000 - M1.current)', val: null },
                ],
            });
            assert.equal(vars.evaluateAll(others).errors.size, 0);
            assert.equal(vars.value('limit'), 16000);
            assert.equal(vars.value('nothing'), undefined);
        });
        it('a constant formula has its value at once', () => {
            const vars = new CmVariables();
            vars.set('x', '2 * 3');
            assert.equal(vars.value('x'), 6);
        });
        it('overwrites only the listed variables without clear, all of them with clear', () => {
            const vars = new CmVariables();
            vars.setMany([
                { name: 'a', expr: 1 },
                { name: 'b', expr: 2 },
            ]);
            vars.setMany([{ name: 'b', expr: 3 }]);
            assert.deepEqual(byName(vars), { a: 1, b: 3 });
            vars.setMany(
                [
                    { name: 'var1', expr: 1.5 },
                    { name: 'var2', expr: 2 },
                ],
                { clear: true },
            );
            assert.deepEqual(byName(vars), { var1: 1.5, var2: 2 });
            vars.clear();
            assert.deepEqual(vars.list(), { vars: [] });
        });
        it('reads other names and its own variables as CM.<name>', () => {
            const vars = new CmVariables();
            vars.set('AVAIL', 60);
            vars.set('limit', '55000 * CM.AVAIL / 100 + CM._num_charging');
            vars.evaluateAll(others);
            assert.equal(vars.value('limit'), 33002);
            const resolve = vars.resolver(others);
            assert.equal(resolve('CM.AVAIL'), 60);
            assert.equal(resolve('CM.limit'), 33002);
            assert.equal(resolve('M1.current'), 8000);
            assert.equal(resolve('CM.nothing'), undefined);
        });
        it('calculates variables in dependency order whatever the order they were set in', () => {
            const vars = new CmVariables();
            vars.set('c', 'CM.b * 2');
            vars.set('b', 'CM.a + 1');
            vars.set('a', '10');
            assert.equal(vars.evaluateAll(others).errors.size, 0);
            assert.deepEqual(byName(vars), { c: 22, b: 11, a: 10 });
        });
    });

    describe('all or nothing', () => {
        it('changes nothing when one entry of a batch is invalid', () => {
            const vars = new CmVariables([{ name: 'keep', expr: 1 }]);
            const before = vars.list();
            const bad = [
                [
                    { name: 'ok', expr: 1 },
                    { name: 'bad-name', expr: 2 },
                ],
                [
                    { name: 'ok', expr: 1 },
                    { name: 'bad', expr: 'min(1,' },
                ],
                [
                    { name: 'ok', expr: 1 },
                    { name: 'bad', expr: Infinity },
                ],
                [
                    { name: 'ok', expr: 1 },
                    { name: 'bad', expr: { x: 1 } },
                ],
            ] as unknown as { name: string; expr: number }[][];
            for (const batch of bad) {
                assert.throws(() => vars.setMany(batch, { clear: true }), VariableError);
                assert.deepEqual(vars.list(), before);
                assert.equal(vars.dirty, false);
            }
        });
        it('names the variable and the formula problem', () => {
            const vars = new CmVariables();
            assert.throws(() => vars.set('x', '1 + )'), {
                code: 'VARIABLE_EXPR',
                message: "variable 'x': unexpected ')' at 4",
            });
            assert.throws(() => vars.set('x', Number.NaN), {
                code: 'VARIABLE_EXPR',
                message: "variable 'x': NaN is not a finite number",
            });
        });
    });

    describe('cycles and failures', () => {
        it('reports a cycle for its members and still calculates the rest', () => {
            const vars = new CmVariables();
            vars.setMany([
                { name: 'a', expr: 'CM.b + 1' },
                { name: 'b', expr: 'CM.a + 1' },
                { name: 'self', expr: 'CM.self * 2' },
                { name: 'c', expr: 'CM.a + 5' },
                { name: 'd', expr: 'M1.current / 2' },
            ]);
            const { errors } = vars.evaluateAll(others);
            assert.deepEqual([...errors.keys()].sort(), ['a', 'b', 'c', 'self']);
            assert.equal(errors.get('a')!.code, 'VARIABLE_CYCLE');
            assert.equal(errors.get('a')!.message, 'variable cycle: CM.a → CM.b → CM.a');
            assert.deepEqual(errors.get('b')!.variables, ['a', 'b']);
            assert.equal(errors.get('self')!.message, 'variable cycle: CM.self → CM.self');
            assert.equal(errors.get('c')!.code, 'VARIABLE_EVAL');
            assert.match(
                errors.get('c')!.message,
                /^variable 'c': 'CM\.a' has no value \(variable cycle/,
            );
            assert.deepEqual(byName(vars), { a: null, b: null, self: null, c: null, d: 4000 });
        });
        it('recovers once the cycle is broken', () => {
            const vars = new CmVariables();
            vars.set('a', 'CM.b + 1');
            vars.set('b', 'CM.a + 1');
            assert.equal(vars.evaluateAll(others).errors.size, 2);
            vars.set('b', '1');
            assert.equal(vars.evaluateAll(others).errors.size, 0);
            assert.equal(vars.value('a'), 2);
        });
        it('reports unknown names and math errors per variable', () => {
            const vars = new CmVariables();
            vars.set('u', 'M9.power_w');
            vars.set('z', '1 / (M1.current - 8000)');
            vars.set('e', 'exists(M9.power_w) ? M9.power_w : 7');
            const { errors } = vars.evaluateAll(others);
            assert.equal(errors.get('u')!.message, "variable 'u': unknown name 'M9.power_w' at 0");
            assert.equal(errors.get('z')!.message, "variable 'z': division by zero at 2");
            assert.equal(vars.value('e'), 7);
        });
    });

    describe('persistence', () => {
        it('starts from the persisted variables, clean', () => {
            const vars = new CmVariables([
                { name: 'AVAIL', expr: 100 },
                { name: 'lim', expr: 'CM.AVAIL * 320' },
            ]);
            assert.equal(vars.dirty, false);
            vars.evaluateAll(others);
            assert.equal(vars.value('lim'), 32000);
        });
        it('is dirty only when a saved value actually changed', () => {
            const vars = new CmVariables([{ name: 'AVAIL', expr: 100 }]);
            assert.equal(vars.set('AVAIL', 100), false);
            assert.equal(vars.dirty, false);
            assert.equal(vars.set('AVAIL', 50), true);
            assert.equal(vars.dirty, true);
            assert.equal(vars.set('AVAIL', 100), true);
            assert.equal(vars.dirty, false, 'back to what was written');
            vars.set('AVAIL', 60);
            vars.markSaved();
            assert.equal(vars.dirty, false);
            assert.deepEqual(vars.persistent(), [{ name: 'AVAIL', expr: 60 }]);
        });
        it('keeps tmp changes out of the saved set', () => {
            const vars = new CmVariables([{ name: 'AVAIL', expr: 100 }]);
            assert.equal(vars.set('AVAIL', 40, { tmp: true }), false);
            assert.equal(vars.set('TARIF', 1, { tmp: true }), false);
            assert.equal(vars.dirty, false);
            assert.deepEqual(byName(vars), { AVAIL: 40, TARIF: 1 });
            assert.deepEqual(vars.persistent(), [{ name: 'AVAIL', expr: 100 }]);

            vars.clear({ tmp: true });
            assert.deepEqual(vars.list(), { vars: [] });
            assert.deepEqual(
                vars.persistent(),
                [{ name: 'AVAIL', expr: 100 }],
                'back after a restart',
            );

            vars.setMany([{ name: 'x', expr: 1 }]);
            assert.deepEqual(vars.persistent(), [
                { name: 'AVAIL', expr: 100 },
                { name: 'x', expr: 1 },
            ]);
            vars.clear();
            assert.deepEqual(vars.persistent(), []);
            assert.equal(vars.dirty, true);
        });
        it('a restart from the persisted set gives the saved variables back', () => {
            const vars = new CmVariables();
            vars.set('a', 1);
            vars.set('b', 'CM.a + 1');
            vars.set('t', 5, { tmp: true });
            const restarted = new CmVariables(vars.persistent());
            restarted.evaluateAll(others);
            assert.deepEqual(byName(restarted), { a: 1, b: 2 });
        });
    });
});
