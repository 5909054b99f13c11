// A charging session as it is recorded: one per plug-in (or per OCPP transaction), from the
// moment the car is plugged in until it is unplugged. Energy comes from the wallbox's own counter
// (or its meter's); power × time only when it has none.
import { z } from 'zod';

/** Why a session ended. */
export const END_REASONS = [
    /** The car was unplugged. */
    'unplugged',
    /** The wallbox's own transaction ended (OCPP StopTransaction); `ocpp_reason` says why. */
    'transaction',
    /** The wallbox was removed from the manager. */
    'removed',
    /** The manager stopped (a restart or kill) and the car was gone when it came back. */
    'interrupted',
] as const;
export type EndReason = (typeof END_REASONS)[number];

export const SessionRecordSchema = z.object({
    /** Unique per manager: `<start ms>-<dev_id>`. */
    id: z.string().min(1),
    dev_id: z.string().min(1),
    /** The wallbox's name when the session started. */
    name: z.string(),
    /** The user identified at the wallbox (id and name), if any. */
    user_id: z.string().optional(),
    user: z.string().optional(),
    /** The card (RFID / OCPP idTag) presented, if any. */
    card: z.string().optional(),
    /** Start and end, ms since the epoch. */
    start: z.number().int().nonnegative(),
    end: z.number().int().nonnegative(),
    /** Energy charged (Wh) and where it came from. */
    energy_wh: z.number().nonnegative(),
    energy_source: z.enum(['counter', 'power']),
    /** The wallbox's counter at start and end (Wh), when it has one. */
    meter_start_wh: z.number().optional(),
    meter_stop_wh: z.number().optional(),
    /** Time spent charging (s), highest phase current seen and the mean while charging (mA). */
    charging_s: z.number().nonnegative(),
    peak_ma: z.number().nonnegative(),
    mean_ma: z.number().nonnegative(),
    reason: z.enum(END_REASONS),
    /** OCPP: the transaction id and the charge point's stop reason. */
    transaction_id: z.string().optional(),
    ocpp_reason: z.string().optional(),
});
export type SessionRecord = z.infer<typeof SessionRecordSchema>;

/** A session still running, as far as it has got (what the dashboard shows and the log checkpoints). */
export type RunningSession = Omit<SessionRecord, 'end' | 'reason' | 'ocpp_reason'> & {
    /** When it was last brought up to date (ms). */
    updated: number;
};
