// Who may charge where: the users directory, the card, PIN or user id entered at each wallbox
// (enter_rfid, or a card held to the wallbox's own reader), and the vendor's rule that a wallbox
// with assigned users charges only once one of them is identified there. What was entered ends
// when the car is unplugged.
import type { EvseReading } from '../core/types';
import { sessionBudget, type SessionBudget } from './budget';
import { MemoryUsers, type User, type UserDirectory } from './directory';

/** A wallbox as authorisation sees it: its id, and the users its own entry assigns to it. */
export interface AuthWallbox {
    readonly dev_id: string;
    readonly users?: readonly string[] | undefined;
}

/** What authorisation reads of the site each cycle. */
export interface WallboxView {
    /** Every wallbox of the device table, in table order. */
    wallboxes(): readonly AuthWallbox[];
    wallbox(devId: string): AuthWallbox | undefined;
    /** The wallbox's latest reading, if it has one. */
    reading(devId: string): EvseReading | undefined;
}

/** A card, PIN or user id entered at a wallbox, and whose it is. */
export interface EnteredToken {
    rfid: string;
    user: string | null;
    at: number;
}

export class Authorisation {
    /** Card, PIN or user id entered per wallbox (enter_rfid, or the wallbox's reader). */
    readonly rfids = new Map<string, EnteredToken>();
    /** Bumped when a cycle changes what is entered (views that cache key on it). */
    revision = 0;
    private directory: UserDirectory;
    /** Per wallbox: its state when unplugging was last checked, and when the reader was. */
    private readonly lastState = new Map<string, number>();
    private readonly readerState = new Map<string, number>();
    /** A reader value left from a session that ended (card#count): it must not start the next. */
    private readonly staleReader = new Map<string, string>();

    constructor(
        private readonly site: WallboxView,
        users: UserDirectory = new MemoryUsers(),
    ) {
        this.directory = users;
    }

    get users(): UserDirectory {
        return this.directory;
    }

    /** Authorises against another directory from now on (e.g. the manager's stored users). */
    useDirectory(users: UserDirectory): void {
        this.directory = users;
    }

    /** The user identified at a wallbox (card, PIN or user id entered there), if any. */
    userAt(devId: string): User | undefined {
        const user = this.rfids.get(devId)?.user;
        return user ? this.directory.get(user) : undefined;
    }

    /** The budget the session at a wallbox counts against: the card's, else the user's. */
    sessionBudgetAt(devId: string): SessionBudget | null {
        const entered = this.rfids.get(devId);
        const user = this.userAt(devId);
        if (!entered || !user) return null;
        return sessionBudget(
            user,
            user.rfids.find((r) => r.id === entered.rfid),
        );
    }

    /** A wallbox needs authorisation as soon as a user is assigned to it (vendor rule). */
    needsAuth(devId: string): boolean {
        return needsAuthAt(devId, this.site.wallbox(devId), this.directory.list());
    }

    /** Whether the card, PIN or user id entered at the wallbox belongs to a user allowed there. */
    authorized(devId: string): boolean {
        const entered = this.rfids.get(devId);
        if (!entered?.user) return false;
        const user = this.directory.get(entered.user);
        return !!user && this.userAuthorizes(user, entered.rfid, devId);
    }

    /** Whether a card, PIN or user id would authorise charging at the wallbox. */
    authorizes(devId: string, token: string): boolean {
        const id = this.userFor(token);
        const user = id === null ? undefined : this.directory.get(id);
        return !!user && this.userAuthorizes(user, token, devId);
    }

    /**
     * A card, PIN or user id presented at the wallbox itself (e.g. OCPP Authorize): the same
     * rule as enter_rfid. Where users are assigned, only a token that authorises there is
     * accepted, and it then counts as entered there; without assigned users anyone may charge
     * (a known token is still recorded, for its user's budget).
     */
    present(devId: string, token: string, now: number): boolean {
        if (!this.accepts(devId, token)) return false;
        const user = this.userFor(token);
        if (user && this.rfids.get(devId)?.rfid !== token) {
            this.rfids.set(devId, { rfid: token, user, at: now });
            this.revision++;
        }
        return true;
    }

    /** Whether a token presented at the wallbox would be accepted (present() without recording). */
    accepts(devId: string, token: string): boolean {
        return !this.needsAuth(devId) || this.authorizes(devId, token);
    }

    private userAuthorizes(user: User, token: string, devId: string): boolean {
        const card = user.rfids.find((r) => r.id === token);
        if (card && !card.ac_auth) return false;
        const listed = this.site.wallbox(devId)?.users?.includes(user.id);
        return user.dev_ids.includes(devId) || !!listed;
    }

    /** Waiting for authorisation: a car is there, a user is required and none has been given. */
    waitingForAuth(devId: string): boolean {
        return this.plugged(devId) && this.needsAuth(devId) && !this.authorized(devId);
    }

    /** A car is connected (IEC 61851 state B, C or D). */
    plugged(devId: string): boolean {
        const state = this.site.reading(devId)?.state;
        return state !== undefined && state >= 2 && state <= 4;
    }

    /** The user a card, PIN or user id belongs to. */
    userFor(token: string): string | null {
        return this.directory.byRfid(token)?.id ?? this.directory.get(token)?.id ?? null;
    }

    /**
     * The wallboxes that must not charge for want of authorisation: a car is plugged in, users
     * are assigned, and none of them is identified there.
     */
    unauthorised(): string[] {
        const out: string[] = [];
        // The user list read once: the directory copies it on every call.
        const users = this.directory.list();
        const wallboxes = this.site.wallboxes();
        for (let i = 0; i < wallboxes.length; i++) {
            const w = wallboxes[i]!;
            if (!this.plugged(w.dev_id)) continue;
            if (needsAuthAt(w.dev_id, w, users) && !this.authorized(w.dev_id)) out.push(w.dev_id);
        }
        return out;
    }

    /**
     * Ends what was entered at wallboxes whose car was unplugged since the last call, as the
     * vendor does; returns those wallboxes (their overrides end too).
     */
    forgetUnplugged(): string[] {
        const unplugged: string[] = [];
        // Every wallbox, so that an unplug in the cycle right after a card arrived is seen too.
        for (const w of this.site.wallboxes()) {
            const id = w.dev_id;
            const state = this.site.reading(id)?.state;
            if (state === undefined) continue;
            const before = this.lastState.get(id);
            this.lastState.set(id, state);
            if (state === 1 && before !== undefined && before !== 1) {
                unplugged.push(id);
                if (this.rfids.delete(id)) this.revision++;
            }
        }
        return unplugged;
    }

    /** A card held to a wallbox's own reader (Power Brain register 8096) counts as entered there. */
    takeReaderCards(now: number): void {
        for (const w of this.site.wallboxes()) {
            const id = w.dev_id;
            const r = this.site.reading(id);
            if (!r) continue;
            const seen = r.rfid ? `${r.rfid}#${r.rfidCount ?? ''}` : '';
            const before = this.readerState.get(id);
            this.readerState.set(id, r.state);
            // What the reader shows when a session ends (or when we first see it with no car)
            // belongs to the past: a wallbox keeps its last card, and it must not let the next
            // car charge. A new presentation changes the card or the reader's count.
            if (r.state === 1 && before !== 1) {
                if (seen) this.staleReader.set(id, seen);
                continue;
            }
            const stale = this.staleReader.get(id);
            if (stale !== undefined && seen !== stale) this.staleReader.delete(id);
            if (!r.rfid || seen === stale || this.rfids.get(id)?.rfid === r.rfid) continue;
            // As with enter_rfid: a card that cannot authorise here does not end a session.
            const user = this.userFor(r.rfid);
            if (!user || (this.needsAuth(id) && !this.authorizes(id, r.rfid))) continue;
            this.rfids.set(id, { rfid: r.rfid, user, at: now });
            this.revision++;
        }
    }
}

/** Whether a wallbox has users assigned: in its own entry, or in a user's dev_ids. */
function needsAuthAt(
    devId: string,
    entry: AuthWallbox | undefined,
    users: readonly User[],
): boolean {
    if (entry?.users?.length) return true;
    for (let i = 0; i < users.length; i++) if (users[i]!.dev_ids.includes(devId)) return true;
    return false;
}
