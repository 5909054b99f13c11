// Charging sessions as they happen, one per plug-in (or per OCPP transaction): fed once per
// control cycle with what each wallbox reported, it opens a session when a car is plugged in,
// counts its energy, charging time and currents, and closes it when the car is unplugged or the
// wallbox's own transaction ends. Budgets charge each cycle's step of the same count, so a
// user's budget and their session records never disagree.
//
// Energy comes from the wallbox's counter (or its meter's) when it has one; a counter that jumps
// back (the wallbox restarted) or implausibly far counts nothing for that step. Without a counter,
// power × time over fresh readings only: a wallbox that stopped answering adds nothing.
import { Events } from '../core/events';
import type { EvseReading } from '../core/types';
import type { EndReason, RunningSession, SessionRecord } from './record';

/** A counter step larger than this in one cycle is a counter reset or swap, not energy. */
export const MAX_PLAUSIBLE_STEP_WH = 50_000;
/** Power × time is integrated over gaps between fresh readings up to this long. */
const MAX_POWER_GAP_MS = 60_000;

/** A transaction the wallbox runs itself (OCPP), as its reading reports it. */
export interface WallboxTransaction {
    id: string;
    idTag?: string | undefined;
    meterStartWh?: number | undefined;
    startedAt: number;
}

/** The wallbox's transaction that ended most recently, with what the charge point sent. */
export interface EndedTransaction {
    id: string;
    stoppedAt: number;
    meterStopWh?: number | undefined;
    energyWh?: number | undefined;
    reason?: string | undefined;
}

/** What the tracker reads of one wallbox in one cycle. */
export interface WallboxSample {
    dev_id: string;
    name: string;
    /** Its newest good reading, if it ever answered. */
    reading: EvseReading | undefined;
    /** When that reading was taken (ms): the same value again means nothing new was read. */
    takenAt: number | undefined;
    /** The user and card identified at the wallbox (enter_rfid, its reader, OCPP Authorize). */
    user?: { id: string; name: string } | undefined;
    card?: string | undefined;
    transaction?: WallboxTransaction | undefined;
    endedTransaction?: EndedTransaction | undefined;
}

/** What one cycle added to a wallbox's session. */
export interface SessionStep {
    wh: number;
    chargingS: number;
}

export interface TrackerEvents {
    started: RunningSession;
    ended: SessionRecord;
}

interface Open {
    s: RunningSession;
    /** The counter at the previous step (Wh), when the wallbox has one. */
    lastCounterWh: number | undefined;
    /** When the previous fresh reading was taken, for power × time. */
    lastTakenAt: number | undefined;
    /** Σ current × time while charging (mA·s), for the mean. */
    currentSeconds: number;
    /** Restored from a checkpoint and not yet seen again: decided at its first reading. */
    restored: boolean;
    /** The update that last saw the wallbox, and what it added (this cycle's step). */
    seen: number;
    stepWh: number;
    stepS: number;
}

/** Per wallbox, what outlives its sessions. */
interface After {
    /** Its own transaction ended while the car stays: no new session until unplug. */
    closedUntilUnplug: boolean;
    /** The transaction of its last recorded session. */
    recordedTx: string | undefined;
    seen: number;
}

/** A car is connected (IEC 61851 B, C or D): a session starts. Only A (1) ends one; an error
 *  or an offline wallbox (5, 6) leaves it running. */
const plugged = (state: number): boolean => state >= 2 && state <= 4;

export class SessionTracker {
    readonly events: Events<TrackerEvents>;
    private readonly open = new Map<string, Open>();
    private readonly after = new Map<string, After>();
    /** Steps of the sessions that ended in the last update. */
    private readonly endedSteps = new Map<string, SessionStep>();
    /** Counts updates (what `seen` refers to). */
    private cycle = 0;
    /** Bumped on every start and end (a checkpoint is due). */
    revision = 0;

    constructor(onListenerError?: (event: keyof TrackerEvents, error: Error) => void) {
        this.events = new Events<TrackerEvents>(onListenerError);
    }

    /** The running session at a wallbox, as far as it has got. */
    running(devId: string): RunningSession | undefined {
        const o = this.open.get(devId);
        return o ? snapshotOf(o) : undefined;
    }

    /** Every running session (for the checkpoint). */
    runningAll(): RunningSession[] {
        return [...this.open.values()].map(snapshotOf);
    }

    /** What the last update added to the wallbox's session (nothing without one). */
    step(devId: string): SessionStep | undefined {
        const o = this.open.get(devId);
        if (o?.seen === this.cycle) return { wh: o.stepWh, chargingS: o.stepS };
        return this.endedSteps.get(devId);
    }

    /**
     * Sessions that were running when the manager last stopped (its checkpoint). Each goes on
     * where the same car is still there, and ends as `interrupted` where it is not.
     */
    restore(running: readonly RunningSession[]): void {
        for (const s of running) {
            if (this.open.has(s.dev_id)) continue;
            this.open.set(s.dev_id, {
                s: { ...s },
                lastCounterWh: s.meter_stop_wh,
                lastTakenAt: undefined,
                currentSeconds: s.mean_ma * s.charging_s,
                restored: true,
                seen: 0,
                stepWh: 0,
                stepS: 0,
            });
        }
    }

    /** One control cycle: every wallbox of the table, in any order. */
    update(now: number, samples: readonly WallboxSample[]): void {
        const cycle = ++this.cycle;
        if (this.endedSteps.size) this.endedSteps.clear();
        for (let i = 0; i < samples.length; i++) {
            const w = samples[i]!;
            const after = this.after.get(w.dev_id);
            if (after) after.seen = cycle;
            this.updateOne(now, w, after);
        }
        // A wallbox that left the table ends its session where it got to.
        for (const [id, o] of this.open) {
            if (o.seen === cycle) continue;
            this.end(id, o, o.restored ? 'interrupted' : 'removed', o.s.updated);
        }
        for (const [id, a] of this.after) if (a.seen !== cycle) this.after.delete(id);
    }

    private updateOne(now: number, w: WallboxSample, after: After | undefined): void {
        const r = w.reading;
        let o = this.open.get(w.dev_id);
        if (o) {
            o.seen = this.cycle;
            o.stepWh = 0;
            o.stepS = 0;
        }
        if (!r) return; // never answered: nothing known, a restored session waits for it
        const tx = w.transaction;
        if (o?.restored) {
            // Back after a restart: the same car goes on (same transaction, if it has one); a
            // car that left meanwhile ended its session when we last saw it.
            if (r.state === 5 || r.state === 6) return;
            const same = r.state !== 1 && (o.s.transaction_id ?? tx?.id) === tx?.id;
            if (!same) {
                this.end(w.dev_id, o, 'interrupted', o.s.updated);
                o = undefined;
            } else o.restored = false;
        }
        if (o) {
            const txEnded = o.s.transaction_id !== undefined && tx?.id !== o.s.transaction_id;
            if (txEnded || r.state === 1) {
                const ended =
                    w.endedTransaction?.id === o.s.transaction_id ? w.endedTransaction : undefined;
                this.count(now, w, o);
                const reason = r.state === 1 ? 'unplugged' : 'transaction';
                this.end(w.dev_id, o, reason, ended?.stoppedAt ?? now, ended);
                after = this.after.get(w.dev_id);
                if (after && plugged(r.state) && !tx) after.closedUntilUnplug = true;
                o = undefined;
            }
        }
        if (r.state === 1 && after) after.closedUntilUnplug = false;
        if (!o) {
            // A transaction whose session was already recorded (unplugged before the charge
            // point reported its end) does not start another.
            const newTx = tx !== undefined && tx.id !== after?.recordedTx;
            const startable = newTx || (plugged(r.state) && !tx && !after?.closedUntilUnplug);
            if (!startable) return;
            if (after) after.closedUntilUnplug = false;
            o = this.start(now, w);
        }
        // A transaction that began after the plug-in session (cards presented after plugging in)
        // becomes that session's transaction.
        if (tx && o.s.transaction_id === undefined) {
            o.s.transaction_id = tx.id;
            if (
                tx.meterStartWh !== undefined &&
                o.s.energy_source === 'counter' &&
                o.s.energy_wh === 0
            )
                o.s.meter_start_wh = tx.meterStartWh;
        }
        const card = w.card ?? tx?.idTag;
        if (card && !o.s.card) o.s.card = card;
        if (w.user && !o.s.user_id) {
            o.s.user_id = w.user.id;
            o.s.user = w.user.name;
        }
        this.count(now, w, o);
    }

    private start(now: number, w: WallboxSample): Open {
        const r = w.reading!;
        const tx = w.transaction;
        const counter = r.totalEnergyWh;
        const start = tx?.startedAt ?? now;
        const s: RunningSession = {
            id: `${start}-${w.dev_id}`,
            dev_id: w.dev_id,
            name: w.name,
            start,
            energy_wh: 0,
            energy_source: counter !== undefined ? 'counter' : 'power',
            charging_s: 0,
            peak_ma: 0,
            mean_ma: 0,
            updated: now,
        };
        const meterStart = tx?.meterStartWh ?? counter;
        if (meterStart !== undefined) s.meter_start_wh = meterStart;
        if (tx) s.transaction_id = tx.id;
        const o: Open = {
            s,
            lastCounterWh: counter,
            lastTakenAt: undefined,
            currentSeconds: 0,
            restored: false,
            seen: this.cycle,
            stepWh: 0,
            stepS: 0,
        };
        // The energy between the transaction's meter start and now belongs to it.
        if (tx?.meterStartWh !== undefined && counter !== undefined && counter >= tx.meterStartWh)
            o.lastCounterWh = tx.meterStartWh;
        this.open.set(w.dev_id, o);
        this.revision++;
        this.events.emit('started', { ...s });
        return o;
    }

    /** Adds what the wallbox charged since the previous step. */
    private count(now: number, w: WallboxSample, o: Open): void {
        const r = w.reading!;
        const fresh = w.takenAt !== undefined && w.takenAt !== o.lastTakenAt;
        const counter = r.totalEnergyWh;
        let wh = 0;
        if (counter !== undefined) {
            if (o.lastCounterWh !== undefined) {
                const d = counter - o.lastCounterWh;
                if (d > 0 && d <= MAX_PLAUSIBLE_STEP_WH) wh = d;
            }
            o.lastCounterWh = counter;
            o.s.meter_stop_wh = counter;
            if (o.s.meter_start_wh === undefined) o.s.meter_start_wh = counter;
            o.s.energy_source = 'counter';
        }
        let chargingS = 0;
        if (fresh) {
            const dtMs =
                o.lastTakenAt !== undefined && w.takenAt! > o.lastTakenAt
                    ? Math.min(w.takenAt! - o.lastTakenAt, MAX_POWER_GAP_MS)
                    : 0;
            const current = r.currents ? Math.max(r.currents[0], r.currents[1], r.currents[2]) : 0;
            // A reading that shows the car charging counts the time since the previous one as
            // charging, at its power and current (as a meter's interval value does).
            const charging = (r.state === 3 || r.state === 4) && (r.powerW ?? 1) > 0;
            if (charging) {
                chargingS = dtMs / 1000;
                if (counter === undefined && o.s.energy_source === 'power')
                    wh = (Math.max(0, r.powerW ?? 0) * dtMs) / 3_600_000;
                o.currentSeconds += current * chargingS;
                if (current > o.s.peak_ma) o.s.peak_ma = current;
            }
            o.lastTakenAt = w.takenAt;
        }
        o.s.energy_wh += wh;
        o.s.charging_s += chargingS;
        o.s.updated = now;
        o.stepWh += wh;
        o.stepS += chargingS;
    }

    private end(
        devId: string,
        o: Open,
        reason: EndReason,
        at: number,
        ended?: EndedTransaction,
    ): void {
        this.open.delete(devId);
        this.revision++;
        // What the cycle counted before the end still goes to the budget.
        if (o.seen === this.cycle) this.endedSteps.set(devId, { wh: o.stepWh, chargingS: o.stepS });
        let after = this.after.get(devId);
        if (!after) {
            after = { closedUntilUnplug: false, recordedTx: undefined, seen: this.cycle };
            this.after.set(devId, after);
        }
        after.recordedTx = o.s.transaction_id;
        const { updated: _updated, ...s } = o.s;
        const record: SessionRecord = {
            ...s,
            mean_ma: meanOf(o),
            energy_wh: round3(s.energy_wh),
            charging_s: Math.round(s.charging_s),
            end: Math.max(at, s.start),
            reason,
        };
        if (ended?.meterStopWh !== undefined) record.meter_stop_wh = ended.meterStopWh;
        // The charge point's own figure for its transaction, where it sent start and stop.
        if (ended?.energyWh !== undefined && ended.energyWh >= 0) {
            record.energy_wh = ended.energyWh;
            record.energy_source = 'counter';
        }
        if (ended?.reason) record.ocpp_reason = ended.reason;
        this.events.emit('ended', record);
    }
}

/** A running session as others see it: rounded as its record will be. */
function snapshotOf(o: Open): RunningSession {
    return {
        ...o.s,
        energy_wh: round3(o.s.energy_wh),
        charging_s: Math.round(o.s.charging_s),
        mean_ma: meanOf(o),
    };
}

function meanOf(o: Open): number {
    return o.s.charging_s > 0 ? Math.round(o.currentSeconds / o.s.charging_s) : 0;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
