// Charging budgets per user or RFID card: kWh or minutes, one-off or reset every day, week,
// month or year (local time). A used-up budget stops charging until it resets or is topped up.
import { z } from 'zod';

export const BudgetSchema = z
    .object({
        unit: z.enum(['kwh', 'minutes']),
        /** kWh or minutes per period. */
        amount: z.coerce.number().min(0).max(1_000_000),
        reset: z.enum(['once', 'daily', 'weekly', 'monthly', 'yearly']).default('once'),
    })
    .strict();
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

/** The budget a charging session counts against: the card's own replaces the user's. */
export interface SessionBudget {
    /** `rfid:<card id>` or `user:<user id>`: whose usage it is. */
    readonly key: string;
    readonly budget: Budget;
}

export function sessionBudget(
    user: { id: string; budget?: Budget | undefined } | undefined,
    card: { id: string; budget?: Budget | undefined } | undefined,
): SessionBudget | null {
    if (card?.budget) return { key: `rfid:${card.id}`, budget: card.budget };
    if (user?.budget) return { key: `user:${user.id}`, budget: user.budget };
    return null;
}

/**
 * Usage per budget key. Each cycle adds what the wallbox's session record counted (energy from
 * its counter, time spent charging), so a budget and the session records agree.
 */
export class BudgetLedger {
    private readonly usage = new Map<string, BudgetUsage>();

    constructor(private readonly offsetMinutes?: number) {}

    /** Adds energy (Wh) and charging time (s) a session used to its budget's usage. */
    charge(session: SessionBudget, now: number, wh: number, chargingS: number): void {
        if (wh <= 0 && chargingS <= 0) return;
        const usage = consume(
            session.budget,
            this.usage.get(session.key),
            now,
            wh,
            chargingS,
            this.offsetMinutes,
        );
        this.usage.set(session.key, usage);
    }

    exhausted(session: SessionBudget, now: number): boolean {
        return exhausted(session.budget, this.usage.get(session.key), now, this.offsetMinutes);
    }

    remaining(session: SessionBudget, now: number): number {
        return remaining(session.budget, this.usage.get(session.key), now, this.offsetMinutes);
    }

    /** Usage by key, for the store. */
    snapshot(): Record<string, BudgetUsage> {
        return Object.fromEntries([...this.usage].map(([k, u]) => [k, { ...u }]));
    }

    /** Usage read back from the store. */
    restore(saved: Readonly<Record<string, BudgetUsage>>): void {
        this.usage.clear();
        for (const [k, u] of Object.entries(saved)) this.usage.set(k, { ...u });
    }

    /** Sets the usage of one key back to zero (a top-up). */
    reset(key: string): void {
        this.usage.delete(key);
    }
}
