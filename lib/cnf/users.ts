// Users, their RFIDs/PINs, the EVSEs they may use, their charging rules and budgets, behind a
// small interface.
import { randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { ChargingRuleSchema } from '../rules/rules';
import { describeIssues } from '../site/schema';
import { BudgetSchema } from '../users/budget';
import { badRequest, CnfError } from './errors';

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

/** A user object checked against the schema; a 400 naming the field otherwise. */
export function parseUser(input: unknown): User {
    const r = UserSchema.safeParse(input);
    if (!r.success) throw badRequest(describeIssues(r.error, 'user'));
    return r.data;
}

/**
 * Why a user cannot be stored beside the others, or null: each card, PIN and user id must name
 * one user only, or a token would authorise as someone else.
 */
export function conflictOf(users: UserDirectory, user: User): string | null {
    const other = (owner: User | undefined) => owner !== undefined && owner.id !== user.id;
    for (const rfid of user.rfids) {
        if (other(users.byRfid(rfid.id)) || (rfid.id !== user.id && users.get(rfid.id))) {
            return `user.rfids: ${rfid.id} belongs to another user`;
        }
    }
    if (other(users.byRfid(user.id))) return `user.id: ${user.id} belongs to another user`;
    return null;
}

/**
 * A change of a stored user by its admin: the fields the body names replace the stored ones,
 * the rest stays. A card that keeps its id keeps the fields the body does not name.
 */
export function adminChange(existing: User | undefined, patch: Record<string, unknown>): unknown {
    if (!existing) return patch;
    const merged: Record<string, unknown> = { ...existing, ...patch };
    if (Array.isArray(patch.rfids)) {
        merged.rfids = patch.rfids.map((card: unknown) => {
            const id = (card as { id?: unknown } | null)?.id;
            const stored = existing.rfids.find((r) => r.id === id);
            return stored && isObject(card) ? { ...stored, ...card } : card;
        });
    }
    return merged;
}

/** What users may change about themselves without the admin password (the vendor's user page). */
const SELF_FIELDS: ReadonlySet<string> = new Set(['id', 'name', 'display', 'rfids']);
const SELF_CARD_FIELDS: ReadonlySet<string> = new Set(['id', 'name']);

const adminOnly = (field: string): CnfError =>
    new CnfError(403, `${field} needs the admin password`);

/**
 * A change a user makes to itself, identified by its id: its name, whether it is displayed, and
 * the names and PINs of its cards (card i of the body is the stored card i). Everything else —
 * wallboxes, budgets, charging rules, what a card may do, adding or removing cards — needs the
 * admin password; a field sent unchanged is fine (a client posting get_user back).
 */
export function selfChange(existing: User, patch: Record<string, unknown>): User {
    const merged: Record<string, unknown> = { ...existing, ...patch };
    if (patch.rfids !== undefined) {
        if (!Array.isArray(patch.rfids) || patch.rfids.length !== existing.rfids.length) {
            throw adminOnly('adding or removing cards');
        }
        merged.rfids = patch.rfids.map((card: unknown, i) =>
            isObject(card) ? { ...existing.rfids[i], ...card } : card,
        );
    }
    const user = parseUser(merged);
    for (const key of Object.keys(UserSchema.shape)) {
        if (SELF_FIELDS.has(key)) continue;
        const was = (existing as Record<string, unknown>)[key];
        if (!isDeepStrictEqual((user as Record<string, unknown>)[key], was)) throw adminOnly(key);
    }
    user.rfids.forEach((card, i) => {
        const was = existing.rfids[i]! as Record<string, unknown>;
        for (const key of new Set([...Object.keys(card), ...Object.keys(was)])) {
            if (SELF_CARD_FIELDS.has(key)) continue;
            if (!isDeepStrictEqual((card as Record<string, unknown>)[key], was[key])) {
                throw adminOnly(`rfids[${i}].${key}`);
            }
        }
    });
    return user;
}

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
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
        const user = parseUser(input);
        const conflict = conflictOf(this, user);
        if (conflict) throw badRequest(conflict);
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
