// A simulated OCPP-J charge point (1.6J or 2.0.1J) on a real WebSocket, with one connector
// (connector/EVSE 1) and a car that follows the current the station offers (car.ts).
//
// The station keeps TxDefaultProfiles by id and stack level. Its effective limit is the limit
// of the valid profile with the highest stack level now; a profile past its validTo no longer
// counts, so when the central system stops renewing its control profile the station falls back
// to the fail-safe profile below it by itself, with or without a connection. With no valid
// profile the station's own maximum applies. A timer (tickMs) advances the car and re-evaluates
// the limit, so this happens without any message.
//
// Power limits (chargingRateUnit W) are converted to A per phase at 230 V over numberPhases
// (default 3), as the unit the station's pilot signal works in. A limit below 6 A (IEC 61851's
// lowest pilot current) means the car is offered nothing.
import { randomUUID } from 'node:crypto';
import { NOREPLY, RPCClient } from 'ocpp-rpc';
import type { RPC_ClientOptions } from 'ocpp-rpc/lib/client';
import { z } from 'zod';
import type { Phases3 } from '../core/types';
import { Car, type CarOptions } from './car';
import { DEFAULT_CAR } from './powerbrain-sim';

export type OcppProtocol = 'ocpp1.6' | 'ocpp2.0.1';

export interface OcppChargePointSimOptions {
    /** Central system endpoint without the identity, e.g. ws://127.0.0.1:1880/ocpp. */
    url: string;
    /** Charge point identity (appended to the URL, and the Basic-auth user). */
    identity: string;
    /** Default 'ocpp1.6'. */
    protocol?: OcppProtocol;
    /** Security profile 1/2: Basic-auth password sent in the WebSocket handshake. */
    password?: string;
    /** Security profile 2 (wss): CA to trust and whether to check the server's certificate. */
    tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
    /** Largest current the station offers per phase (mA). Default 32000. */
    maxCurrent?: number;
    vendor?: string;
    model?: string;
    /** Default `sim-<identity>`. */
    serial?: string;
    /** The car plugged in by plug() without arguments and at start with `plugged`. */
    car?: CarOptions;
    plugged?: boolean;
    /** A card shown at the reader whenever the charge point has booted with a car plugged in and
     *  no transaction running (a driver who taps their card once the station is online). */
    cardAfterBoot?: string;
    /** Meter value interval (s): 1.6 MeterValueSampleInterval; 2.0.1 both intervals. Default 10. */
    meterValueInterval?: number;
    /** Heartbeat interval (s) until the BootNotification answer sets one. Default 300. */
    heartbeatInterval?: number;
    /** Simulation step and limit re-evaluation (ms). Default 250. */
    tickMs?: number;
    /** Backoff between connection attempts (ms). Default 1000 doubling up to 10000. */
    reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
    /** Answer every SetChargingProfile with Rejected. */
    rejectProfiles?: boolean;
    /** Timeout of the station's own calls (ms). Default 10000. */
    callTimeoutMs?: number;
}

export interface OcppSchedulePeriod {
    startPeriod: number;
    limit: number;
    numberPhases?: number;
}

/** A TxDefaultProfile as the station keeps it (times in ms since the epoch). */
export interface OcppStoredProfile {
    id: number;
    stackLevel: number;
    kind: 'Absolute' | 'Relative' | 'Recurring';
    recurrency?: 'Daily' | 'Weekly';
    validFrom?: number;
    validTo?: number;
    startSchedule?: number;
    /** s */
    duration?: number;
    unit: 'A' | 'W';
    periods: OcppSchedulePeriod[];
    receivedAt: number;
}

export interface OcppChargePointSimState {
    identity: string;
    protocol: OcppProtocol;
    /** The WebSocket is open. */
    connected: boolean;
    /** BootNotification Accepted on the current connection. */
    booted: boolean;
    /** Connector status as last determined (1.6: Available, Preparing, Charging, …; 2.0.1: Available, Occupied). */
    status: string;
    /** Limit of the profiles now (mA per phase), or the station maximum without a valid profile. */
    effectiveLimit: number;
    /** Id of the profile the limit comes from; undefined = station maximum. */
    limitProfileId: number | undefined;
    /** Phases the limit allows (numberPhases, default 3). */
    limitPhases: 1 | 2 | 3;
    /** mA per phase the car is offered (0 without a transaction or below 6 A). */
    offered: number;
    plugged: boolean;
    currents: Phases3;
    powerW: number;
    /** Energy.Active.Import.Register (Wh). */
    energyWh: number;
    soc: number | undefined;
    transactionId: string | number | undefined;
    idTag: string | undefined;
    profiles: OcppStoredProfile[];
    /** s */
    meterValueInterval: number;
    /** s */
    heartbeatInterval: number;
    silent: boolean;
    /** Calls the central system sent, by action. */
    received: Record<string, number>;
    /** Calls the station sent and got an answer to, by action. */
    sent: Record<string, number>;
}

const MIN_PILOT = 6000; // mA
const VOLTAGE = 230;
const MEASURANDS = ['Current.Import', 'Power.Active.Import', 'Energy.Active.Import.Register'];

// Boundary validation of what the station reads out of the central system's calls (on top of
// ocpp-rpc's schema validation): only the fields it acts upon.
const period = z.object({
    startPeriod: z.number().int().min(0),
    limit: z.number().min(0),
    numberPhases: z.number().int().min(1).max(3).optional(),
});
const schedule = z.object({
    startSchedule: z.string().optional(),
    duration: z.number().int().optional(),
    chargingRateUnit: z.enum(['A', 'W']),
    chargingSchedulePeriod: z.array(period).min(1),
});
const profileCommon = {
    stackLevel: z.number().int().min(0),
    chargingProfilePurpose: z.string(),
    chargingProfileKind: z.enum(['Absolute', 'Relative', 'Recurring']),
    recurrencyKind: z.enum(['Daily', 'Weekly']).optional(),
    validFrom: z.string().optional(),
    validTo: z.string().optional(),
};
const profile16 = z.object({
    connectorId: z.number().int(),
    csChargingProfiles: z.object({
        chargingProfileId: z.number().int(),
        ...profileCommon,
        chargingSchedule: schedule,
    }),
});
const profile201 = z.object({
    evseId: z.number().int(),
    chargingProfile: z.object({
        id: z.number().int(),
        ...profileCommon,
        chargingSchedule: z.array(schedule.extend({ id: z.number().int() })).min(1),
    }),
});

type ProfileHead = z.infer<z.ZodObject<typeof profileCommon>>;

function time(iso: string | undefined): number | undefined {
    if (iso === undefined) return undefined;
    const t = Date.parse(iso);
    return Number.isFinite(t) ? t : undefined;
}

type Handler = (params: Record<string, unknown>) => Record<string, unknown> | void;

export class OcppChargePointSim {
    private readonly opts: OcppChargePointSimOptions;
    readonly protocol: OcppProtocol;
    private readonly maxCurrent: number;
    private readonly client: RPCClient;
    private readonly tickTimer: NodeJS.Timeout;
    private readonly timers = new Set<NodeJS.Timeout>();
    private heartbeatTimer: NodeJS.Timeout | undefined;
    private meterTimer: NodeJS.Timeout | undefined;
    private txUpdateTimer: NodeJS.Timeout | undefined;
    private reconnectTimer: NodeJS.Timeout | undefined;
    private readonly silentWaiters = new Set<() => void>();
    private closed = false;
    private isConnected = false;
    private isBooted = false;
    private silentMode = false;
    private rejectAll: boolean;
    private offlineUntil = 0;
    private reconnectDelay: number;
    private last = Date.now();
    private car: Car | undefined;
    private baseEnergyWh = 0;
    private readonly profiles = new Map<number, OcppStoredProfile>();
    private tx:
        | {
              id: string | number | undefined;
              idTag: string;
              startedAt: number;
              seqNo: number;
              remoteStartId?: number;
          }
        | undefined;
    /** An authorization waiting for a car (card or remote start before plug-in). */
    private pendingAuth: { idTag: string; remoteStartId?: number } | undefined;
    private stoppedWhilePlugged = false;
    private lastStatus = '';
    private lastChargingState = '';
    private meterInterval: number;
    private txUpdatedInterval: number;
    private heartbeatS: number;
    private sampledData = [...MEASURANDS];
    private readonly received: Record<string, number> = {};
    private readonly sent: Record<string, number> = {};

    constructor(options: OcppChargePointSimOptions) {
        this.opts = options;
        this.protocol = options.protocol ?? 'ocpp1.6';
        this.maxCurrent = options.maxCurrent ?? 32_000;
        this.meterInterval = this.txUpdatedInterval = options.meterValueInterval ?? 10;
        this.heartbeatS = options.heartbeatInterval ?? 300;
        this.rejectAll = options.rejectProfiles ?? false;
        this.reconnectDelay = options.reconnect?.initialDelayMs ?? 1000;
        const initialDelay = options.reconnect?.initialDelayMs ?? 1000;
        const clientOptions: Partial<RPC_ClientOptions> = {
            endpoint: options.url,
            identity: options.identity,
            protocols: [this.protocol],
            strictMode: true,
            password: options.password ?? null,
            callTimeoutMs: options.callTimeoutMs ?? 10_000,
            reconnect: true,
            backoff: {
                initialDelay,
                // The backoff library wants max > initial.
                maxDelay: Math.max(options.reconnect?.maxDelayMs ?? 10_000, initialDelay + 1),
                factor: 2,
                randomisationFactor: 0.25,
            },
            wsOpts: options.tls
                ? { ca: options.tls.ca, rejectUnauthorized: options.tls.rejectUnauthorized ?? true }
                : {},
        };
        this.client = new RPCClient(clientOptions as RPC_ClientOptions);
        this.client.on('open', () => this.onOpen());
        this.client.on('disconnect', () => this.onDisconnect());
        // Fully closed: the first connection failed, or dropConnection(); the library only
        // retries connections that were open once, so the rest is retried here.
        this.client.on('close', () => {
            this.onDisconnect();
            this.scheduleReconnect();
        });
        this.client.on('error', () => undefined);
        this.client.on('socketError', () => undefined);
        this.registerHandlers();
        if (options.plugged) this.car = new Car(options.car ?? DEFAULT_CAR);
        this.lastStatus = this.status();
        this.tickTimer = setInterval(() => this.tick(), options.tickMs ?? 250);
    }

    /** Connects (and keeps reconnecting); resolves after the first attempt, connected or not. */
    async start(): Promise<void> {
        await this.client.connect().catch(() => undefined);
    }

    get state(): OcppChargePointSimState {
        this.advance();
        const lim = this.limitNow();
        return {
            identity: this.opts.identity,
            protocol: this.protocol,
            connected: this.isConnected,
            booted: this.isBooted,
            status: this.status(),
            effectiveLimit: lim.limit,
            limitProfileId: lim.profileId,
            limitPhases: lim.phases,
            offered: this.offered(lim.limit),
            plugged: this.car !== undefined,
            currents: this.car?.currents ?? [0, 0, 0],
            powerW: this.car?.powerW ?? 0,
            energyWh: this.energyWh(),
            soc: this.car?.soc,
            transactionId: this.tx?.id,
            idTag: this.tx?.idTag,
            profiles: [...this.profiles.values()].map((p) => ({
                ...p,
                periods: p.periods.map((q) => ({ ...q })),
            })),
            meterValueInterval: this.meterInterval,
            heartbeatInterval: this.heartbeatS,
            silent: this.silentMode,
            received: { ...this.received },
            sent: { ...this.sent },
        };
    }

    /** Plugs a car in (the configured one by default). */
    plug(car?: CarOptions): void {
        if (this.car) return;
        this.advance();
        this.car = new Car(car ?? this.opts.car ?? DEFAULT_CAR);
        this.stoppedWhilePlugged = false;
        if (this.pendingAuth) {
            const auth = this.pendingAuth;
            this.pendingAuth = undefined;
            void this.startTransaction(auth.idTag, auth.remoteStartId);
        }
        this.checkStatus();
    }

    /** Unplugs the car; a running transaction ends (EVDisconnected). */
    async unplug(): Promise<void> {
        if (!this.car) return;
        this.advance();
        this.baseEnergyWh += this.car.energyWh;
        this.car = undefined;
        this.stoppedWhilePlugged = false;
        if (this.tx) await this.stopTransaction('EVDisconnected');
        this.checkStatus();
    }

    /**
     * An RFID card at the reader: Authorize, then a transaction starts (at once if a car is
     * plugged, else when one is). The card of the running transaction stops it (Local).
     * Resolves whether the card was accepted.
     */
    async presentCard(idTag: string): Promise<boolean> {
        if (this.tx && this.tx.idTag === idTag) {
            await this.stopTransaction('Local');
            return true;
        }
        if (this.tx) return false;
        const answer =
            this.protocol === 'ocpp1.6'
                ? await this.call('Authorize', { idTag })
                : await this.call('Authorize', { idToken: { idToken: idTag, type: 'ISO14443' } });
        const info = (answer?.idTagInfo ?? answer?.idTokenInfo) as { status?: string } | undefined;
        if (info?.status !== 'Accepted') return false;
        if (this.car) await this.startTransaction(idTag);
        else this.pendingAuth = { idTag };
        return true;
    }

    /** Stays connected and answers nothing (and sends nothing); false answers again. */
    setSilent(silent: boolean): void {
        this.silentMode = silent;
        if (!silent) {
            for (const release of this.silentWaiters) release();
            this.silentWaiters.clear();
            // Status changes during the silence were not sent.
            if (this.isBooted && !this.closed) void this.sendStatus();
        }
    }

    /** Answer every SetChargingProfile with Rejected (true) or handle them (false). */
    setRejectProfiles(reject: boolean): void {
        this.rejectAll = reject;
    }

    /** Drops the connection at once (as a network fault would); reconnects after offlineMs at the earliest. */
    async dropConnection(offlineMs = 0): Promise<void> {
        this.offlineUntil = Date.now() + offlineMs;
        await this.client.close({ force: true }).catch(() => undefined);
    }

    /** Stops everything: timers, the connection, reconnection. Never rejects. */
    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        clearInterval(this.tickTimer);
        this.stopSessionTimers();
        if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
        for (const t of this.timers) clearTimeout(t);
        this.timers.clear();
        this.setSilent(false);
        await this.client.close({ force: true }).catch(() => undefined);
    }

    // --- connection ---

    private onOpen(): void {
        this.isConnected = true;
        this.reconnectDelay = this.opts.reconnect?.initialDelayMs ?? 1000;
        void this.boot();
    }

    private onDisconnect(): void {
        this.isConnected = false;
        this.isBooted = false;
        this.stopSessionTimers();
    }

    private scheduleReconnect(): void {
        if (this.closed || this.reconnectTimer) return;
        const delay = Math.max(this.reconnectDelay, this.offlineUntil - Date.now());
        this.reconnectDelay = Math.min(
            this.reconnectDelay * 2,
            this.opts.reconnect?.maxDelayMs ?? 10_000,
        );
        this.reconnectTimer = setTimeout(() => {
            this.reconnectTimer = undefined;
            if (!this.closed) void this.client.connect().catch(() => undefined);
        }, delay);
    }

    private stopSessionTimers(): void {
        for (const t of [this.heartbeatTimer, this.meterTimer, this.txUpdateTimer]) {
            if (t) clearInterval(t);
        }
        this.heartbeatTimer = this.meterTimer = this.txUpdateTimer = undefined;
    }

    /** A BootNotification on every connection, so that a central system always learns who it is. */
    private async boot(): Promise<void> {
        if (this.closed || !this.isConnected) return;
        const o = this.opts;
        const vendor = o.vendor ?? 'EVCM';
        const model = o.model ?? 'SimCharger';
        const serial = o.serial ?? `sim-${o.identity}`.slice(0, 25);
        const answer =
            this.protocol === 'ocpp1.6'
                ? await this.call('BootNotification', {
                      chargePointVendor: vendor,
                      chargePointModel: model,
                      chargePointSerialNumber: serial,
                  })
                : await this.call('BootNotification', {
                      reason: 'PowerUp',
                      chargingStation: { vendorName: vendor, model, serialNumber: serial },
                  });
        if (this.closed || !this.isConnected) return;
        const interval = typeof answer?.interval === 'number' ? answer.interval : 0;
        if (answer?.status !== 'Accepted') {
            // Pending/Rejected (or no answer): ask again after the interval given.
            this.later(() => void this.boot(), Math.max(1, interval || 10) * 1000);
            return;
        }
        this.isBooted = true;
        if (interval > 0) this.heartbeatS = interval;
        this.restartHeartbeat();
        this.restartMeterTimers();
        this.lastStatus = this.status();
        await this.sendStatus();
        const card = this.opts.cardAfterBoot;
        if (card !== undefined && this.car && !this.tx && !this.closed) {
            await this.presentCard(card).catch(() => false);
        }
    }

    private restartHeartbeat(): void {
        if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = undefined;
        if (!this.isBooted || this.heartbeatS <= 0) return;
        this.heartbeatTimer = setInterval(
            () => void this.call('Heartbeat', {}),
            this.heartbeatS * 1000,
        );
    }

    private restartMeterTimers(): void {
        if (this.meterTimer) clearInterval(this.meterTimer);
        if (this.txUpdateTimer) clearInterval(this.txUpdateTimer);
        this.meterTimer = this.txUpdateTimer = undefined;
        if (!this.isBooted) return;
        if (this.meterInterval > 0) {
            this.meterTimer = setInterval(
                () => void this.sendMeterValues(),
                this.meterInterval * 1000,
            );
        }
        if (this.protocol === 'ocpp2.0.1' && this.txUpdatedInterval > 0) {
            this.txUpdateTimer = setInterval(() => {
                if (this.tx) void this.transactionEvent('Updated', 'MeterValuePeriodic');
            }, this.txUpdatedInterval * 1000);
        }
    }

    /** A timer that close() clears. */
    private later(fn: () => void, ms: number): void {
        const t = setTimeout(() => {
            this.timers.delete(t);
            if (!this.closed) fn();
        }, ms);
        this.timers.add(t);
    }

    /** A call to the central system; undefined when offline, silent or on any error. */
    private async call(
        method: string,
        params: Record<string, unknown>,
    ): Promise<Record<string, unknown> | undefined> {
        if (this.closed || !this.isConnected || this.silentMode) return undefined;
        try {
            const answer = (await this.client.call(method, params)) as Record<string, unknown>;
            this.sent[method] = (this.sent[method] ?? 0) + 1;
            return answer;
        } catch {
            return undefined;
        }
    }

    // --- simulation ---

    private tick(): void {
        this.advance();
        this.checkStatus();
    }

    private advance(): void {
        const now = Date.now();
        const dt = now - this.last;
        this.last = now;
        if (!this.car) return;
        const lim = this.limitNow(now);
        this.car.step(Math.max(0, dt), this.offered(lim.limit), lim.phases);
    }

    private offered(limit: number): number {
        if (!this.tx || !this.car) return 0;
        return limit >= MIN_PILOT ? limit : 0;
    }

    private energyWh(): number {
        return this.baseEnergyWh + (this.car?.energyWh ?? 0);
    }

    /** The limit of the valid profile with the highest stack level now, else the station maximum. */
    private limitNow(now = Date.now()): {
        limit: number;
        phases: 1 | 2 | 3;
        profileId: number | undefined;
    } {
        const valid = [...this.profiles.values()]
            .filter(
                (p) =>
                    (p.validFrom === undefined || p.validFrom <= now) &&
                    (p.validTo === undefined || now < p.validTo),
            )
            .sort((a, b) => b.stackLevel - a.stackLevel);
        for (const p of valid) {
            const hit = this.periodAt(p, now);
            if (!hit) continue;
            const phases = (hit.numberPhases ?? 3) as 1 | 2 | 3;
            const amps = p.unit === 'A' ? hit.limit : hit.limit / (VOLTAGE * phases);
            const limit = Math.round(Math.min(this.maxCurrent, Math.max(0, amps * 1000)));
            return { limit, phases, profileId: p.id };
        }
        return { limit: this.maxCurrent, phases: 3, profileId: undefined };
    }

    private periodAt(p: OcppStoredProfile, now: number): OcppSchedulePeriod | undefined {
        let start: number;
        if (p.kind === 'Relative') start = this.tx?.startedAt ?? now;
        else start = p.startSchedule ?? p.validFrom ?? p.receivedAt;
        let offset = (now - start) / 1000;
        if (p.kind === 'Recurring') {
            const cycle = p.recurrency === 'Weekly' ? 7 * 86_400 : 86_400;
            offset = ((offset % cycle) + cycle) % cycle;
        }
        if (offset < 0) return undefined;
        if (p.duration !== undefined && offset >= p.duration) return undefined;
        let hit: OcppSchedulePeriod | undefined;
        for (const q of p.periods) if (q.startPeriod <= offset) hit = q;
        return hit;
    }

    /** Connector status in the protocol's terms. */
    private status(): string {
        if (this.protocol === 'ocpp2.0.1') return this.car ? 'Occupied' : 'Available';
        if (!this.car) return 'Available';
        if (!this.tx) return this.stoppedWhilePlugged ? 'Finishing' : 'Preparing';
        return this.chargingState();
    }

    /** Charging, SuspendedEV, SuspendedEVSE, EVConnected (2.0.1 without energy flow) or Idle. */
    private chargingState(): string {
        if (!this.car) return 'Idle';
        if (!this.tx) return 'EVConnected';
        if (this.offered(this.limitNow().limit) === 0) return 'SuspendedEVSE';
        if (this.car.full) return 'SuspendedEV';
        return 'Charging';
    }

    private checkStatus(): void {
        const status = this.status();
        if (status !== this.lastStatus) {
            this.lastStatus = status;
            void this.sendStatus();
        }
        const cs = this.tx ? this.chargingState() : '';
        if (cs !== this.lastChargingState) {
            const had = this.lastChargingState !== '';
            this.lastChargingState = cs;
            if (had && cs && this.protocol === 'ocpp2.0.1') {
                void this.transactionEvent('Updated', 'ChargingStateChanged');
            }
        }
    }

    private async sendStatus(): Promise<void> {
        if (!this.isBooted) return;
        const status = this.status();
        if (this.protocol === 'ocpp1.6') {
            await this.call('StatusNotification', {
                connectorId: 1,
                status,
                errorCode: 'NoError',
                timestamp: new Date().toISOString(),
            });
        } else {
            await this.call('StatusNotification', {
                timestamp: new Date().toISOString(),
                connectorStatus: status,
                evseId: 1,
                connectorId: 1,
            });
        }
    }

    private meterValue(context = 'Sample.Periodic'): Record<string, unknown> {
        this.advance();
        const currents = this.car?.currents ?? [0, 0, 0];
        const samples: { measurand: string; value: number; unit: string; phase?: string }[] = [];
        if (this.sampledData.includes('Current.Import')) {
            currents.forEach((mA, i) =>
                samples.push({
                    measurand: 'Current.Import',
                    phase: `L${i + 1}`,
                    value: Math.round(mA / 10) / 100,
                    unit: 'A',
                }),
            );
        }
        if (this.sampledData.includes('Power.Active.Import')) {
            samples.push({
                measurand: 'Power.Active.Import',
                value: Math.round(this.car?.powerW ?? 0),
                unit: 'W',
            });
        }
        if (this.sampledData.includes('Energy.Active.Import.Register')) {
            samples.push({
                measurand: 'Energy.Active.Import.Register',
                value: Math.round(this.energyWh() * 10) / 10,
                unit: 'Wh',
            });
        }
        const sampledValue = samples.map((s) =>
            this.protocol === 'ocpp1.6'
                ? {
                      value: String(s.value),
                      context,
                      measurand: s.measurand,
                      ...(s.phase ? { phase: s.phase } : {}),
                      location: 'Outlet',
                      unit: s.unit,
                  }
                : {
                      value: s.value,
                      context,
                      measurand: s.measurand,
                      ...(s.phase ? { phase: s.phase } : {}),
                      location: 'Outlet',
                      unitOfMeasure: { unit: s.unit },
                  },
        );
        return { timestamp: new Date().toISOString(), sampledValue };
    }

    private async sendMeterValues(context = 'Sample.Periodic'): Promise<void> {
        if (this.protocol === 'ocpp1.6') {
            await this.call('MeterValues', {
                connectorId: 1,
                ...(typeof this.tx?.id === 'number' ? { transactionId: this.tx.id } : {}),
                meterValue: [this.meterValue(context)],
            });
        } else {
            await this.call('MeterValues', { evseId: 1, meterValue: [this.meterValue(context)] });
        }
    }

    // --- transactions ---

    private async startTransaction(idTag: string, remoteStartId?: number): Promise<void> {
        if (this.tx || !this.car) return;
        this.advance();
        const meterStart = Math.round(this.energyWh());
        this.tx = { id: undefined, idTag, startedAt: Date.now(), seqNo: 0, remoteStartId };
        const tx = this.tx;
        if (this.protocol === 'ocpp1.6') {
            const answer = await this.call('StartTransaction', {
                connectorId: 1,
                idTag,
                meterStart,
                timestamp: new Date(tx.startedAt).toISOString(),
            });
            if (answer && typeof answer.transactionId === 'number') tx.id = answer.transactionId;
            const status = (answer?.idTagInfo as { status?: string } | undefined)?.status;
            if (answer && status !== 'Accepted' && this.tx === tx) {
                await this.stopTransaction('DeAuthorized');
                return;
            }
        } else {
            tx.id = randomUUID();
            await this.transactionEvent(
                'Started',
                remoteStartId !== undefined ? 'RemoteStart' : 'Authorized',
            );
        }
        this.checkStatus();
    }

    private async stopTransaction(reason: string): Promise<void> {
        const tx = this.tx;
        if (!tx) return;
        this.advance();
        this.tx = undefined;
        this.stoppedWhilePlugged = this.car !== undefined;
        if (this.protocol === 'ocpp1.6') {
            if (typeof tx.id === 'number') {
                await this.call('StopTransaction', {
                    transactionId: tx.id,
                    idTag: tx.idTag,
                    meterStop: Math.round(this.energyWh()),
                    timestamp: new Date().toISOString(),
                    reason,
                });
            }
        } else {
            const trigger =
                reason === 'Remote'
                    ? 'RemoteStop'
                    : reason === 'Local'
                      ? 'StopAuthorized'
                      : 'EVCommunicationLost';
            await this.transactionEvent('Ended', trigger, tx, reason);
        }
        this.checkStatus();
    }

    private async transactionEvent(
        eventType: 'Started' | 'Updated' | 'Ended',
        triggerReason: string,
        tx = this.tx,
        stoppedReason?: string,
    ): Promise<void> {
        if (!tx || typeof tx.id !== 'string') return;
        const chargingState =
            eventType === 'Ended' ? (this.car ? 'EVConnected' : 'Idle') : this.chargingState();
        await this.call('TransactionEvent', {
            eventType,
            timestamp: new Date().toISOString(),
            triggerReason,
            seqNo: tx.seqNo++,
            transactionInfo: {
                transactionId: tx.id,
                chargingState,
                ...(stoppedReason ? { stoppedReason } : {}),
                ...(tx.remoteStartId !== undefined ? { remoteStartId: tx.remoteStartId } : {}),
            },
            evse: { id: 1, connectorId: 1 },
            ...(eventType === 'Started'
                ? { idToken: { idToken: tx.idTag, type: 'ISO14443' } }
                : {}),
            meterValue: [
                this.meterValue(
                    eventType === 'Started'
                        ? 'Transaction.Begin'
                        : eventType === 'Ended'
                          ? 'Transaction.End'
                          : 'Sample.Periodic',
                ),
            ],
        });
    }

    // --- calls from the central system ---

    private registerHandlers(): void {
        const handlers: Record<string, Handler> =
            this.protocol === 'ocpp1.6' ? this.handlers16() : this.handlers201();
        for (const [method, fn] of Object.entries(handlers)) {
            this.client.handle(method, async ({ params }) => {
                this.received[method] = (this.received[method] ?? 0) + 1;
                if (this.silentMode) {
                    // Hung station: the call stays unanswered (the central system times out).
                    await new Promise<void>((resolve) => this.silentWaiters.add(resolve));
                    return NOREPLY as unknown as Record<string, unknown>;
                }
                return fn((params ?? {}) as Record<string, unknown>) ?? {};
            });
        }
    }

    private storeProfile(p: OcppStoredProfile): void {
        // Same id, or same stack level and purpose (all TxDefault here): the new one replaces it.
        for (const [id, old] of this.profiles) {
            if (id === p.id || old.stackLevel === p.stackLevel) this.profiles.delete(id);
        }
        this.profiles.set(p.id, p);
        this.checkStatus();
    }

    private acceptProfile(
        purpose: string,
        target: number,
        make: () => OcppStoredProfile,
    ): 'Accepted' | 'Rejected' {
        if (this.rejectAll || purpose !== 'TxDefaultProfile' || (target !== 0 && target !== 1)) {
            return 'Rejected';
        }
        const p = make();
        if (p.kind === 'Recurring' && p.startSchedule === undefined) return 'Rejected';
        if (p.periods.length === 0 || p.periods[0]!.startPeriod !== 0) return 'Rejected';
        this.storeProfile(p);
        return 'Accepted';
    }

    private clearProfiles(match: (p: OcppStoredProfile) => boolean): 'Accepted' | 'Unknown' {
        let hit = false;
        for (const [id, p] of this.profiles) {
            if (match(p)) {
                this.profiles.delete(id);
                hit = true;
            }
        }
        this.checkStatus();
        return hit ? 'Accepted' : 'Unknown';
    }

    private trigger(message: string): 'Accepted' | 'NotImplemented' {
        const run: Record<string, () => void> = {
            BootNotification: () => void this.boot(),
            Heartbeat: () => void this.call('Heartbeat', {}),
            MeterValues: () => void this.sendMeterValues('Trigger'),
            StatusNotification: () => void this.sendStatus(),
        };
        if (this.protocol === 'ocpp2.0.1') {
            run.TransactionEvent = () => void this.transactionEvent('Updated', 'Trigger');
        }
        const fn = run[message];
        if (!fn) return 'NotImplemented';
        // After the answer has gone out.
        this.later(fn, 0);
        return 'Accepted';
    }

    private handlers16(): Record<string, Handler> {
        return {
            SetChargingProfile: (params) => {
                const parsed = profile16.safeParse(params);
                if (!parsed.success) return { status: 'Rejected' };
                const cp = parsed.data.csChargingProfiles;
                const status = this.acceptProfile(
                    cp.chargingProfilePurpose,
                    parsed.data.connectorId,
                    () => this.toStored(cp.chargingProfileId, cp, cp.chargingSchedule),
                );
                return { status };
            },
            ClearChargingProfile: (params) => {
                const q = params as {
                    id?: number;
                    connectorId?: number;
                    chargingProfilePurpose?: string;
                    stackLevel?: number;
                };
                if (q.chargingProfilePurpose && q.chargingProfilePurpose !== 'TxDefaultProfile') {
                    return { status: 'Unknown' };
                }
                if (q.connectorId !== undefined && q.connectorId > 1) return { status: 'Unknown' };
                return {
                    status: this.clearProfiles(
                        (p) =>
                            (q.id === undefined || p.id === q.id) &&
                            (q.stackLevel === undefined || p.stackLevel === q.stackLevel),
                    ),
                };
            },
            RemoteStartTransaction: (params) => {
                const q = params as { idTag: string; connectorId?: number };
                if (this.tx || (q.connectorId !== undefined && q.connectorId !== 1)) {
                    return { status: 'Rejected' };
                }
                this.remoteStart(q.idTag);
                return { status: 'Accepted' };
            },
            RemoteStopTransaction: (params) => {
                const q = params as { transactionId: number };
                if (!this.tx || this.tx.id !== q.transactionId) return { status: 'Rejected' };
                this.later(() => void this.stopTransaction('Remote'), 0);
                return { status: 'Accepted' };
            },
            ChangeConfiguration: (params) => {
                const q = params as { key: string; value: string };
                return { status: this.changeConfiguration(q.key, q.value) };
            },
            GetConfiguration: (params) => {
                const q = params as { key?: string[] };
                const all = this.configuration16();
                const wanted = q.key && q.key.length > 0 ? q.key : Object.keys(all);
                return {
                    configurationKey: wanted
                        .filter((k) => k in all)
                        .map((k) => ({ key: k, readonly: all[k]!.readonly, value: all[k]!.value })),
                    unknownKey: wanted.filter((k) => !(k in all)),
                };
            },
            TriggerMessage: (params) => {
                const q = params as { requestedMessage: string; connectorId?: number };
                return { status: this.trigger(q.requestedMessage) };
            },
        };
    }

    private configuration16(): Record<string, { readonly: boolean; value: string }> {
        return {
            MeterValueSampleInterval: { readonly: false, value: String(this.meterInterval) },
            HeartbeatInterval: { readonly: false, value: String(this.heartbeatS) },
            MeterValuesSampledData: { readonly: false, value: this.sampledData.join(',') },
            NumberOfConnectors: { readonly: true, value: '1' },
            AuthorizeRemoteTxRequests: { readonly: true, value: 'false' },
            ChargeProfileMaxStackLevel: { readonly: true, value: '8' },
            ChargingScheduleAllowedChargingRateUnit: { readonly: true, value: 'Current,Power' },
            ChargingScheduleMaxPeriods: { readonly: true, value: '24' },
            MaxChargingProfilesInstalled: { readonly: true, value: '8' },
            SupportedFeatureProfiles: {
                readonly: true,
                value: 'Core,SmartCharging,RemoteTrigger',
            },
        };
    }

    private changeConfiguration(key: string, value: string): string {
        const seconds = (): number | undefined => {
            const n = Number(value);
            return Number.isInteger(n) && n >= 0 ? n : undefined;
        };
        switch (key) {
            case 'MeterValueSampleInterval': {
                const n = seconds();
                if (n === undefined) return 'Rejected';
                this.meterInterval = this.txUpdatedInterval = n;
                this.restartMeterTimers();
                return 'Accepted';
            }
            case 'HeartbeatInterval': {
                const n = seconds();
                if (n === undefined) return 'Rejected';
                this.heartbeatS = n;
                this.restartHeartbeat();
                return 'Accepted';
            }
            case 'MeterValuesSampledData': {
                const list = value
                    .split(',')
                    .map((s) => s.trim())
                    .filter(Boolean);
                if (list.length === 0 || list.some((m) => !MEASURANDS.includes(m))) {
                    return 'Rejected';
                }
                this.sampledData = list;
                return 'Accepted';
            }
        }
        return key in this.configuration16() ? 'Rejected' : 'NotSupported';
    }

    private remoteStart(idTag: string, remoteStartId?: number): void {
        if (this.car) this.later(() => void this.startTransaction(idTag, remoteStartId), 0);
        else this.pendingAuth = { idTag, remoteStartId };
    }

    private toStored(id: number, cp: ProfileHead, s: z.infer<typeof schedule>): OcppStoredProfile {
        return {
            id,
            stackLevel: cp.stackLevel,
            kind: cp.chargingProfileKind,
            recurrency: cp.recurrencyKind,
            validFrom: time(cp.validFrom),
            validTo: time(cp.validTo),
            startSchedule: time(s.startSchedule),
            duration: s.duration,
            unit: s.chargingRateUnit,
            periods: s.chargingSchedulePeriod.map((q) => ({ ...q })),
            receivedAt: Date.now(),
        };
    }

    private handlers201(): Record<string, Handler> {
        const variables: Record<string, { get: () => string; set?: (v: string) => string }> = {
            'SampledDataCtrlr.TxUpdatedInterval': {
                get: () => String(this.txUpdatedInterval),
                set: (v) => this.setInterval201(v, (n) => (this.txUpdatedInterval = n)),
            },
            'AlignedDataCtrlr.Interval': {
                get: () => String(this.meterInterval),
                set: (v) => this.setInterval201(v, (n) => (this.meterInterval = n)),
            },
            'OCPPCommCtrlr.HeartbeatInterval': {
                get: () => String(this.heartbeatS),
                set: (v) => {
                    const n = Number(v);
                    if (!Number.isInteger(n) || n < 0) return 'Rejected';
                    this.heartbeatS = n;
                    this.restartHeartbeat();
                    return 'Accepted';
                },
            },
            'SmartChargingCtrlr.Enabled': { get: () => 'true' },
            'SmartChargingCtrlr.RateUnit': { get: () => 'A,W' },
            'SmartChargingCtrlr.ProfileStackLevel': { get: () => '8' },
        };
        const components = new Set(Object.keys(variables).map((k) => k.split('.')[0]));
        const lookup = (q: { component: { name: string }; variable: { name: string } }) => ({
            known: components.has(q.component.name),
            v: variables[`${q.component.name}.${q.variable.name}`],
        });
        return {
            SetChargingProfile: (params) => {
                const parsed = profile201.safeParse(params);
                if (!parsed.success) return { status: 'Rejected' };
                const cp = parsed.data.chargingProfile;
                if (cp.chargingSchedule.length !== 1) return { status: 'Rejected' };
                const status = this.acceptProfile(
                    cp.chargingProfilePurpose,
                    parsed.data.evseId,
                    () => this.toStored(cp.id, cp, cp.chargingSchedule[0]!),
                );
                return { status };
            },
            ClearChargingProfile: (params) => {
                const q = params as {
                    chargingProfileId?: number;
                    chargingProfileCriteria?: {
                        evseId?: number;
                        chargingProfilePurpose?: string;
                        stackLevel?: number;
                    };
                };
                const c = q.chargingProfileCriteria ?? {};
                if (c.chargingProfilePurpose && c.chargingProfilePurpose !== 'TxDefaultProfile') {
                    return { status: 'Unknown' };
                }
                if (c.evseId !== undefined && c.evseId > 1) return { status: 'Unknown' };
                return {
                    status: this.clearProfiles(
                        (p) =>
                            (q.chargingProfileId === undefined || p.id === q.chargingProfileId) &&
                            (c.stackLevel === undefined || p.stackLevel === c.stackLevel),
                    ),
                };
            },
            RequestStartTransaction: (params) => {
                const q = params as {
                    idToken: { idToken: string };
                    remoteStartId: number;
                    evseId?: number;
                };
                if (this.tx || (q.evseId !== undefined && q.evseId !== 1)) {
                    return { status: 'Rejected' };
                }
                this.remoteStart(q.idToken.idToken, q.remoteStartId);
                return { status: 'Accepted' };
            },
            RequestStopTransaction: (params) => {
                const q = params as { transactionId: string };
                if (!this.tx || this.tx.id !== q.transactionId) return { status: 'Rejected' };
                this.later(() => void this.stopTransaction('Remote'), 0);
                return { status: 'Accepted' };
            },
            SetVariables: (params) => {
                const q = params as {
                    setVariableData: {
                        attributeValue: string;
                        component: { name: string };
                        variable: { name: string };
                    }[];
                };
                return {
                    setVariableResult: q.setVariableData.map((d) => {
                        const { known, v } = lookup(d);
                        const attributeStatus = !known
                            ? 'UnknownComponent'
                            : !v
                              ? 'UnknownVariable'
                              : v.set
                                ? v.set(d.attributeValue)
                                : 'Rejected';
                        return { attributeStatus, component: d.component, variable: d.variable };
                    }),
                };
            },
            GetVariables: (params) => {
                const q = params as {
                    getVariableData: { component: { name: string }; variable: { name: string } }[];
                };
                return {
                    getVariableResult: q.getVariableData.map((d) => {
                        const { known, v } = lookup(d);
                        if (!v) {
                            return {
                                attributeStatus: known ? 'UnknownVariable' : 'UnknownComponent',
                                component: d.component,
                                variable: d.variable,
                            };
                        }
                        return {
                            attributeStatus: 'Accepted',
                            attributeValue: v.get(),
                            component: d.component,
                            variable: d.variable,
                        };
                    }),
                };
            },
            TriggerMessage: (params) => {
                const q = params as { requestedMessage: string };
                return { status: this.trigger(q.requestedMessage) };
            },
        };
    }

    private setInterval201(value: string, apply: (n: number) => void): string {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0) return 'Rejected';
        apply(n);
        this.restartMeterTimers();
        return 'Accepted';
    }
}

/**
 * The demo's street wallbox (E4) as `npm start` runs it: an OCPP 1.6J charge point with a
 * single-phase car plugged in that connects to `<url>/CP-DEMO` (retrying until Node-RED listens)
 * and, whenever it has booted without a transaction, presents a card (E4 has no users assigned).
 */
export function startDemoChargePoint(
    url: string,
    cardEveryMs = 2000,
): { sim: OcppChargePointSim; close(): Promise<void> } {
    const sim = new OcppChargePointSim({
        url,
        identity: 'CP-DEMO',
        protocol: 'ocpp1.6',
        vendor: 'evcm',
        model: 'OCPP demo wallbox',
        plugged: true,
        car: { batteryWh: 50_000, soc: 0.4, maxCurrent: 16_000, phases: 1 },
    });
    void sim.start();
    const card = setInterval(() => {
        const s = sim.state;
        if (!s.booted || s.transactionId !== undefined) return;
        void sim.presentCard('DEMO').catch(() => undefined);
    }, cardEveryMs);
    return {
        sim,
        close: async () => {
            clearInterval(card);
            await sim.close();
        },
    };
}
