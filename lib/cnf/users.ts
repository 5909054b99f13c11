// Users, their RFIDs/PINs, the EVSEs they may use, their charging rules and budgets, behind a
// small interface.
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { ChargingRuleSchema } from '../rules/rules';
import { describeIssues } from '../site/schema';
import { BudgetSchema } from '../users/budget';
import { badRequest } from './errors';

const RfidSchema = z
    .object({
        id: z.string().regex(/^[0-9A-Za-z]{1,32}$/, 'RFID/PIN must be 1..32 digits or letters'),
        name: z.string().max(100).default(''),
        ac_auth: z.boolean().default(true),
        ac_ovch: z.boolean().default(false),
        used_phases: z.number().int().min(0).max(7).default(0),
        /** While this card is in use, its budget replaces the user's. */
        budget: BudgetSchema.optional(),
    })
    .strict();

export const UserSchema = z
    .object({
        id: z.string().regex(/^[0-9]{4,20}$/, 'user id must be 4..20 digits'),
        name: z.string().max(100).default(''),
        display: z.boolean().default(true),
        dev_ids: z
            .array(z.string().regex(/^E[1-9][0-9]{0,4}$/))
            .max(1000)
            .default([]),
        rfids: z.array(RfidSchema).max(100).default([]),
        /** The user's charging rules; where both apply, the smaller of EVSE and user result wins. */
        charging_rules: z.array(ChargingRuleSchema).max(100).default([]),
        /** kWh or minutes per period; a used-up budget stops charging until it resets. */
        budget: BudgetSchema.optional(),
    })
    .strict();
export type User = z.output<typeof UserSchema>;

export interface UserDirectory {
    list(): readonly User[];
    get(id: string): User | undefined;
    /** Validates and stores one user (new or replacing the one with the same id); all or nothing. */
    set(input: unknown): User;
    /** The user an RFID or PIN belongs to. */
    byRfid(rfid: string): User | undefined;
    /** A fresh user id nobody has. */
    newId(): string;
}

/** The users table of the manager's editor (JSON text): every entry checked, the first problem named. */
export function parseUsersText(text: unknown): User[] {
    let list: unknown;
    try {
        list = JSON.parse(typeof text === 'string' && text.trim() ? text : '[]');
    } catch (err) {
        throw new Error(`users: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    if (!Array.isArray(list)) throw new Error('users must be an array');
    return list.map((u, i) => {
        const r = UserSchema.safeParse(u);
        if (!r.success) throw new Error(describeIssues(r.error, `users[${i}]`));
        return r.data;
    });
}

/** Users kept in memory for the manager's lifetime. */
export class MemoryUsers implements UserDirectory {
    private readonly users = new Map<string, User>();

    constructor(initial: readonly unknown[] = []) {
        for (const u of initial) this.set(u);
    }

    list(): readonly User[] {
        return [...this.users.values()];
    }

    get(id: string): User | undefined {
        return this.users.get(id);
    }

    set(input: unknown): User {
        const r = UserSchema.safeParse(input);
        if (!r.success) throw badRequest(describeIssues(r.error, 'user'));
        const user = r.data;
        for (const rfid of user.rfids) {
            const owner = this.byRfid(rfid.id);
            if (owner && owner.id !== user.id) {
                throw badRequest(`user.rfids: ${rfid.id} belongs to another user`);
            }
        }
        if (!this.users.has(user.id) && this.users.size >= 10_000) {
            throw badRequest('too many users');
        }
        this.users.set(user.id, user);
        return user;
    }

    byRfid(rfid: string): User | undefined {
        for (const u of this.users.values()) if (u.rfids.some((r) => r.id === rfid)) return u;
        return undefined;
    }

    newId(): string {
        for (;;) {
            const id = String(randomInt(1_000_000_000, 4_294_967_295));
            if (!this.users.has(id)) return id;
        }
    }
}
