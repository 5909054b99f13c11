// The vendor's MQTT API on top of /cnf, for a node between an MQTT subscription of `<prefix>/#`
// and an MQTT publisher:
//   <prefix>/api/<query>  → runs /cnf?<query> (payload = POST body), answer on <prefix>/api_res
//   <prefix>/set/<dev_id> → set_ajax_meter / set_ajax_evse by the device's kind
//   <prefix>/get          → publishes the state now (also done on a timer)
// and publishes <prefix>/get/dev_info, <prefix>/get/params, <prefix>/get/<dev_id> and
// <prefix>/ta_log. Every command goes through handleCnf, so validation, errors and the
// authorisation rules are literally those of HTTP.
import { z } from 'zod';
import type { CnfContext } from '../cnf/context';
import { handleCnf } from '../cnf/handle';
import { runCnfCommand } from '../nodes-support/cnf-call';
import { SessionRecordSchema, type SessionRecord } from '../sessions/record';
import { describeIssues, isEvse } from '../site/schema';

export const DEFAULT_PREFIX = 'cfos_mqtt';
/** Default seconds between get/* publications. */
export const DEFAULT_INTERVAL_S = 5;

const DEV_ID = /^[EM][1-9][0-9]{0,4}$/;

/** A topic prefix: MQTT topic levels without wildcards, no empty level. */
export const PrefixSchema = z
    .string()
    .trim()
    .min(1, 'the topic prefix is empty')
    .max(200, 'the topic prefix is too long')
    .refine((p) => !/[+#\0]/.test(p), 'the topic prefix must not contain + or #')
    .refine(
        (p) => p.split('/').every((level) => level !== ''),
        'the topic prefix has an empty level',
    );

/** Which /cnf rights API calls run with. */
export const RIGHTS = ['admin', 'read'] as const;
export type Rights = (typeof RIGHTS)[number];

const seconds = z.union([z.number(), z.string().trim()]).transform((v, ctx) => {
    const n = v === '' ? DEFAULT_INTERVAL_S : Number(v);
    if (!Number.isFinite(n) || n < 0 || n > 86_400) {
        ctx.addIssue({ code: 'custom', message: 'interval: 0 … 86400 s' });
        return z.NEVER;
    }
    return n;
});

const devIdList = z.union([z.string(), z.array(z.string())]).transform((v, ctx) => {
    const ids = (Array.isArray(v) ? v : v.split(/[\s,;]+/))
        .map((s) => s.trim().toUpperCase())
        .filter((s) => s !== '');
    const bad = ids.find((id) => !DEV_ID.test(id));
    if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `dev_ids: ${bad} is not E<n> or M<n>` });
        return z.NEVER;
    }
    return [...new Set(ids)];
});

/** The node's configuration as the editor stores it. */
export const MqttApiConfigSchema = z
    .object({
        prefix: PrefixSchema.optional().default(DEFAULT_PREFIX),
        rights: z.enum(RIGHTS).optional().default('admin'),
        interval: seconds.optional().default(DEFAULT_INTERVAL_S),
        per_device: z.enum(['off', 'all', 'list']).optional().default('off'),
        dev_ids: devIdList.optional().default([]),
    })
    .transform((c) => ({
        prefix: c.prefix,
        rights: c.rights,
        intervalMs: Math.round(c.interval * 1000),
        /** Devices with their own get/<dev_id> topic: none, all, or these. */
        perDevice: c.per_device === 'list' ? c.dev_ids : c.per_device === 'all',
    }));
export type MqttApiConfig = z.output<typeof MqttApiConfigSchema>;

/** What a topic under the prefix asks for. */
export type Route =
    | { kind: 'api'; query: string }
    | { kind: 'set'; devId: string }
    | { kind: 'publish' }
    /** One of our own publications, back through a `#` subscription. */
    | { kind: 'own' }
    | { kind: 'unknown'; why: string };

export function routeOf(prefix: string, topic: string): Route {
    if (!topic.startsWith(`${prefix}/`) && topic !== prefix) {
        return { kind: 'unknown', why: `${topic || '(no topic)'} is not under ${prefix}/` };
    }
    const rest = topic.slice(prefix.length + 1);
    if (rest === 'api_res' || rest === 'ta_log' || rest.startsWith('get/')) return { kind: 'own' };
    if (rest === 'get') return { kind: 'publish' };
    // The query is everything after api/ (a value may contain a slash).
    if (rest === 'api') return { kind: 'api', query: '' };
    if (rest.startsWith('api/')) return { kind: 'api', query: rest.slice(4) };
    if (rest.startsWith('set/')) {
        const devId = rest.slice(4).toUpperCase();
        if (DEV_ID.test(devId)) return { kind: 'set', devId };
        return { kind: 'unknown', why: `${topic}: ${rest.slice(4)} is not a device id` };
    }
    return {
        kind: 'unknown',
        why: `${topic} is not a topic of the MQTT API (${prefix}/api/<query>, ${prefix}/set/<dev_id>, ${prefix}/get)`,
    };
}

/** A message as it comes from an MQTT subscription (or any node that imitates one). */
export const InputSchema = z.object({
    topic: z.string({ error: 'msg.topic must be a string' }),
    payload: z.unknown().optional(),
    retain: z.boolean().optional(),
});
export type MqttInput = z.input<typeof InputSchema>;

/** A message to publish. */
export interface MqttOutput {
    topic: string;
    payload: unknown;
    /** api_res: the HTTP status /cnf answered with. */
    status?: number;
}

/** A message the API cannot take; the node reports it as its error. Nothing was changed. */
export class MqttInputError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'MqttInputError';
    }
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

/**
 * A payload as a /cnf request body: text as it is, bytes as UTF-8, anything else (an object that
 * an MQTT node parsed from JSON) as JSON. Empty or absent: no body (a GET).
 */
export function bodyOf(payload: unknown): string | undefined {
    if (payload === undefined || payload === null) return undefined;
    const text =
        typeof payload === 'string'
            ? payload
            : isBytes(payload)
              ? Buffer.from(payload).toString('utf8')
              : JSON.stringify(payload);
    return text === '' ? undefined : text;
}

const DeviceValuesSchema = z.record(z.string(), z.unknown(), {
    error: 'the payload must be a JSON object',
});

/** The values of a set/<dev_id> message: a JSON object, as text, bytes or already parsed. */
export function deviceValues(payload: unknown): Record<string, unknown> {
    let value = payload;
    if (typeof payload === 'string' || isBytes(payload)) {
        const text = bodyOf(payload) ?? '';
        try {
            value = JSON.parse(text);
        } catch {
            throw new MqttInputError('the payload is not JSON');
        }
    }
    const parsed = DeviceValuesSchema.safeParse(Array.isArray(value) ? null : value);
    if (!parsed.success) throw new MqttInputError(describeIssues(parsed.error));
    return parsed.data;
}

/** What became of one input message. */
export type Outcome =
    | { kind: 'answered'; status: number }
    | { kind: 'set'; devId: string }
    | { kind: 'published' }
    | { kind: 'ignored' };

export class MqttApi {
    private queue: Promise<unknown> = Promise.resolve();
    private publishing = false;

    /**
     * `send` publishes one message. `ready` settles once the manager has applied its stored
     * settings: nothing runs or is published before. `source` names this API for the login
     * throttle (and, not being this machine, is never taken as a local client).
     */
    constructor(
        private readonly ctx: CnfContext,
        readonly config: MqttApiConfig,
        private readonly send: (msg: MqttOutput) => void,
        private readonly ready: Promise<void> = Promise.resolve(),
        private readonly source = 'mqtt',
    ) {}

    topic(rest: string): string {
        return `${this.config.prefix}/${rest}`;
    }

    /**
     * Takes one message; messages run one after another in arrival order, as the vendor executes
     * them. Rejects with an MqttInputError for a message the API cannot take (nothing changed).
     */
    handle(msg: unknown): Promise<Outcome> {
        const run = this.queue.then(() => this.ready).then(() => this.handleNow(msg));
        this.queue = run.catch(() => undefined);
        return run;
    }

    private async handleNow(msg: unknown): Promise<Outcome> {
        const input = InputSchema.safeParse(msg);
        if (!input.success) throw new MqttInputError(describeIssues(input.error));
        const { topic, payload, retain } = input.data;
        const route = routeOf(this.config.prefix, topic);
        switch (route.kind) {
            case 'own':
                return { kind: 'ignored' };
            case 'unknown':
                throw new MqttInputError(route.why);
            case 'publish':
                await this.publishState();
                return { kind: 'published' };
            case 'api':
                // A retained command would run again on every reconnect of every subscriber.
                if (retain) throw new MqttInputError(`${topic}: a retained API call is not run`);
                return this.api(route.query, payload);
            case 'set':
                return this.setDevice(topic, route.devId, payload);
        }
    }

    /** /cnf?<query> with the configured rights; the answer (errors too) goes to api_res. */
    private async api(query: string, payload: unknown): Promise<Outcome> {
        const body = bodyOf(payload);
        const res = await handleCnf(
            {
                method: body === undefined ? 'GET' : 'POST',
                query,
                ...(body === undefined ? {} : { body }),
                remoteAddress: this.source,
                // Read only: as a client on another machine without the admin password.
                authorization:
                    this.config.rights === 'admin' ? this.ctx.auth.flowCredential : undefined,
            },
            this.ctx,
        );
        // The body exactly as /cnf answers it (JSON text), so that a string answer keeps its quotes.
        this.send({ topic: this.topic('api_res'), payload: res.body, status: res.status });
        return { kind: 'answered', status: res.status };
    }

    /** Device data of an HTTP-input device: always accepted, as /cnf's set_ajax_* from the flow. */
    private async setDevice(topic: string, devId: string, payload: unknown): Promise<Outcome> {
        const entry = this.ctx.site.device(devId);
        if (!entry) throw new MqttInputError(`${topic}: unknown device ${devId}`);
        let values: Record<string, unknown>;
        try {
            values = deviceValues(payload);
        } catch (err) {
            throw new MqttInputError(`${topic}: ${(err as Error).message}`);
        }
        const cmd = isEvse(entry) ? 'set_ajax_evse' : 'set_ajax_meter';
        try {
            await runCnfCommand(this.ctx, { cmd, dev_id: devId }, values, this.source);
        } catch (err) {
            throw new MqttInputError(`${topic}: ${(err as Error).message}`);
        }
        return { kind: 'set', devId };
    }

    /** Publishes get/dev_info, get/params and the chosen get/<dev_id> from one get_dev_info. */
    async publishState(): Promise<void> {
        await this.ready;
        // get_dev_info as any client gets it (and from the same cache).
        const res = await handleCnf({ method: 'GET', query: 'cmd=get_dev_info' }, this.ctx);
        if (res.status !== 200) throw new Error(`get_dev_info: ${res.body}`);
        const info = JSON.parse(res.body) as { params: unknown; devices: { dev_id: string }[] };
        this.send({ topic: this.topic('get/dev_info'), payload: info });
        this.send({ topic: this.topic('get/params'), payload: info.params });
        const { perDevice } = this.config;
        for (const d of info.devices) {
            if (perDevice === true || (Array.isArray(perDevice) && perDevice.includes(d.dev_id)))
                this.send({ topic: this.topic(`get/${d.dev_id}`), payload: d });
        }
    }

    /**
     * Publishes state every intervalMs (0: never), on a timer of its own: the control cycle does no
     * work for it. A tick while the last publication is still running is skipped. Returns stop().
     */
    startPublishing(onError: (err: Error) => void): () => void {
        if (this.config.intervalMs <= 0) return () => undefined;
        const timer = setInterval(() => {
            if (this.publishing) return;
            this.publishing = true;
            this.publishState()
                .catch((err: unknown) => onError(err as Error))
                .finally(() => (this.publishing = false));
        }, this.config.intervalMs);
        return () => clearInterval(timer);
    }

    /** A recorded charging session on <prefix>/ta_log (the vendor's transaction log). */
    publishSession(record: SessionRecord): void {
        const parsed = SessionRecordSchema.safeParse(record);
        if (!parsed.success) throw new MqttInputError(`ta_log: ${describeIssues(parsed.error)}`);
        this.send({ topic: this.topic('ta_log'), payload: parsed.data });
    }
}
