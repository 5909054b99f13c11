// What /cnf adds to the users directory (lib/users/directory): changes by the admin and by users
// themselves, and the editor's users table.
import { isDeepStrictEqual } from 'node:util';
import { describeIssues } from '../site/schema';
import { parseUser, UserSchema, type User } from '../users/directory';
import { CnfError } from './errors';

export {
    conflictOf,
    MemoryUsers,
    parseUser,
    UserError,
    UserSchema,
    type User,
    type UserDirectory,
} from '../users/directory';

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
