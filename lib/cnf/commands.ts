// The /cnf command table: command → auth level, zod schema of its query parameters, whether it
// reads a JSON body, and a handler. Adding a command is adding a row.
import { z } from 'zod';
import type { EvseReading } from '../core/types';
import { isModbusDevType } from '../devices/factory';
import { resolveDevice } from '../modbus/address';
import { parseRegisterRef } from '../modbus/codec';
import {
    describeIssues,
    deviceFieldNames,
    isEvse,
    isGroup,
    isMeter,
    type DeviceEntry,
} from '../site/schema';
import { parseDevices, parseParams } from '../site/site';
import { pushAjaxEvse, pushAjaxMeter } from './ajax';
import { DIAG_MEMORY_ENTRIES } from './diag-log';
import { unauthorized } from './auth';
import type { PlanTarget } from '../site/controls';
import { OVERRIDE, type CnfContext } from './context';
import { badRequest, CnfError, notFound, unknownDevice } from './errors';
import { adminChange, conflictOf, selfChange, type User } from './users';
import { objectBody, parseDecimal, single, type Params } from './query';
import {
    planWrite,
    RawText,
    readAll,
    readValue,
    readWords,
    resolveTarget,
    writeWords,
} from './registers';
import { applyFilter } from '../sessions/book';
import { toCsv } from '../sessions/session-log';
import {
    devTypeLabels,
    devInfo,
    getParams,
    READ_ONLY_DEVICE_KEYS,
    READ_ONLY_PARAMS,
} from './views';

export type AuthLevel = 'public' | 'admin' | 'custom';

export interface CnfCall<Q> {
    ctx: CnfContext;
    q: Q;
    /** Every query value, repeated ones included. */
    raw: Params;
    body: unknown;
    authorization: string | undefined;
    remoteAddress: string;
}

export interface CommandDef<Q = Record<string, unknown>> {
    /** 'custom': the handler authorises itself (RFID/PIN/user id paths). */
    auth: AuthLevel | ((q: Q) => AuthLevel);
    query: z.ZodType<Q>;
    /** Whether a POST body is read as JSON. */
    body?: boolean;
    /** Parameters that may repeat (all values are in `raw`). */
    repeatable?: readonly string[];
    /** It changes what a wallbox may do: answered after a decision that includes the change,
     *  so that the next get_dev_info shows its effect. */
    decides?: boolean;
    handler(call: CnfCall<Q>): Promise<unknown> | unknown;
}

const OK = 'ok';
/** The token a session started by the manager itself carries (no card needed at the wallbox). */
const MANAGER_TOKEN = 'evcm';

// ---- parameter schemas ----

const devId = z
    .string()
    .regex(/^[EMem][1-9][0-9]{0,4}$/, 'must be E<n> or M<n>')
    .transform((s) => s.toUpperCase());
/** A number in a query parameter: integral-valued decimals such as "5.0" are whole numbers. */
const decimal = z.string().transform((text, ctx) => {
    const n = parseDecimal(text);
    if (n === undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be a number' });
        return z.NEVER;
    }
    return n;
});
const wholeNumber = (min: number, max: number) =>
    decimal.pipe(
        z
            .number()
            .int('must be a whole number')
            .min(min, `must be at least ${min}`)
            .max(max, `must be at most ${max}`),
    );
/** mA and Wh: a fraction is rounded to the whole unit, as the vendor's parser takes it. */
const rounded = (min: number, max: number) =>
    decimal
        .transform(Math.round)
        .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
const flag = decimal.refine((v) => v === 0 || v === 1, 'must be 0 or 1').transform((v) => v === 1);
const rfidText = z.string().regex(/^[0-9A-Za-z]{1,32}$/, 'must be 1..32 digits or letters');

/** Wraps a query schema so that its issues read "param: problem". */
function query<S extends z.ZodRawShape>(shape: S) {
    return z.object({ cmd: z.string(), ...shape });
}

function device(ctx: CnfContext, id: string): DeviceEntry {
    const d = ctx.site.device(id);
    if (!d) throw unknownDevice();
    return d;
}

function evseDevice(ctx: CnfContext, id: string): DeviceEntry {
    const d = device(ctx, id);
    if (!isEvse(d)) throw badRequest(`${id} is not an EVSE`);
    return d;
}

// ---- commands ----

const modbusQuery = query({
    device: z.string({ message: 'device is required' }).min(1, 'device is required').max(32),
    read: z.string().max(16).optional(),
    write: z.string().max(16).optional(),
    value: z.string().max(64).optional(),
    values: z.string().max(1000).optional(),
    count: wholeNumber(1, 125).optional(),
});

const modbus: CommandDef<z.output<typeof modbusQuery>> = {
    auth: (q) => (q.write !== undefined ? 'admin' : 'public'),
    query: modbusQuery,
    repeatable: ['write', 'value'],
    async handler({ ctx, q, raw }) {
        if (q.read !== undefined && q.write !== undefined)
            throw badRequest('read and write in one request');
        const t = resolveTarget(ctx, q.device);
        if (q.read !== undefined) {
            if (q.read.trim().toLowerCase() === 'all') return readAll(ctx, t);
            const ref = parseRegisterRef(q.read);
            if (q.count !== undefined) return readWords(ctx, t, ref.address, q.count);
            return readValue(ctx, t, ref.address, ref.suffix);
        }
        if (q.write === undefined) throw badRequest('modbus needs read or write');
        const writes = raw.get('write') ?? [];
        const values = raw.get('value') ?? [];
        if (q.values !== undefined && writes.length > 1)
            throw badRequest('values with more than one write');
        if (q.values === undefined && values.length !== writes.length) {
            throw badRequest('each write needs its value');
        }
        // Check every write before the first is sent.
        const plan = writes.map((w, i) => {
            const ref = parseRegisterRef(w);
            return {
                address: ref.address,
                words: planWrite(
                    t,
                    ref.address,
                    ref.suffix,
                    q.values === undefined ? values[i] : undefined,
                    q.values,
                ),
            };
        });
        for (const p of plan) await writeWords(ctx, t, p.address, p.words);
        return OK;
    },
};

const noParams = query({});

const getDevInfo: CommandDef = {
    auth: 'public',
    query: noParams,
    handler: ({ ctx }) => devInfo(ctx),
};

const getParamsCmd: CommandDef = {
    auth: 'public',
    query: noParams,
    handler: ({ ctx }) => getParams(ctx),
};

const getDevTypes: CommandDef = {
    auth: 'public',
    query: noParams,
    handler: (call) => devTypeLabels(call.ctx.site.params.device_defs),
};

/** The body, or for GET forms the query parameters other than cmd. */
function bodyOrQuery(call: CnfCall<unknown>): Record<string, unknown> {
    if (call.body !== undefined) return objectBody(call.body);
    const out: Record<string, unknown> = {};
    for (const [k, vs] of call.raw) if (k !== 'cmd') out[k] = vs[vs.length - 1];
    return out;
}

/**
 * Validates a set of device changes against the whole table, then applies them in a safe order.
 * `tmp`: live only, not to be saved.
 */
async function applyDevices(ctx: CnfContext, input: unknown, tmp = false): Promise<void> {
    if (!Array.isArray(input)) throw badRequest('devices must be an array');
    if (input.length === 0 || input.length > 100)
        throw badRequest('devices must hold 1..100 devices');
    const changes = input.map((raw, i) => {
        if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
            throw badRequest(`devices[${i}] must be an object`);
        }
        const entry = raw as Record<string, unknown>;
        if (typeof entry.dev_id !== 'string') throw badRequest(`devices[${i}].dev_id is required`);
        // What get_dev_info shows besides the settings (a copied object) is ignored.
        const devType = entry.dev_type ?? ctx.site.device(entry.dev_id)?.dev_type;
        const fields = deviceFieldNames(devType);
        const change: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(entry)) {
            if (!READ_ONLY_DEVICE_KEYS.has(k) || fields.has(k)) change[k] = v;
        }
        return change;
    });
    let table: Record<string, unknown>[] = ctx.site.devices.map((d) => ({ ...d }));
    for (const c of changes) {
        const at = table.findIndex((d) => d.dev_id === c.dev_id);
        if (at >= 0) table[at] = { ...table[at], ...c };
        else table = [...table, c];
    }
    const parsed = parseDevices(table, ctx.site.params.device_defs); // throws before anything changes
    // Driver addresses too: a device that cannot get a driver must not leave the others changed.
    for (const c of changes) {
        const d = parsed.find((x) => x.dev_id === c.dev_id)!;
        if (!isModbusDevType(d.dev_type, ctx.site.params.device_defs)) continue;
        try {
            resolveDevice(d.address, d.id);
        } catch (err) {
            throw badRequest(`${d.dev_id}.address: ${(err as Error).message}`);
        }
        if (d.dev_type === 'meter_modbus' && !('registers' in d && d.registers)) {
            throw badRequest(`${d.dev_id}.registers: a meter_modbus needs a register map`);
        }
    }
    const rank = (c: Record<string, unknown>): number =>
        c.dev_type === 'evse_group' ? 0 : String(c.dev_id).startsWith('M') ? 1 : 2;
    const softMeters = new Map(ctx.site.devices.map((d) => [d.dev_id, softMeterSetting(d)]));
    for (const c of [...changes].sort((a, b) => rank(a) - rank(b))) await ctx.site.setDevice(c);
    // A new soft_meter setting sets the wallbox's energy counter, as cmd=soft_meter&val= does; the
    // same value sent back changes nothing.
    for (const c of changes) {
        const id = String(c.dev_id);
        const d = ctx.site.device(id);
        const value = d && softMeterSetting(d);
        if (value === undefined || value === softMeters.get(id)) continue;
        const own =
            (ctx.site.manager.deviceState(id).sample.reading as EvseReading | undefined)
                ?.totalEnergyWh ?? 0;
        ctx.softMeters.set(id, value - own);
        ctx.touch(tmp ? undefined : { kind: 'soft-meter', devId: id });
    }
    if (tmp) ctx.touch();
    for (const c of tmp ? [] : changes) {
        ctx.touch({ kind: 'device', devId: String(c.dev_id), fields: Object.keys(c) });
    }
}

function softMeterSetting(d: DeviceEntry): number | undefined {
    return isEvse(d) ? d.soft_meter : undefined;
}

const setParams: CommandDef = {
    auth: 'admin',
    decides: true,
    query: z.object({ cmd: z.string() }).passthrough(),
    body: true,
    async handler(call) {
        const { ctx } = call;
        // tmp=1: applied but not saved (as set_cm_vars and set_cplan do)
        const tmpText = call.raw.get('tmp')?.at(-1);
        const tmpFlag = tmpText === undefined ? undefined : flag.safeParse(tmpText);
        if (tmpFlag && !tmpFlag.success) throw badRequest('tmp: must be 0 or 1');
        const tmp = tmpFlag?.data ?? false;
        const input = bodyOrQuery(call);
        if (call.body === undefined) delete input.tmp;
        const { devices, overdraft_cur: overdraftCur, overdraft, ...rest } = input;
        const patch: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(rest)) if (!READ_ONLY_PARAMS.has(k)) patch[k] = v;
        const resetOverdraft =
            overdraftReset(ctx, 'overdraft_cur', overdraftCur, 1) ||
            overdraftReset(ctx, 'overdraft', overdraft, (ctx.site.params.voltage * 3) / 1000);
        if (devices === undefined && Object.keys(patch).length === 0 && !resetOverdraft) {
            throw badRequest('set_params needs parameters or devices');
        }
        parseParams({ ...ctx.site.params, ...patch }); // throws before anything changes
        if (devices !== undefined) {
            // validated as a whole inside applyDevices before the first change
            const snapshot = ctx.site.params;
            if (Object.keys(patch).length) ctx.site.setParams(patch);
            try {
                await applyDevices(ctx, devices, tmp);
            } catch (err) {
                if (Object.keys(patch).length) ctx.site.setParams({ ...snapshot });
                throw err;
            }
        } else {
            ctx.site.setParams(patch);
        }
        if (resetOverdraft) ctx.site.manager.resetOverdraft();
        ctx.touch({ kind: 'params', names: Object.keys(patch), tmp });
        return OK;
    },
};

/**
 * overdraft_cur (or the old overdraft, in W) in set_params: 0 forgets the largest overdraw seen;
 * the value get_params shows may be posted back unchanged; any other value is refused.
 * `perMa` converts mA to the field's unit.
 */
function overdraftReset(ctx: CnfContext, name: string, value: unknown, perMa: number): boolean {
    if (value === undefined) return false;
    const n = typeof value === 'string' ? parseDecimal(value) : value;
    if (n === 0) return true;
    if (typeof n === 'number' && n === Math.round(ctx.site.manager.overdraftMax * perMa)) {
        return false;
    }
    throw badRequest(`${name} can only be set to 0`);
}

const enterRfidQuery = query({ rfid: rfidText, dev_id: devId.optional() });
const enterRfid: CommandDef<z.output<typeof enterRfidQuery>> = {
    auth: 'public',
    decides: true,
    query: enterRfidQuery,
    handler({ ctx, q, remoteAddress }) {
        // A card that is nobody's, or that may not authorise where it is entered, changes
        // nothing: it would end a charge someone else authorised. Both count as failed logins,
        // so that cards and PINs cannot be found by trying.
        ctx.auth.checkThrottle(remoteAddress);
        const refuse = (message: string): never => {
            ctx.auth.throttle.fail(remoteAddress);
            throw new CnfError(403, message);
        };
        const user = ctx.userFor(q.rfid);
        if (!user) refuse('unknown RFID/PIN');
        let target = q.dev_id;
        if (target) evseDevice(ctx, target);
        else {
            // The one EVSE waiting for authorisation (of those the card may use, if any);
            // else the one with a car and no RFID yet.
            const evses = ctx.site.devices.filter(isEvse);
            let waiting = evses.filter((e) => ctx.waitingForAuth(e.dev_id));
            const allowed = waiting.filter((e) => ctx.authorizes(e.dev_id, q.rfid));
            if (allowed.length) waiting = allowed;
            if (!waiting.length) {
                waiting = evses.filter((e) => {
                    const s = (
                        ctx.site.manager.deviceState(e.dev_id).sample.reading as
                            EvseReading | undefined
                    )?.state;
                    return s !== undefined && s >= 2 && s <= 4 && !ctx.rfids.has(e.dev_id);
                });
            }
            if (waiting.length === 0) throw badRequest('no EVSE is waiting for an RFID');
            if (waiting.length > 1) {
                throw badRequest(
                    `${waiting.map((e) => e.dev_id).join(', ')} are waiting: give dev_id`,
                );
            }
            target = waiting[0]!.dev_id;
        }
        if (ctx.needsAuth(target) && !ctx.authorizes(target, q.rfid)) {
            refuse(`RFID/PIN not allowed at ${target}`);
        }
        ctx.rfids.set(target, { rfid: q.rfid, user, at: ctx.now() });
        ctx.touch();
        // A wallbox that runs sessions of its own (OCPP) starts one for the car plugged in.
        void ctx.site.startSession(target, q.rfid);
        return OK;
    },
};

const overrideQuery = query({
    dev_id: devId,
    flags: z
        .string()
        .regex(/^[CcEeUu]{0,12}$/, 'flags may only hold C c E e U u')
        .optional(),
    mamps: rounded(-1, 80_000).optional(),
    /** Phases for this session (1 or 3; 0 or −1 = automatic again): the vendor's dialog offers
     *  this choice, its HTTP flag is not published. */
    phases: rounded(-1, 3)
        .refine((v) => v !== 2, 'phases must be 1 or 3 (0 or -1: automatic)')
        .optional(),
    rfid: rfidText.optional(),
});
const overrideDevice: CommandDef<z.output<typeof overrideQuery>> = {
    auth: 'custom',
    decides: true,
    query: overrideQuery,
    async handler({ ctx, q, authorization, remoteAddress }) {
        const flags = q.flags ?? '';
        if (!flags && q.mamps === undefined && q.phases === undefined)
            throw badRequest('override_device needs flags, mamps or phases');
        const d = evseDevice(ctx, q.dev_id);
        if (q.mamps !== undefined && q.mamps > 0 && isEvse(d) && q.mamps < d.min_charging_cur) {
            throw badRequest(`mamps must be 0 (no limit) or at least ${d.min_charging_cur}`);
        }
        let user = undefined;
        if (q.rfid !== undefined) {
            ctx.auth.checkThrottle(remoteAddress);
            user = ctx.users.byRfid(q.rfid);
            if (user && user.dev_ids.length && !user.dev_ids.includes(d.dev_id)) user = undefined;
            if (!user) {
                ctx.auth.throttle.fail(remoteAddress);
                throw new CnfError(403, 'unknown RFID/PIN');
            }
        }
        // Without the user's card or PIN, the admin may do what a user may (C c U u mamps).
        if (/[Ee]/.test(flags) || !user) await ctx.auth.requireAdmin(authorization, remoteAddress);
        const o = { ...(ctx.overrides.get(d.dev_id) ?? { flags: 0, current: null }) };
        for (const f of flags) {
            const bit =
                f === 'C' || f === 'c'
                    ? OVERRIDE.chargingDisabled
                    : f === 'E' || f === 'e'
                      ? OVERRIDE.evseRulesDisabled
                      : OVERRIDE.userRulesDisabled;
            o.flags = f === f.toUpperCase() ? o.flags | bit : o.flags & ~bit;
        }
        if (q.mamps !== undefined) o.current = q.mamps > 0 ? q.mamps : null;
        if (q.phases === 1 || q.phases === 3) o.phases = q.phases;
        else if (q.phases !== undefined) delete o.phases;
        if (o.flags === 0 && o.current === null && !o.phases) ctx.overrides.delete(d.dev_id);
        else ctx.overrides.set(d.dev_id, o);
        ctx.touch();
        // A wallbox that runs sessions of its own (OCPP): C ends the session, c starts one again
        // with the card entered there (or the manager's own token where none is needed).
        if (flags.includes('C')) void ctx.site.stopSession(d.dev_id);
        else if (flags.includes('c')) {
            const entered = ctx.rfids.get(d.dev_id)?.rfid;
            if (entered || !ctx.needsAuth(d.dev_id)) {
                void ctx.site.startSession(d.dev_id, entered ?? MANAGER_TOKEN);
            }
        }
        return OK;
    },
};

const softMeterQuery = query({ dev_id: devId, val: rounded(0, 1e12).optional() });
const softMeter: CommandDef<z.output<typeof softMeterQuery>> = {
    auth: (q) => (q.val !== undefined ? 'admin' : 'public'),
    query: softMeterQuery,
    handler({ ctx, q }) {
        const d = evseDevice(ctx, q.dev_id);
        const own =
            (ctx.site.manager.deviceState(d.dev_id).sample.reading as EvseReading | undefined)
                ?.totalEnergyWh ?? 0;
        const old = own + (ctx.softMeters.get(d.dev_id) ?? 0);
        if (q.val !== undefined) {
            ctx.softMeters.set(d.dev_id, q.val - own);
            ctx.touch({ kind: 'soft-meter', devId: d.dev_id });
        }
        return old;
    },
};

const num = z.number({ message: 'must be a number' }).finite();

function parseWith<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
    const r = schema.safeParse(input);
    if (!r.success) throw badRequest(describeIssues(r.error, what));
    return r.data;
}

const ajaxQuery = query({ dev_id: devId }).passthrough();

function ajaxDevice(ctx: CnfContext, id: string, type: 'meter_ajax' | 'evse_ajax'): DeviceEntry {
    const d = device(ctx, id);
    if (d.dev_type !== type)
        throw badRequest(
            `${id} is a ${d.dev_type}, not ${type === 'meter_ajax' ? 'an HTTP input meter' : 'an HTTP input EVSE'}`,
        );
    return d;
}

/** The pushed values: the body, or for the GET form the query parameters other than dev_id. */
function ajaxInput(call: CnfCall<unknown>): Record<string, unknown> {
    const input = bodyOrQuery(call);
    delete input.dev_id;
    return input;
}

const setAjaxMeter: CommandDef<z.output<typeof ajaxQuery>> = {
    auth: 'admin',
    query: ajaxQuery,
    body: true,
    handler(call) {
        pushAjaxMeter(call.ctx, ajaxDevice(call.ctx, call.q.dev_id, 'meter_ajax'), ajaxInput(call));
        return OK;
    },
};

const setAjaxEvse: CommandDef<z.output<typeof ajaxQuery>> = {
    auth: 'admin',
    query: ajaxQuery,
    body: true,
    handler(call) {
        const d = ajaxDevice(call.ctx, call.q.dev_id, 'evse_ajax');
        return pushAjaxEvse(call.ctx, d, ajaxInput(call));
    },
};

const getUsers: CommandDef = {
    auth: 'admin',
    query: noParams,
    handler: ({ ctx }) => ctx.users.list(),
};

const userIdQuery = query({ id: z.string().regex(/^[0-9]{1,20}$/, 'must be a user id') });
const getUser: CommandDef<z.output<typeof userIdQuery>> = {
    auth: 'custom',
    query: userIdQuery,
    async handler({ ctx, q, authorization, remoteAddress }) {
        ctx.auth.checkThrottle(remoteAddress);
        const user = ctx.users.get(q.id);
        if (user) return user; // the id is the user's secret
        if (authorization === undefined && ctx.auth.password.isSet) {
            ctx.auth.throttle.fail(remoteAddress);
            throw unauthorized();
        }
        await ctx.auth.requireAdmin(authorization, remoteAddress);
        throw notFound('unknown user');
    },
};

const setUser: CommandDef = {
    auth: 'custom',
    decides: true,
    query: noParams,
    body: true,
    async handler({ ctx, body, authorization, remoteAddress }) {
        const input = objectBody(body);
        const id = input.id;
        const existing = typeof id === 'string' ? ctx.users.get(id) : undefined;
        let user: User;
        if (authorization !== undefined || (await ctx.auth.isAdmin(undefined, remoteAddress))) {
            // The admin may create users and change anything; a partial body changes only the
            // fields it names.
            await ctx.auth.requireAdmin(authorization, remoteAddress);
            user = ctx.users.set(adminChange(existing, input));
        } else {
            // Without the admin password the user id identifies the user (it is the user's
            // secret): a guess counts as a failed login.
            ctx.auth.checkThrottle(remoteAddress);
            if (!existing) {
                ctx.auth.throttle.fail(remoteAddress);
                throw unauthorized('unknown user id: creating users needs the admin password');
            }
            const changed = selfChange(existing, input);
            const conflict = conflictOf(ctx.users, changed);
            if (conflict) {
                ctx.auth.throttle.fail(remoteAddress); // no probing for other users' cards
                throw badRequest(conflict);
            }
            user = ctx.users.set(changed);
        }
        ctx.touch({ kind: 'user', id: user.id });
        return OK;
    },
};

const getNewUserId: CommandDef = {
    auth: 'admin',
    query: noParams,
    handler: ({ ctx }) => ctx.users.newId(),
};

const licenseQuery = query({ acc: flag, allow_usage_stats: flag.optional() });
const acceptLicense: CommandDef<z.output<typeof licenseQuery>> = {
    auth: 'admin',
    query: licenseQuery,
    handler({ ctx, q }) {
        ctx.license = { accepted: q.acc, usageStats: q.allow_usage_stats ?? false };
        ctx.touch();
        return OK;
    },
};

const pwdQuery = query({
    old_pwd: z.string().max(128, 'at most 128 characters').default(''),
    new_pwd: z.string().max(128, 'at most 128 characters'),
});
const changeAdminPwd: CommandDef<z.output<typeof pwdQuery>> = {
    auth: 'custom',
    query: pwdQuery,
    async handler({ ctx, q, remoteAddress }) {
        const auth = ctx.auth;
        await auth.password.ready();
        if (!auth.password.isSet) {
            await auth.requireAdmin(undefined, remoteAddress); // this machine only
        } else {
            auth.checkThrottle(remoteAddress);
            if (!(await auth.password.verify(q.old_pwd))) {
                auth.throttle.fail(remoteAddress);
                throw unauthorized('wrong old password');
            }
            auth.throttle.succeed(remoteAddress);
        }
        await auth.password.set(q.new_pwd);
        ctx.touch({ kind: 'admin-password' });
        return OK;
    },
};

const devIdQuery = query({ dev_id: devId });

function forgetDevice(ctx: CnfContext, id: string): void {
    ctx.overrides.delete(id);
    ctx.softMeters.delete(id);
    ctx.ajax.delete(id);
    ctx.rfids.delete(id);
    ctx.registerWrites.delete(id);
    ctx.plans.delete(id);
    ctx.touch();
}

const delDevice: CommandDef<z.output<typeof devIdQuery>> = {
    auth: 'admin',
    decides: true,
    query: devIdQuery,
    async handler({ ctx, q }) {
        device(ctx, q.dev_id);
        await ctx.site.deleteDevice(q.dev_id);
        forgetDevice(ctx, q.dev_id);
        ctx.touch({ kind: 'device-deleted', devId: q.dev_id });
        return OK;
    },
};

const resetDevice: CommandDef<z.output<typeof devIdQuery>> = {
    auth: 'admin',
    decides: true,
    query: devIdQuery,
    async handler({ ctx, q }) {
        const entry = device(ctx, q.dev_id);
        // Deleting first would fail for a device others refer to; check that it can be deleted.
        parseDevices(
            ctx.site.devices.filter((d) => d.dev_id !== q.dev_id),
            ctx.site.params.device_defs,
        );
        await ctx.site.deleteDevice(q.dev_id);
        await ctx.site.setDevice({ ...entry });
        forgetDevice(ctx, q.dev_id);
        ctx.touch({ kind: 'device-reset', devId: q.dev_id });
        return OK;
    },
};

const diagQuery = query({ enable: flag });
const setDiagLogging: CommandDef<z.output<typeof diagQuery>> = {
    auth: 'admin',
    query: diagQuery,
    handler({ ctx, q }) {
        if (q.enable) ctx.diag.enable();
        else ctx.diag.disable();
        ctx.touch();
        return OK;
    },
};

const diagReadQuery = query({
    max: wholeNumber(1, DIAG_MEMORY_ENTRIES).optional(),
    since: wholeNumber(0, 1e11).optional(),
});
/** The diagnostic log's newest cycles (ours: the vendor shows its log only in its web UI). */
const getDiagLog: CommandDef<z.output<typeof diagReadQuery>> = {
    auth: 'admin',
    query: diagReadQuery,
    handler({ ctx, q }) {
        const until = ctx.diag.until;
        return {
            enabled: until > 0,
            until: Math.floor(until / 1000),
            ...(ctx.diag.path ? { file: ctx.diag.path } : {}),
            entries: ctx.diag.read(q.max ?? 100, (q.since ?? 0) * 1000),
        };
    },
};

/** A time in a query: seconds since the epoch (as the vendor's API counts) or an ISO 8601 date. */
const timeParam = z.string().transform((text, c) => {
    const t = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : Date.parse(text);
    if (!Number.isFinite(t)) {
        c.addIssue({ code: 'custom', message: 'must be seconds since 1970 or an ISO 8601 date' });
        return z.NEVER;
    }
    return t;
});
const sessionsQuery = query({
    from: timeParam.optional(),
    to: timeParam.optional(),
    user: z.string().min(1).max(100).optional(),
    dev_id: devId.optional(),
    max: wholeNumber(1, 100_000).optional(),
    format: z.enum(['json', 'csv']).optional(),
    /** CSV with a byte order mark, which Excel needs to show non-ASCII names. */
    bom: flag.optional(),
});
/**
 * Recorded charging sessions (ours; the vendor's transaction log is a CSV download of its web
 * UI): filtered by time (sessions overlapping from..to), user (id, name or card) and wallbox;
 * JSON with the running sessions too, or CSV of the finished ones for a spreadsheet.
 */
const getSessions: CommandDef<z.output<typeof sessionsQuery>> = {
    auth: 'admin',
    query: sessionsQuery,
    async handler({ ctx, q }) {
        const filter = { from: q.from, to: q.to, user: q.user, dev_id: q.dev_id, limit: q.max };
        const records = await ctx.sessions.query(filter);
        if (q.format === 'csv') {
            return new RawText(
                toCsv(records, { bom: q.bom }),
                'text/csv; charset=utf-8',
                'sessions.csv',
            );
        }
        const running = applyFilter(ctx.site.sessions.runningAll(), {
            ...filter,
            limit: undefined,
        });
        return { sessions: records, running };
    },
};

const cmVarsQuery = query({
    name: z.string().max(64).optional(),
    val: z.string().max(1000).optional(),
    clear: flag.optional(),
    tmp: flag.optional(),
});
const varsBody = z
    .object({
        vars: z
            .array(
                z
                    .object({
                        name: z.string().max(64),
                        expr: z.union([num, z.string().max(1000)]),
                    })
                    .strict(),
            )
            .max(256),
    })
    .strict();

const setCmVars: CommandDef<z.output<typeof cmVarsQuery>> = {
    auth: 'admin',
    decides: true,
    query: cmVarsQuery,
    body: true,
    handler({ ctx, q, body }) {
        const options = { clear: q.clear ?? false, tmp: q.tmp ?? false };
        if (body !== undefined) {
            const b = parseWith(varsBody, body, 'body');
            ctx.variables.setMany(b.vars, options);
        } else if (q.name !== undefined) {
            if (q.val === undefined) throw badRequest('val is required with name');
            const expr = parseDecimal(q.val) ?? q.val;
            ctx.variables.setMany([{ name: q.name, expr }], options);
        } else if (options.clear) {
            ctx.variables.clear({ tmp: options.tmp });
        } else {
            throw badRequest('set_cm_vars needs name and val, a vars body, or clear=1');
        }
        ctx.touch({ kind: 'variables' });
        return OK;
    },
};

const getCmVars: CommandDef = {
    auth: 'admin',
    query: noParams,
    handler: ({ ctx }) => ctx.variables.list(),
};

const getDevices: CommandDef = {
    auth: 'admin',
    query: noParams,
    // A credential is never shown, not even hashed.
    handler: ({ ctx }) =>
        ctx.site.devices.map((d) => {
            const shown: Record<string, unknown> = { ...d };
            delete shown.ocpp_password;
            return shown;
        }),
};

const setDevice: CommandDef = {
    auth: 'admin',
    decides: true,
    query: noParams,
    body: true,
    async handler({ ctx, body }) {
        const b = objectBody(body);
        const list = b.devices !== undefined ? b.devices : [b];
        await applyDevices(ctx, list);
        return OK;
    },
};

const planQuery = query({
    dev_id: z
        .string()
        .regex(/^([EMem][1-9][0-9]{0,4}|\$G)$/, 'must be E<n> or $G')
        .transform((s) => s.toUpperCase()),
    tmp: flag.optional(),
});
/** Longest time ahead a plan's departure may be (ms): a week. */
const MAX_DEPARTURE_AHEAD_MS = 7 * 86_400_000;
const planBody = z
    .object({
        cplan: z
            .array(
                z
                    .object({
                        dc: z.boolean().default(false),
                        st: z.number().int().min(0).max(1439),
                        dr: z.number().int().min(1).max(1440),
                        /** mA: a fraction is rounded to whole mA. */
                        lm: z
                            .number()
                            .finite()
                            .transform(Math.round)
                            .pipe(z.number().min(0).max(2_000_000)),
                    })
                    .strict(),
            )
            .max(96),
        // Our addition to the vendor's object (the names of the vendor's wallbox formula fields
        // E<n>.req_energy and E<n>.departure): this much energy (Wh) by then (Unix s), in the
        // cheapest hours of the price list.
        req_energy: z
            .number()
            .finite()
            .transform(Math.round)
            .pipe(
                z
                    .number()
                    .min(1, 'must be at least 1 Wh')
                    .max(1_000_000, 'must be at most 1000000 Wh'),
            )
            .optional(),
        departure: z.number().int('must be whole Unix seconds').optional(),
    })
    .strict()
    .refine((b) => (b.req_energy === undefined) === (b.departure === undefined), {
        message: 'req_energy and departure go together',
    });

/** A plan's target as get_cplan shows it: what was set, what is charged, and the decision. */
function targetView(t: PlanTarget) {
    const d = t.decision;
    return {
        req_energy: t.energyWh,
        departure: Math.round(t.departure / 1000),
        charged_energy: Math.round(t.chargedWh),
        // Until the first cycle has decided: 'planned'.
        plan_state: d?.state ?? 'planned',
        plan_windows: (d?.windows ?? []).map((w) => ({
            start: Math.round(w.start / 1000),
            end: Math.round(w.end / 1000),
            price: w.price,
        })),
    };
}

function planDevice(ctx: CnfContext, id: string): DeviceEntry {
    if (id === '$G')
        throw badRequest('charging plans for $G are not supported; set max_total_current');
    return evseDevice(ctx, id);
}

const setCplan: CommandDef<z.output<typeof planQuery>> = {
    auth: 'admin',
    decides: true,
    query: planQuery,
    body: true,
    handler({ ctx, q, body }) {
        const d = planDevice(ctx, q.dev_id);
        const b = parseWith(planBody, body ?? {}, 'body');
        let target: PlanTarget | undefined;
        if (b.req_energy !== undefined && b.departure !== undefined) {
            const now = ctx.site.now();
            const departure = b.departure * 1000;
            if (departure <= now) throw badRequest('body.departure: must be in the future');
            if (departure > now + MAX_DEPARTURE_AHEAD_MS) {
                throw badRequest('body.departure: at most 7 days ahead');
            }
            target = { energyWh: b.req_energy, departure, chargedWh: 0 };
        }
        if (b.cplan.length || target) {
            ctx.plans.set(d.dev_id, {
                cplan: b.cplan,
                tmp: q.tmp ?? false,
                ...(target ? { target } : {}),
            });
        } else ctx.plans.delete(d.dev_id);
        ctx.touch({ kind: 'plan', devId: d.dev_id, tmp: q.tmp ?? false });
        return OK;
    },
};

const getCplan: CommandDef<z.output<typeof planQuery>> = {
    auth: 'admin',
    query: planQuery,
    handler({ ctx, q }) {
        const d = planDevice(ctx, q.dev_id);
        const plan = ctx.plans.get(d.dev_id);
        return { cplan: plan?.cplan ?? [], ...(plan?.target ? targetView(plan.target) : {}) };
    },
};

export const COMMANDS: Readonly<Record<string, CommandDef<never>>> = {
    modbus,
    get_dev_info: getDevInfo,
    get_params: getParamsCmd,
    set_params: setParams,
    get_dev_types: getDevTypes,
    enter_rfid: enterRfid,
    override_device: overrideDevice,
    soft_meter: softMeter,
    set_ajax_meter: setAjaxMeter,
    set_ajax_evse: setAjaxEvse,
    get_users: getUsers,
    get_user: getUser,
    set_user: setUser,
    get_new_user_id: getNewUserId,
    accept_license: acceptLicense,
    change_admin_pwd: changeAdminPwd,
    del_device: delDevice,
    reset_device: resetDevice,
    set_diag_logging: setDiagLogging,
    get_diag_log: getDiagLog,
    get_sessions: getSessions,
    set_cm_vars: setCmVars,
    get_cm_vars: getCmVars,
    get_devices: getDevices,
    set_device: setDevice,
    set_cplan: setCplan,
    get_cplan: getCplan,
} as unknown as Record<string, CommandDef<never>>;

export { isGroup, isMeter, single };
