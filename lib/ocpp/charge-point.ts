// One charge point as the central system knows it, across its connections: protocol, boot info,
// connector states, latest meter values and transactions. It answers the charge point's calls
// (OCPP 1.6J and 2.0.1) and sends the central system's. Pure domain code: no Node-RED.
import type { RPCClient } from 'ocpp-rpc';
import { createRPCError } from 'ocpp-rpc';
import { Events } from '../core/events';
import type { EvseState, Phases3 } from '../core/types';

export type OcppProtocol = 'ocpp1.6' | 'ocpp2.0.1';

/** The connection of a charge point (an ocpp-rpc RPCServerClient). */
export type OcppConnection = Pick<
    RPCClient,
    'call' | 'handle' | 'close' | 'on' | 'off' | 'protocol' | 'identity' | 'state'
>;

export interface BootInfo {
    vendor: string;
    model: string;
    serial?: string;
    firmware?: string;
}

export interface MeterSample {
    /** Per phase L1..L3 (mA). */
    currents?: Phases3;
    powerW?: number;
    energyWh?: number;
    at: number;
}

export interface Transaction {
    id: string;
    connector: number;
    idTag?: string;
    meterStartWh?: number;
    startedAt: number;
    /** Set when it ended. */
    stoppedAt?: number;
    meterStopWh?: number;
    energyWh?: number;
    reason?: string;
}

export interface ConnectorState {
    /** The status as the charge point sent it (1.6 ChargePointStatus, 2.0.1 ConnectorStatus). */
    status: string;
    errorCode?: string;
    /** 2.0.1: the chargingState of the running transaction. */
    chargingState?: string;
    meter?: MeterSample;
    transaction?: Transaction;
}

/** Counters of what went wrong, per charge point. */
export interface OcppCounters {
    connections: number;
    /** Connections closed because another one with the same identity arrived. */
    replaced: number;
    /** Frames that were no valid OCPP-J message (answered with a CALLERROR where possible). */
    badMessages: number;
    /** Calls whose payload broke the schema (FormationViolation etc.). */
    schemaViolations: number;
    /** Actions the central system does not implement (NotImplemented). */
    unknownActions: number;
    /** Calls refused because the boot was not accepted (SecurityError). */
    refusedBeforeBoot: number;
    /** Calls refused because they came faster than the rate limit. */
    rateLimited: number;
    /** Calls to the charge point that failed (error answer, timeout, closed). */
    failedCalls: number;
}

export interface OcppMessageEvent {
    identity: string;
    direction: 'in' | 'out';
    /** The OCPP-J frame: [2, id, action, payload] / [3, id, payload] / [4, id, code, text, details]. */
    frame: unknown[];
}

export interface ChargePointEvents {
    message: OcppMessageEvent;
    connected: { identity: string; protocol: OcppProtocol };
    disconnected: { identity: string; code?: number; reason?: string };
    boot: { identity: string; boot: BootInfo };
    status: { identity: string; connector: number; status: string };
    transactionStarted: { identity: string; transaction: Transaction };
    transactionEnded: { identity: string; transaction: Transaction };
}

/** Stack levels and profile ids of the two TxDefaultProfiles (see OCPP.md). */
export const FAIL_SAFE_STACK_LEVEL = 1;
export const CONTROL_STACK_LEVEL = 2;
export const FAIL_SAFE_PROFILE_ID = 1;
export const CONTROL_PROFILE_ID = 2;

/** A connector as the site's driver attaches to it: authorisation of cards presented there. */
export interface ConnectorAttachment {
    /**
     * Whether a card, PIN or user id may charge here; with `record`, an accepted one counts as
     * entered here (as enter_rfid does).
     */
    authorize?(token: string, record: boolean): boolean;
    /** Called after every accepted boot (and on attach while booted): fail-safe profiles. */
    onBoot?(): void;
}

export interface ChargePointOptions {
    /** Sent after boot (s): MeterValueSampleInterval / SampledDataCtrlr.TxUpdatedInterval. */
    meterValueSampleInterval: number;
    heartbeatInterval: number;
    /** How long a call to the charge point may take (ms). */
    callTimeoutMs: number;
    /** Calls per second a charge point may make on average, and the burst it may make. */
    rateLimit: { perSecond: number; burst: number };
    now: () => number;
}

const FINISHED_KEPT = 50;
/** What the manager needs of a meter value: per-phase currents, power, energy. */
const MEASURANDS = 'Current.Import,Power.Active.Import,Energy.Active.Import.Register';

export class ChargePoint {
    readonly events: Events<ChargePointEvents>;
    readonly counters: OcppCounters = {
        connections: 0,
        replaced: 0,
        badMessages: 0,
        schemaViolations: 0,
        unknownActions: 0,
        refusedBeforeBoot: 0,
        rateLimited: 0,
        failedCalls: 0,
    };
    protocol: OcppProtocol | undefined;
    boot: BootInfo | undefined;
    /** The boot was answered Accepted on this connection or an earlier one in this process. */
    bootAccepted = false;
    lastMessageAt: number | undefined;
    lastHeartbeatAt: number | undefined;
    readonly connectors = new Map<number, ConnectorState>();
    /** Ended transactions, newest last (bounded). */
    readonly finished: Transaction[] = [];
    /** A stored password hash (profile 1/2), or undefined: any or no password is accepted. */
    passwordHash: string | undefined;
    private connection: OcppConnection | undefined;
    private readonly attachments = new Map<number, Set<ConnectorAttachment>>();
    private nextTxId = 1;
    private tokens: number;
    private tokensAt: number;
    private bootTriggered = false;

    constructor(
        readonly identity: string,
        private readonly opts: ChargePointOptions,
    ) {
        this.events = new Events<ChargePointEvents>();
        this.tokens = opts.rateLimit.burst;
        this.tokensAt = opts.now();
    }

    get connected(): boolean {
        return this.connection !== undefined;
    }

    /** Connectors that devices are attached to. */
    get attached(): boolean {
        return this.attachments.size > 0;
    }

    connector(id: number): ConnectorState | undefined {
        return this.connectors.get(id);
    }

    /** The vendor's EVSE state of a connector (1.6) / EVSE (2.0.1): mapping in OCPP.md. */
    evseState(id: number): EvseState {
        if (!this.connected) return 6;
        const c = this.connectors.get(id);
        if (!c) return 6;
        switch (c.status) {
            case 'Available':
            case 'Reserved':
                return 1;
            case 'Preparing':
            case 'SuspendedEV':
            case 'SuspendedEVSE':
            case 'Finishing':
                return 2;
            case 'Occupied':
                return c.chargingState === 'Charging' ? 3 : 2;
            case 'Charging':
                return 3;
            case 'Faulted':
                return 5;
            default:
                return 6;
        }
    }

    attach(connector: number, a: ConnectorAttachment): () => void {
        let set = this.attachments.get(connector);
        if (!set) this.attachments.set(connector, (set = new Set()));
        set.add(a);
        if (this.connected && this.bootAccepted) this.safely(() => a.onBoot?.());
        else if (this.connected) {
            // Adopted while it waits (boot answered Pending): ask it to boot again now.
            this.bootTriggered = false;
            this.triggerBoot();
        }
        return () => {
            set.delete(a);
            if (set.size === 0) this.attachments.delete(connector);
        };
    }

    /** Takes a new connection; an older one is closed (it is replaced). */
    connect(conn: OcppConnection): void {
        const old = this.connection;
        if (old) {
            this.counters.replaced++;
            this.connection = undefined;
            void old.close({ code: 1000, reason: 'Replaced by a new connection' }).catch(() => {});
        }
        this.connection = conn;
        this.counters.connections++;
        this.protocol = conn.protocol as OcppProtocol;
        this.bootTriggered = false;
        this.listen(conn);
        this.events.emit('connected', { identity: this.identity, protocol: this.protocol });
        // A charge point boots only when it powers up: one that reconnects to a restarted
        // central system is asked to boot again, as its calls are refused until then.
        // An identity nobody adopted yet is not asked (its boot would only be answered Pending).
        if (!this.bootAccepted) {
            if (this.attached) setTimeout(() => this.triggerBoot(), 0).unref?.();
        } else this.runOnBoot();
    }

    /** Closes the connection (e.g. the charge point was removed). */
    async disconnect(reason = 'Closed by the central system'): Promise<void> {
        const conn = this.connection;
        this.connection = undefined;
        if (conn) await conn.close({ code: 1000, reason }).catch(() => undefined);
    }

    /** Sends a call; rejects with a clear error when not connected or the answer is an error. */
    async call(action: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
        const conn = this.connection;
        if (!conn) throw new Error(`OCPP charge point ${this.identity} is not connected`);
        try {
            return (await conn.call(action, params, {
                callTimeoutMs: this.opts.callTimeoutMs,
            })) as Record<string, unknown>;
        } catch (err) {
            this.counters.failedCalls++;
            const e = err as Error & { rpcErrorCode?: string };
            throw new Error(
                `OCPP charge point ${this.identity}: ${action} failed: ${e.rpcErrorCode ? `${e.rpcErrorCode} ` : ''}${e.message}`,
                { cause: err },
            );
        }
    }

    /** Starts a transaction from the central system (RemoteStartTransaction / RequestStartTransaction). */
    async remoteStart(connector: number, idTag: string): Promise<boolean> {
        const r =
            this.protocol === 'ocpp2.0.1'
                ? await this.call('RequestStartTransaction', {
                      idToken: { idToken: idTag, type: 'Central' },
                      remoteStartId: this.nextTxId++,
                      evseId: connector,
                  })
                : await this.call('RemoteStartTransaction', { idTag, connectorId: connector });
        return r.status === 'Accepted';
    }

    /** Stops the connector's running transaction; false when there is none or it was refused. */
    async remoteStop(connector: number): Promise<boolean> {
        const tx = this.connectors.get(connector)?.transaction;
        if (!tx) return false;
        const r =
            this.protocol === 'ocpp2.0.1'
                ? await this.call('RequestStopTransaction', { transactionId: tx.id })
                : await this.call('RemoteStopTransaction', { transactionId: Number(tx.id) });
        return r.status === 'Accepted';
    }

    private triggerBoot(): void {
        if (!this.connection || this.bootAccepted || this.bootTriggered) return;
        this.bootTriggered = true;
        // The same request in 1.6 and 2.0.1.
        this.call('TriggerMessage', { requestedMessage: 'BootNotification' }).catch(
            () => undefined,
        );
    }

    private runOnBoot(): void {
        for (const set of this.attachments.values()) {
            for (const a of set) this.safely(() => a.onBoot?.());
        }
    }

    private safely(f: () => void): void {
        try {
            f();
        } catch {
            // An attachment's failure must not break the session.
        }
    }

    private listen(conn: OcppConnection): void {
        const mine = () => this.connection === conn;
        conn.on('close', (e: { code?: number; reason?: string }) => {
            if (!mine()) return;
            this.connection = undefined;
            this.events.emit('disconnected', { identity: this.identity, ...e });
        });
        conn.on('badMessage', () => this.counters.badMessages++);
        conn.on('strictValidationFailure', (e: { outbound: boolean }) => {
            if (!e.outbound) this.counters.schemaViolations++;
        });
        conn.on('callError', (e: { outbound: boolean; error?: { rpcErrorCode?: string } }) => {
            if (!e.outbound && e.error?.rpcErrorCode === 'NotImplemented') {
                this.counters.unknownActions++;
            }
        });
        conn.on('call', (e: { outbound: boolean; payload: unknown[] }) =>
            this.events.emit('message', {
                identity: this.identity,
                direction: e.outbound ? 'out' : 'in',
                frame: e.payload,
            }),
        );
        conn.on('response', (e: { outbound: boolean; payload: unknown[] }) =>
            this.events.emit('message', {
                identity: this.identity,
                direction: e.outbound ? 'out' : 'in',
                frame: e.payload,
            }),
        );
        const handlers: Record<string, (p: Record<string, unknown>) => unknown> =
            this.protocol === 'ocpp2.0.1' ? this.handlers201() : this.handlers16();
        for (const [action, handler] of Object.entries(handlers)) {
            conn.handle(action, async ({ params }) => {
                this.limitRate();
                this.lastMessageAt = this.opts.now();
                // OCPP 2.0.1 B02.FR.09 / B03: until its boot is accepted, every other call of the
                // charge point is answered SecurityError; 1.6 has no such rule, and the same answer
                // is used (it is in 1.6's error codes).
                if (action !== 'BootNotification' && !this.bootAccepted) {
                    this.counters.refusedBeforeBoot++;
                    this.triggerBoot();
                    throw createRPCError('SecurityError', 'BootNotification not accepted yet', {});
                }
                return (await handler(params ?? {})) as Record<string, unknown>;
            });
        }
    }

    /** Token bucket: a charge point that floods gets GenericError and others stay unaffected. */
    private limitRate(): void {
        const now = this.opts.now();
        const { perSecond, burst } = this.opts.rateLimit;
        this.tokens = Math.min(burst, this.tokens + ((now - this.tokensAt) / 1000) * perSecond);
        this.tokensAt = now;
        if (this.tokens < 1) {
            this.counters.rateLimited++;
            throw createRPCError('GenericError', 'Too many calls', {});
        }
        this.tokens -= 1;
    }

    private state(connector: number): ConnectorState {
        let c = this.connectors.get(connector);
        if (!c) this.connectors.set(connector, (c = { status: 'Unknown' }));
        return c;
    }

    private acceptBoot(boot: BootInfo): Record<string, unknown> {
        this.boot = boot;
        // An identity nobody has adopted yet is told to wait (Pending) and asked again later.
        if (!this.attached) {
            return {
                status: 'Pending',
                currentTime: new Date(this.opts.now()).toISOString(),
                interval: 30,
            };
        }
        this.bootAccepted = true;
        this.events.emit('boot', { identity: this.identity, boot });
        setTimeout(() => this.afterBoot(), 0).unref?.();
        return {
            status: 'Accepted',
            currentTime: new Date(this.opts.now()).toISOString(),
            interval: this.opts.heartbeatInterval,
        };
    }

    /** After the boot is answered: meter value interval, then the attachments' fail-safes. */
    private afterBoot(): void {
        const interval = this.opts.meterValueSampleInterval;
        const configure =
            this.protocol === 'ocpp2.0.1'
                ? this.call('SetVariables', {
                      setVariableData: [
                          {
                              component: { name: 'SampledDataCtrlr' },
                              variable: { name: 'TxUpdatedInterval' },
                              attributeValue: String(interval),
                          },
                          {
                              component: { name: 'SampledDataCtrlr' },
                              variable: { name: 'TxUpdatedMeasurands' },
                              attributeValue: MEASURANDS,
                          },
                          {
                              component: { name: 'AlignedDataCtrlr' },
                              variable: { name: 'Interval' },
                              attributeValue: String(interval),
                          },
                      ],
                  })
                : this.call('ChangeConfiguration', {
                      key: 'MeterValueSampleInterval',
                      value: String(interval),
                  }).then(() =>
                      this.call('ChangeConfiguration', {
                          key: 'MeterValuesSampledData',
                          value: MEASURANDS,
                      }),
                  );
        // A charge point that refuses keeps its own settings: readings then come less often.
        configure.catch(() => undefined);
        this.runOnBoot();
    }

    /**
     * Asks the attached devices. Authorize names no connector: with one connector attached it is
     * that one; with several the token is only checked (StartTransaction then records it).
     * StopTransaction and an Ended transaction only check.
     */
    private authorizeToken(connector: number | null, token: string, record = true): boolean {
        if (connector === null && this.attachments.size === 1) {
            connector = [...this.attachments.keys()][0]!;
        }
        const sets =
            connector === null
                ? [...this.attachments.values()]
                : [this.attachments.get(connector) ?? new Set<ConnectorAttachment>()];
        const keep = record && connector !== null;
        let any = false;
        for (const set of sets) {
            for (const a of set) {
                if (!a.authorize) return true;
                if (a.authorize(token, keep)) any = true;
            }
        }
        return any;
    }

    private startTx(tx: Transaction): void {
        const c = this.state(tx.connector);
        c.transaction = tx;
        this.events.emit('transactionStarted', { identity: this.identity, transaction: tx });
    }

    private endTx(tx: Transaction, stop: { at: number; meterWh?: number; reason?: string }): void {
        tx.stoppedAt = stop.at;
        if (stop.meterWh !== undefined) {
            tx.meterStopWh = stop.meterWh;
            if (tx.meterStartWh !== undefined) tx.energyWh = stop.meterWh - tx.meterStartWh;
        }
        if (stop.reason) tx.reason = stop.reason;
        const c = this.connectors.get(tx.connector);
        if (c?.transaction === tx) delete c.transaction;
        this.finished.push(tx);
        if (this.finished.length > FINISHED_KEPT) this.finished.shift();
        this.events.emit('transactionEnded', { identity: this.identity, transaction: tx });
    }

    private findTx(id: string): Transaction | undefined {
        for (const c of this.connectors.values())
            if (c.transaction?.id === id) return c.transaction;
        return undefined;
    }

    private time(iso: unknown): number {
        const t = typeof iso === 'string' ? Date.parse(iso) : NaN;
        return Number.isFinite(t) ? t : this.opts.now();
    }

    private setStatus(connector: number, status: string, errorCode?: string): void {
        const c = this.state(connector);
        c.status = status;
        if (errorCode !== undefined) c.errorCode = errorCode;
        this.events.emit('status', { identity: this.identity, connector, status });
    }

    private handlers16(): Record<string, (p: Record<string, unknown>) => unknown> {
        const idTagInfo = (connector: number | null, idTag: string) => ({
            status: this.authorizeToken(connector, idTag) ? 'Accepted' : 'Invalid',
        });
        return {
            BootNotification: (p) =>
                this.acceptBoot({
                    vendor: String(p.chargePointVendor),
                    model: String(p.chargePointModel),
                    ...(p.chargePointSerialNumber !== undefined
                        ? { serial: String(p.chargePointSerialNumber) }
                        : {}),
                    ...(p.firmwareVersion !== undefined
                        ? { firmware: String(p.firmwareVersion) }
                        : {}),
                }),
            Heartbeat: () => {
                this.lastHeartbeatAt = this.opts.now();
                return { currentTime: new Date(this.opts.now()).toISOString() };
            },
            StatusNotification: (p) => {
                this.setStatus(Number(p.connectorId), String(p.status), String(p.errorCode));
                return {};
            },
            MeterValues: (p) => {
                const c = this.state(Number(p.connectorId));
                c.meter = mergeSamples(c.meter, p.meterValue, this.opts.now());
                return {};
            },
            Authorize: (p) => ({ idTagInfo: idTagInfo(null, String(p.idTag)) }),
            StartTransaction: (p) => {
                const connector = Number(p.connectorId);
                const info = idTagInfo(connector, String(p.idTag));
                const id = this.nextTxId++;
                this.startTx({
                    id: String(id),
                    connector,
                    idTag: String(p.idTag),
                    meterStartWh: Number(p.meterStart),
                    startedAt: this.time(p.timestamp),
                });
                return { transactionId: id, idTagInfo: info };
            },
            StopTransaction: (p) => {
                const tx = this.findTx(String(p.transactionId));
                if (tx) {
                    this.endTx(tx, {
                        at: this.time(p.timestamp),
                        meterWh: Number(p.meterStop),
                        ...(p.reason !== undefined ? { reason: String(p.reason) } : {}),
                    });
                }
                return p.idTag !== undefined
                    ? {
                          idTagInfo: {
                              status: this.authorizeToken(null, String(p.idTag), false)
                                  ? 'Accepted'
                                  : 'Invalid',
                          },
                      }
                    : {};
            },
            DataTransfer: () => ({ status: 'UnknownVendorId' }),
            DiagnosticsStatusNotification: () => ({}),
            FirmwareStatusNotification: () => ({}),
        };
    }

    private handlers201(): Record<string, (p: Record<string, unknown>) => unknown> {
        const tokenOf = (t: unknown) => String((t as { idToken?: unknown } | undefined)?.idToken);
        return {
            BootNotification: (p) => {
                const cs = (p.chargingStation ?? {}) as Record<string, unknown>;
                return this.acceptBoot({
                    vendor: String(cs.vendorName),
                    model: String(cs.model),
                    ...(cs.serialNumber !== undefined ? { serial: String(cs.serialNumber) } : {}),
                    ...(cs.firmwareVersion !== undefined
                        ? { firmware: String(cs.firmwareVersion) }
                        : {}),
                });
            },
            Heartbeat: () => {
                this.lastHeartbeatAt = this.opts.now();
                return { currentTime: new Date(this.opts.now()).toISOString() };
            },
            StatusNotification: (p) => {
                this.setStatus(Number(p.evseId), String(p.connectorStatus));
                return {};
            },
            MeterValues: (p) => {
                const c = this.state(Number(p.evseId));
                c.meter = mergeSamples(c.meter, p.meterValue, this.opts.now());
                return {};
            },
            Authorize: (p) => ({
                idTokenInfo: {
                    status: this.authorizeToken(null, tokenOf(p.idToken)) ? 'Accepted' : 'Invalid',
                },
            }),
            TransactionEvent: (p) => {
                const info = (p.transactionInfo ?? {}) as Record<string, unknown>;
                const txId = String(info.transactionId);
                const evse = p.evse as { id?: number } | undefined;
                let tx = this.findTx(txId);
                const connector = evse?.id ?? tx?.connector ?? 1;
                const meter = mergeSamples(undefined, p.meterValue, this.opts.now());
                const c = this.state(connector);
                if (p.meterValue !== undefined)
                    c.meter = mergeSamples(c.meter, p.meterValue, this.opts.now());
                if (info.chargingState !== undefined) c.chargingState = String(info.chargingState);
                const token = p.idToken !== undefined ? tokenOf(p.idToken) : undefined;
                const accepted =
                    token === undefined
                        ? undefined
                        : this.authorizeToken(connector, token, p.eventType !== 'Ended');
                if (!tx && p.eventType !== 'Ended') {
                    tx = {
                        id: txId,
                        connector,
                        startedAt: this.time(p.timestamp),
                        ...(token !== undefined ? { idTag: token } : {}),
                        ...(meter?.energyWh !== undefined ? { meterStartWh: meter.energyWh } : {}),
                    };
                    this.startTx(tx);
                } else if (tx && token !== undefined && tx.idTag === undefined) {
                    tx.idTag = token;
                }
                if (tx && p.eventType === 'Ended') {
                    delete c.chargingState;
                    this.endTx(tx, {
                        at: this.time(p.timestamp),
                        ...(meter?.energyWh !== undefined ? { meterWh: meter.energyWh } : {}),
                        ...(info.stoppedReason !== undefined
                            ? { reason: String(info.stoppedReason) }
                            : {}),
                    });
                }
                return accepted === undefined
                    ? {}
                    : { idTokenInfo: { status: accepted ? 'Accepted' : 'Invalid' } };
            },
            DataTransfer: () => ({ status: 'UnknownVendorId' }),
            NotifyEvent: () => ({}),
            NotifyReport: () => ({}),
            SecurityEventNotification: () => ({}),
            FirmwareStatusNotification: () => ({}),
            LogStatusNotification: () => ({}),
        };
    }
}

/** Folds OCPP meterValue[] into the newest sample (1.6 values are strings, 2.0.1 numbers). */
export function mergeSamples(
    prev: MeterSample | undefined,
    meterValue: unknown,
    now: number,
): MeterSample | undefined {
    if (!Array.isArray(meterValue) || meterValue.length === 0) return prev;
    const out: MeterSample = { ...(prev ?? {}), at: now };
    const currents: [number, number, number] = [...(prev?.currents ?? [0, 0, 0])] as [
        number,
        number,
        number,
    ];
    let sawCurrent = false;
    for (const mv of meterValue as { sampledValue?: unknown[] }[]) {
        for (const raw of mv.sampledValue ?? []) {
            const s = raw as Record<string, unknown>;
            const measurand =
                typeof s.measurand === 'string' ? s.measurand : 'Energy.Active.Import.Register';
            const uom = s.unitOfMeasure as { unit?: string; multiplier?: number } | undefined;
            const unit = (typeof s.unit === 'string' ? s.unit : uom?.unit) ?? '';
            const value = Number(s.value) * 10 ** (uom?.multiplier ?? 0);
            if (!Number.isFinite(value)) continue;
            const kilo = unit === 'kW' || unit === 'kWh' ? 1000 : 1;
            if (measurand === 'Current.Import') {
                const phase = typeof s.phase === 'string' ? s.phase : '';
                const i = phase.startsWith('L1')
                    ? 0
                    : phase.startsWith('L2')
                      ? 1
                      : phase.startsWith('L3')
                        ? 2
                        : -1;
                if (i !== 0 && i !== 1 && i !== 2) continue;
                currents[i] = Math.round(value * 1000);
                sawCurrent = true;
            } else if (measurand === 'Power.Active.Import' && !s.phase) {
                out.powerW = value * kilo;
            } else if (measurand === 'Energy.Active.Import.Register' && !s.phase) {
                out.energyWh = value * kilo;
            }
        }
    }
    if (sawCurrent) out.currents = currents;
    return out;
}
