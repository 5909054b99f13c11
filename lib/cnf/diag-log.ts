// The diagnostic log (set_diag_logging&enable=1): every control cycle's inputs and decisions, one
// JSON line per cycle, for 5 minutes or until it is switched off. Lines go to a file under
// Node-RED's user directory (when there is one) and the newest are kept in memory for
// get_diag_log. Nothing is recorded while it is off: the cycle pays for it only when asked.
import { createWriteStream, openSync, renameSync, statSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { CycleReport } from '../core/engine';
import type { DeviceSample, EvseReading, MeterReading } from '../core/types';

/** How long one enable lasts, as with the vendor. */
export const DIAG_DURATION_MS = 5 * 60_000;
/** Newest entries kept in memory for get_diag_log. */
export const DIAG_MEMORY_ENTRIES = 600;
/** A file larger than this is renamed to `<file>.1` (replacing an older one) and started anew. */
export const DIAG_FILE_MAX_BYTES = 20 * 1024 * 1024;

/** The diagnostic log of a manager, beside its store file. */
export function diagFileFor(userDir: string, managerId: string): string {
    return join(
        userDir,
        'evcm-charging-manager',
        `${managerId.replace(/[^A-Za-z0-9_.-]/g, '_')}.diag.jsonl`,
    );
}

export interface DiagEntry {
    /** Time of the cycle (Unix ms). */
    t: number;
    kind: CycleReport['kind'];
    cycle_ms: number;
    /** The site's limits this cycle: budget per building phase, load besides the wallboxes. */
    site: {
        budget: readonly number[];
        other_load: readonly number[];
        evse_load: readonly number[];
        overdraw: readonly number[];
        penalty: number;
        stale_meters: readonly string[];
        fail_safe: boolean;
        max_total_current?: number;
    };
    /** What each device delivered: its reading, the reading's age (ms), the error if it failed. */
    inputs: Record<string, unknown>;
    /** Caps from rules, formulas, overrides, authorisation and budgets (mA), by wallbox. */
    limits: Record<string, number>;
    /** The decision per wallbox. */
    decisions: Record<
        string,
        { current: number; state: string; phases: number; enabled: boolean; write: boolean }
    >;
}

export interface DiagLogOptions {
    /** File to append to; none = memory only. */
    file?: string;
    /** Where start, stop and write problems are told (Node-RED's log). */
    log?: (text: string) => void;
    now?: () => number;
    /** Size at which the file is rotated; default DIAG_FILE_MAX_BYTES. */
    maxFileBytes?: number;
}

function sampleOf(s: DeviceSample<MeterReading | EvseReading>, now: number): unknown {
    return {
        ...(s.reading ? { reading: s.reading } : {}),
        ...(s.takenAt !== undefined ? { age_ms: now - s.takenAt } : {}),
        ...(s.error ? { error: s.error } : {}),
    };
}

/** One cycle as a log entry. */
export function diagEntry(report: CycleReport): DiagEntry {
    const { snapshot, result } = report;
    const inputs: Record<string, unknown> = {};
    snapshot.meters.forEach((s, id) => (inputs[id] = sampleOf(s, snapshot.now)));
    snapshot.evses.forEach((s, id) => (inputs[id] = sampleOf(s, snapshot.now)));
    const limits: Record<string, number> = {};
    snapshot.limits?.forEach((mA, id) => (limits[id] = mA));
    const decisions: DiagEntry['decisions'] = {};
    result.setpoints.forEach((sp, id) => {
        decisions[id] = {
            current: sp.current,
            state: sp.state,
            phases: sp.phases,
            enabled: sp.chargingEnabled,
            write: sp.write,
        };
    });
    const site = result.site;
    return {
        t: report.at,
        // why the decision was taken: the scheduled cycle, a control command, a pushed overload
        kind: report.kind,
        cycle_ms: report.cycleTimeMs,
        site: {
            budget: site.budget,
            other_load: site.nonEvseLoad,
            evse_load: site.evseLoad,
            overdraw: site.overdraw,
            penalty: site.penalty,
            stale_meters: site.staleMeters,
            fail_safe: site.failSafe,
            ...(snapshot.maxTotalCurrent !== undefined
                ? { max_total_current: snapshot.maxTotalCurrent }
                : {}),
        },
        inputs,
        limits,
        decisions,
    };
}

export class DiagLog {
    private untilMs = 0;
    private readonly entries: DiagEntry[] = [];
    private stream: WriteStream | null = null;
    private bytes = 0;
    private readonly file: string | undefined;
    private readonly log: (text: string) => void;
    private readonly now: () => number;
    private readonly maxFileBytes: number;

    constructor(options: DiagLogOptions = {}) {
        this.file = options.file;
        this.maxFileBytes = options.maxFileBytes ?? DIAG_FILE_MAX_BYTES;
        this.log = options.log ?? (() => undefined);
        this.now = options.now ?? Date.now;
    }

    /** Until when it records (Unix ms); 0 when off. */
    get until(): number {
        return this.active ? this.untilMs : 0;
    }

    get active(): boolean {
        return this.untilMs > this.now();
    }

    get path(): string | undefined {
        return this.file;
    }

    /** Starts (or extends to a full 5 minutes from now) the recording. */
    enable(): void {
        const was = this.active;
        this.untilMs = this.now() + DIAG_DURATION_MS;
        if (!was) {
            this.entries.length = 0;
            this.log(
                `diagnostic log on for 5 minutes${this.file ? `: ${this.file}` : ' (memory only)'}`,
            );
        }
    }

    disable(): void {
        if (!this.untilMs) return;
        const was = this.active;
        this.untilMs = 0;
        this.closeStream();
        if (was) this.log('diagnostic log off');
    }

    /** Records one cycle while on; ends the recording when its time is up. */
    record(report: CycleReport): void {
        if (!this.untilMs) return;
        if (!this.active) {
            this.untilMs = 0;
            this.closeStream();
            this.log('diagnostic log off (5 minutes passed)');
            return;
        }
        const entry = diagEntry(report);
        this.entries.push(entry);
        if (this.entries.length > DIAG_MEMORY_ENTRIES) this.entries.shift();
        if (this.file) this.append(`${JSON.stringify(entry)}\n`);
    }

    /** The newest entries, oldest first: at most `max`, those at or after `since` (Unix ms). */
    read(max: number, since = 0): DiagEntry[] {
        const out = since ? this.entries.filter((e) => e.t >= since) : this.entries;
        return out.slice(Math.max(0, out.length - max));
    }

    close(): void {
        this.untilMs = 0;
        this.closeStream();
    }

    private append(line: string): void {
        if (!this.stream) {
            let fd: number;
            try {
                // Opened here, not by the stream later, so that a rotation renames this file.
                fd = openSync(this.file!, 'a', 0o600);
                this.bytes = statSync(this.file!).size;
            } catch (err) {
                this.log(`diagnostic log cannot be written: ${(err as Error).message}`);
                this.untilMs = 0;
                return;
            }
            this.stream = createWriteStream('', { fd });
            this.stream.on('error', (err) => {
                this.log(`diagnostic log cannot be written: ${err.message}`);
                this.stream = null;
            });
        }
        if (this.bytes + line.length > this.maxFileBytes && this.bytes > 0) {
            this.closeStream();
            try {
                renameSync(this.file!, `${this.file!}.1`);
            } catch (err) {
                this.log(`diagnostic log cannot be rotated: ${(err as Error).message}`);
            }
            this.append(line);
            return;
        }
        this.bytes += Buffer.byteLength(line);
        this.stream.write(line);
    }

    private closeStream(): void {
        this.stream?.end();
        this.stream = null;
    }
}
