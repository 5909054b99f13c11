import assert from 'node:assert/strict';
import {
    BudgetSchema,
    consume,
    exhausted,
    periodStart,
    remaining,
} from '../../../lib/users/budget';

const at = (y: number, m: number, d: number, h = 12) => Date.UTC(y, m - 1, d, h);

describe('charging budgets', () => {
    it('periods start at local midnight, Monday, the 1st and 1 January', () => {
        const now = at(2026, 11, 25, 10); // Wednesday
        assert.equal(periodStart('daily', now, 0), at(2026, 11, 25, 0));
        assert.equal(periodStart('weekly', now, 0), at(2026, 11, 23, 0));
        assert.equal(periodStart('monthly', now, 0), at(2026, 11, 1, 0));
        assert.equal(periodStart('yearly', now, 0), at(2026, 1, 1, 0));
        assert.equal(periodStart('once', now, 0), 0);
        // 23:30 UTC is already the next day at UTC+1.
        assert.equal(
            periodStart('daily', Date.UTC(2026, 10, 25, 23, 30), 60),
            Date.UTC(2026, 10, 25, 23, 0),
        );
    });

    it('a kWh budget is used up, stops charging, and resets with its period', () => {
        const budget = BudgetSchema.parse({ unit: 'kwh', amount: 10, reset: 'daily' });
        let usage = consume(budget, undefined, at(2026, 11, 25, 9), 6000, 3600, 0);
        assert.equal(remaining(budget, usage, at(2026, 11, 25, 10), 0), 4);
        usage = consume(budget, usage, at(2026, 11, 25, 11), 4500, 3600, 0);
        assert.ok(exhausted(budget, usage, at(2026, 11, 25, 12), 0));
        assert.equal(remaining(budget, usage, at(2026, 11, 26, 0), 0), 10, 'next day: full again');
    });

    it('minute budgets, weekly, monthly and yearly resets, one-off budgets never reset', () => {
        const minutes = BudgetSchema.parse({ unit: 'minutes', amount: 90, reset: 'weekly' });
        const usage = consume(minutes, undefined, at(2026, 11, 24), 0, 90 * 60, 0);
        assert.ok(exhausted(minutes, usage, at(2026, 11, 29), 0), 'same week (Sunday)');
        assert.ok(!exhausted(minutes, usage, at(2026, 11, 30), 0), 'next Monday');
        const monthly = BudgetSchema.parse({ unit: 'kwh', amount: 1, reset: 'monthly' });
        const m = consume(monthly, undefined, at(2026, 11, 30), 1000, 0, 0);
        assert.ok(exhausted(monthly, m, at(2026, 11, 30, 23), 0));
        assert.ok(!exhausted(monthly, m, at(2026, 12, 1), 0));
        const yearly = BudgetSchema.parse({ unit: 'kwh', amount: 1, reset: 'yearly' });
        const y = consume(yearly, undefined, at(2026, 12, 31), 1000, 0, 0);
        assert.ok(exhausted(yearly, y, at(2026, 12, 31, 23), 0));
        assert.ok(!exhausted(yearly, y, at(2027, 1, 1, 1), 0));
        const once = BudgetSchema.parse({ unit: 'kwh', amount: 1 });
        const o = consume(once, undefined, at(2026, 1, 1), 1000, 0, 0);
        assert.ok(exhausted(once, o, at(2030, 1, 1), 0), 'a one-off budget stays used');
    });

    it('rejects a budget with a bad unit or reset, naming it', () => {
        assert.throws(() => BudgetSchema.parse({ unit: 'kw', amount: 1 }), /unit/);
        assert.throws(
            () => BudgetSchema.parse({ unit: 'kwh', amount: 1, reset: 'hourly' }),
            /reset/,
        );
    });
});
