// Session records for tests, numbered: record n starts n minutes after T0 and lasts 30 s, and
// every record has the same length (so a test can tell which append makes a file rotate).
import type { RunningSession, SessionRecord } from '../../lib/sessions/record';

export const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

/** The sequence number of a record made by sessionRecord(). */
export function seqOf(id: string): number {
    return (Number(id.split('-')[0]) - T0) / MINUTE;
}

export function sessionRecord(n: number, change: Partial<SessionRecord> = {}): SessionRecord {
    const start = T0 + n * MINUTE;
    const devId = `E${(n % 3) + 1}`;
    return {
        id: `${start}-${devId}`,
        dev_id: devId,
        name: 'Garage',
        user_id: String(100 + (n % 4)),
        user: `User ${n % 4}`,
        card: `CARD${n % 5}`,
        start,
        end: start + 30_000,
        energy_wh: 1000 + (n % 1000),
        energy_source: 'counter',
        meter_start_wh: 500_000,
        meter_stop_wh: 501_000 + (n % 1000),
        charging_s: 25,
        peak_ma: 16_000,
        mean_ma: 12_500,
        reason: 'unplugged',
        ...change,
    };
}

/** Record n while it is still running, brought up to date a second before its end. */
export function runningSession(n: number): RunningSession {
    const r = sessionRecord(n);
    return {
        id: r.id,
        dev_id: r.dev_id,
        name: r.name,
        user_id: r.user_id,
        user: r.user,
        card: r.card,
        start: r.start,
        energy_wh: r.energy_wh,
        energy_source: r.energy_source,
        meter_start_wh: r.meter_start_wh,
        charging_s: r.charging_s,
        peak_ma: r.peak_ma,
        mean_ma: r.mean_ma,
        updated: r.end - 1000,
    };
}
