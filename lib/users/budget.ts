// Charging budgets per user or RFID card: kWh or minutes, one-off or reset every day, week,
// month or year (local time). A used-up budget stops charging until it resets or is topped up.
import { z } from 'zod';

export const BudgetSchema = z.object({
    unit: z.enum(['kwh', 'minutes']),
    /** kWh or minutes per period. */
    amount: z.coerce.number().min(0).max(1_000_000),
    reset: z.enum(['once', 'daily', 'weekly', 'monthly', 'yearly']).default('once'),
});
export type Budget = z.output<typeof BudgetSchema>;

export interface BudgetUsage {
    /** Energy (Wh) and charging time (s) used in the current period. */
    usedWh: number;
    usedS: number;
    /** Start of the period the usage belongs to (ms). */
    periodStart: number;
}

/** Start of the period containing `now`, in local time (`offsetMinutes` east of UTC). */
export function periodStart(
    reset: Budget['reset'],
    now: number,
    offsetMinutes = -new Date(now).getTimezoneOffset(),
): number {
    if (reset === 'once') return 0;
    const shift = offsetMinutes * 60_000;
    const d = new Date(now + shift);
    let start: number;
    switch (reset) {
        case 'daily':
            start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
            break;
        case 'weekly': {
            const monday = d.getUTCDate() - ((d.getUTCDay() + 6) % 7);
            start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), monday);
            break;
        }
        case 'monthly':
            start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
            break;
        default:
            start = Date.UTC(d.getUTCFullYear(), 0, 1);
    }
    return start - shift;
}

/** Usage in the period of `now`: a new period starts from zero. */
export function currentUsage(
    budget: Budget,
    usage: BudgetUsage | undefined,
    now: number,
    offsetMinutes?: number,
): BudgetUsage {
    const start = periodStart(budget.reset, now, offsetMinutes);
    if (!usage || usage.periodStart !== start) return { usedWh: 0, usedS: 0, periodStart: start };
    return usage;
}

/** Adds energy and time charged since the last call. */
export function consume(
    budget: Budget,
    usage: BudgetUsage | undefined,
    now: number,
    deltaWh: number,
    deltaS: number,
    offsetMinutes?: number,
): BudgetUsage {
    const u = currentUsage(budget, usage, now, offsetMinutes);
    return { ...u, usedWh: u.usedWh + Math.max(0, deltaWh), usedS: u.usedS + Math.max(0, deltaS) };
}

/** What is left in the budget's unit (kWh or minutes); ≤ 0 means charging must stop. */
export function remaining(
    budget: Budget,
    usage: BudgetUsage | undefined,
    now: number,
    offsetMinutes?: number,
): number {
    const u = currentUsage(budget, usage, now, offsetMinutes);
    return budget.unit === 'kwh' ? budget.amount - u.usedWh / 1000 : budget.amount - u.usedS / 60;
}

export function exhausted(
    budget: Budget,
    usage: BudgetUsage | undefined,
    now: number,
    offsetMinutes?: number,
): boolean {
    return remaining(budget, usage, now, offsetMinutes) <= 0;
}
