// Session records as CSV (RFC 4180: comma, CRLF, quotes doubled) for a spreadsheet or a billing
// import: one row per session, times in ISO 8601 UTC, energy in Wh and kWh.
import type { SessionRecord } from './record';

const iso = (ms: number): string => new Date(ms).toISOString();

const COLUMNS: readonly [string, (r: SessionRecord) => string | number | undefined][] = [
    ['id', (r) => r.id],
    ['dev_id', (r) => r.dev_id],
    ['wallbox', (r) => r.name],
    ['user_id', (r) => r.user_id],
    ['user', (r) => r.user],
    ['card', (r) => r.card],
    ['start', (r) => iso(r.start)],
    ['end', (r) => iso(r.end)],
    ['duration_s', (r) => Math.round((r.end - r.start) / 1000)],
    ['charging_s', (r) => r.charging_s],
    ['energy_wh', (r) => r.energy_wh],
    ['energy_kwh', (r) => (r.energy_wh / 1000).toFixed(3)],
    ['energy_source', (r) => r.energy_source],
    ['meter_start_wh', (r) => r.meter_start_wh],
    ['meter_stop_wh', (r) => r.meter_stop_wh],
    ['peak_a', (r) => (r.peak_ma / 1000).toFixed(1)],
    ['mean_a', (r) => (r.mean_ma / 1000).toFixed(1)],
    ['reason', (r) => r.reason],
    ['transaction_id', (r) => r.transaction_id],
    ['ocpp_reason', (r) => r.ocpp_reason],
];

function field(v: string | number | undefined): string {
    if (v === undefined) return '';
    let text = String(v);
    // A name a user typed must not become a spreadsheet formula (CSV injection).
    if (typeof v === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function sessionsCsv(records: readonly SessionRecord[]): string {
    const rows = [COLUMNS.map(([name]) => name).join(',')];
    for (const r of records) rows.push(COLUMNS.map(([, get]) => field(get(r))).join(','));
    return rows.join('\r\n') + '\r\n';
}
