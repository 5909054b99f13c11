// The evcm-ocpp node's pure parts: its password list, and every OCPP-J frame of the charge points as a flow message: a call names its action; an answer
// (CALLRESULT / CALLERROR) is matched to the call it answers so that it names the action too.
import type { OcppCentralSystem } from '../ocpp/central-system';
import type { ChargePoint, OcppMessageEvent } from '../ocpp/charge-point';

export interface OcppFlowPayload {
    action: string;
    /** in = from the charge point, out = from the central system. */
    direction: 'in' | 'out';
    type: 'call' | 'result' | 'error';
    messageId: string;
    /** The call's payload, or the answer's. */
    params: unknown;
    /** CALLERROR: code, description, details. */
    error?: { code: string; description: string; details: unknown };
    protocol?: string;
    at: number;
}

/** Calls awaiting an answer that are remembered per charge point (older ones are forgotten). */
const OPEN_CALLS_KEPT = 50;

/**
 * Subscribes to the messages of every charge point session, now and later; returns the
 * unsubscribe function.
 */
export function relayOcppMessages(
    central: OcppCentralSystem,
    emit: (identity: string, payload: OcppFlowPayload) => void,
    now: () => number = Date.now,
): () => void {
    const offs: (() => void)[] = [];
    const follow = (cp: ChargePoint): void => {
        // message id → action, per direction of the call
        const open = new Map<string, string>();
        offs.push(
            cp.events.on('message', (m) => {
                const p = payloadOf(m, open, now());
                if (p)
                    emit(cp.identity, { ...p, ...(cp.protocol ? { protocol: cp.protocol } : {}) });
            }),
        );
    };
    for (const cp of central.chargePoints) follow(cp);
    offs.push(central.events.on('session', follow));
    return () => offs.splice(0).forEach((off) => off());
}

function payloadOf(
    m: OcppMessageEvent,
    open: Map<string, string>,
    at: number,
): OcppFlowPayload | undefined {
    const f = m.frame;
    if (!Array.isArray(f)) return undefined;
    const messageId = String(f[1]);
    // A call's id is unique in its direction only: the answer travels the other way.
    const callKey = (dir: string) => `${dir}:${messageId}`;
    if (f[0] === 2) {
        const action = String(f[2]);
        open.set(callKey(m.direction), action);
        if (open.size > OPEN_CALLS_KEPT) open.delete(open.keys().next().value!);
        return { action, direction: m.direction, type: 'call', messageId, params: f[3] ?? {}, at };
    }
    if (f[0] !== 3 && f[0] !== 4) return undefined;
    const key = callKey(m.direction === 'in' ? 'out' : 'in');
    const action = open.get(key) ?? '';
    open.delete(key);
    if (f[0] === 3) {
        return {
            action,
            direction: m.direction,
            type: 'result',
            messageId,
            params: f[2] ?? {},
            at,
        };
    }
    return {
        action,
        direction: m.direction,
        type: 'error',
        messageId,
        params: f[4] ?? {},
        error: { code: String(f[2]), description: String(f[3] ?? ''), details: f[4] ?? {} },
        at,
    };
}

/** `identity` or `identity password` (or `identity:password`), one charge point a line. */
export function parsePasswords(text: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const raw of text.split(/\r?\n/)) {
        const line = raw.trim();
        if (!line || line.startsWith('#')) continue;
        const m = /^([^\s:=]+)\s*[\s:=]\s*(\S.*)$/.exec(line);
        if (!m) throw new Error(`password line "${line.slice(0, 40)}": identity, then password`);
        out.set(m[1]!, m[2]!.trim());
    }
    return out;
}
