// An OCPP wallbox (`evse_ocpp`) as the engine drives any other: read() is the session's newest
// state, apply() a TxDefaultProfile at the control stack level that expires after `validity`
// (the engine renews it at a third), and the fail-safe a permanent profile one level below, so
// that the charge point itself falls back to it when the manager is gone.
// Reductions before increases: the engine writes every wallbox separately and each profile
// is acknowledged before apply() resolves, so its ordering of writes holds here as for Modbus.
import type {
    DeviceFailSafe,
    EvseCommand,
    EvseDriver,
    EvseReading,
    WallboxTransactions,
} from '../core/types';
import type { OcppCentralSystem } from './central-system';
import {
    CONTROL_PROFILE_ID,
    CONTROL_STACK_LEVEL,
    FAIL_SAFE_PROFILE_ID,
    FAIL_SAFE_STACK_LEVEL,
    type ChargePoint,
    type Transaction,
} from './charge-point';

/** The object without its undefined fields (exactOptionalPropertyTypes). */
function defined<T extends object>(o: { [K in keyof T]: T[K] | undefined }): T {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export interface OcppEvseDriverOptions {
    /** dev_id (`E<n>`). */
    id: string;
    /** Charge point identity. */
    identity: string;
    /** Connector id (1.6) / EVSE id (2.0.1). */
    connector: number;
    /** Password for HTTP Basic (plain or scrypt hash); undefined leaves the session's alone. */
    password?: string | null;
    /** How long a control profile stays valid (ms, default 60 s). */
    validityMs?: number;
    failSafe?: DeviceFailSafe | null;
    /** Whether a card, PIN or user id presented here may charge; with `record` an accepted
     *  one counts as entered here. */
    authorize?: (token: string, record: boolean) => boolean;
    now?: () => number;
}

export class OcppEvseDriver implements EvseDriver {
    readonly kind = 'evse';
    readonly id: string;
    readonly keepAliveMs: number;
    readonly session: ChargePoint;
    private failSafe: DeviceFailSafe | null;
    private readonly detach: () => void;
    private readonly now: () => number;
    private closed = false;
    /** Phases the manager decided for this wallbox (numberPhases in its profiles); undefined
     *  until it decides them, leaving the charge point its own. */
    private phases: 1 | 3 | undefined;

    constructor(
        central: OcppCentralSystem,
        private readonly opts: OcppEvseDriverOptions,
    ) {
        this.id = opts.id;
        this.keepAliveMs = opts.validityMs ?? 60_000;
        this.failSafe = opts.failSafe ?? null;
        this.now = opts.now ?? Date.now;
        this.session = central.chargePoint(opts.identity);
        if (opts.password !== undefined) central.setPassword(opts.identity, opts.password);
        this.detach = this.session.attach(opts.connector, {
            ...(opts.authorize ? { authorize: opts.authorize } : {}),
            onBoot: () => this.installFailSafe(),
        });
    }

    /** `vendor model` and serial from BootNotification, once booted. */
    get boot(): ChargePoint['boot'] {
        return this.session.boot;
    }

    async read(): Promise<EvseReading> {
        const s = this.session;
        if (!s.connected)
            throw new Error(`${this.id}: OCPP charge point ${s.identity} is not connected`);
        if (!s.bootAccepted)
            throw new Error(`${this.id}: OCPP charge point ${s.identity} has not booted`);
        const c = s.connector(this.opts.connector);
        const m = c?.meter;
        return {
            state: s.evseState(this.opts.connector),
            ...(m?.currents ? { currents: m.currents } : {}),
            ...(m?.powerW !== undefined ? { powerW: m.powerW } : {}),
            ...(m?.energyWh !== undefined ? { totalEnergyWh: m.energyWh } : {}),
            ...(c?.transaction?.idTag ? { rfid: c.transaction.idTag } : {}),
            // The connection is alive (pings), and status is pushed on every change: the state
            // is as fresh as the read; the meter values are as the charge point last sent them.
            takenAt: this.now(),
        };
    }

    async apply(command: EvseCommand): Promise<void> {
        // Released (disable_policy −1) is the current the allocator counts the wallbox at, as for
        // any wallbox; it too expires with the profile, so a manager that is gone leaves the
        // charge point at its fail-safe.
        const current = command.chargingEnabled || command.released ? command.current : 0;
        const now = this.now();
        await this.expect(
            this.setProfile(
                CONTROL_PROFILE_ID,
                CONTROL_STACK_LEVEL,
                current,
                now,
                now + this.keepAliveMs,
            ),
            ['Accepted'],
            'SetChargingProfile',
        );
    }

    /**
     * Phase switching: numberPhases in the control profile from now on. Sent at once with the
     * charging stopped (the engine switches only then), so that the charge point switches while
     * no current flows.
     */
    async setPhases(phases: 1 | 3): Promise<void> {
        this.phases = phases;
        const now = this.now();
        await this.expect(
            this.setProfile(
                CONTROL_PROFILE_ID,
                CONTROL_STACK_LEVEL,
                0,
                now,
                now + this.keepAliveMs,
            ),
            ['Accepted'],
            'SetChargingProfile',
        );
    }

    setFailSafe(failSafe: DeviceFailSafe | null): void {
        const changed = failSafe?.current !== this.failSafe?.current;
        this.failSafe = failSafe;
        if (changed && this.session.connected && this.session.bootAccepted) this.installFailSafe();
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        this.detach();
    }

    /** Remote start at this connector (enter_rfid, override). */
    remoteStart(idTag: string): Promise<boolean> {
        return this.session.remoteStart(this.opts.connector, idTag);
    }

    remoteStop(): Promise<boolean> {
        return this.session.remoteStop(this.opts.connector);
    }

    /**
     * A session for the car plugged in. Asked even when a transaction seems to run: the one just
     * stopped may not have reported its end yet, and a charge point that is busy says Rejected.
     */
    async startSession(token: string): Promise<boolean> {
        if (!this.session.connected) return false;
        return this.remoteStart(token);
    }

    stopSession(): Promise<boolean> {
        return this.remoteStop();
    }

    transactions(): WallboxTransactions {
        const tx = this.session.connector(this.opts.connector)?.transaction;
        let ended: Transaction | undefined;
        const finished = this.session.finished;
        for (let i = finished.length - 1; i >= 0 && !ended; i--)
            if (finished[i]!.connector === this.opts.connector) ended = finished[i];
        const out: WallboxTransactions = {};
        if (tx)
            out.running = defined({
                id: tx.id,
                idTag: tx.idTag,
                meterStartWh: tx.meterStartWh,
                startedAt: tx.startedAt,
            });
        if (ended?.stoppedAt !== undefined)
            out.ended = defined({
                id: ended.id,
                stoppedAt: ended.stoppedAt,
                meterStopWh: ended.meterStopWh,
                energyWh: ended.energyWh,
                reason: ended.reason,
            });
        return out;
    }

    private installFailSafe(): void {
        if (this.closed || !this.failSafe) return;
        this.setProfile(
            FAIL_SAFE_PROFILE_ID,
            FAIL_SAFE_STACK_LEVEL,
            this.failSafe.current,
            this.now(),
            undefined,
        ).catch(() => undefined);
    }

    private async expect(
        answer: Promise<Record<string, unknown>>,
        ok: string[],
        action: string,
    ): Promise<void> {
        const r = await answer;
        if (!ok.includes(String(r.status))) {
            throw new Error(`${this.id}: ${action} answered ${String(r.status)}`);
        }
    }

    /** A TxDefaultProfile with one period: limit in A (0 = no charging). */
    private setProfile(
        profileId: number,
        stackLevel: number,
        currentMa: number,
        from: number,
        to: number | undefined,
    ): Promise<Record<string, unknown>> {
        const limit = Math.round(currentMa / 100) / 10;
        const start = new Date(from).toISOString();
        const base = {
            stackLevel,
            chargingProfilePurpose: 'TxDefaultProfile',
            chargingProfileKind: 'Absolute',
            validFrom: start,
            ...(to !== undefined ? { validTo: new Date(to).toISOString() } : {}),
        };
        const schedule = {
            startSchedule: start,
            chargingRateUnit: 'A',
            chargingSchedulePeriod: [
                {
                    startPeriod: 0,
                    limit,
                    // The control profile carries the phases once the manager decides them.
                    ...(this.phases && stackLevel === CONTROL_STACK_LEVEL
                        ? { numberPhases: this.phases }
                        : {}),
                },
            ],
        };
        if (this.session.protocol === 'ocpp2.0.1') {
            return this.session.call('SetChargingProfile', {
                evseId: this.opts.connector,
                chargingProfile: {
                    id: profileId,
                    ...base,
                    chargingSchedule: [{ id: profileId, ...schedule }],
                },
            });
        }
        return this.session.call('SetChargingProfile', {
            connectorId: this.opts.connector,
            csChargingProfiles: {
                chargingProfileId: profileId,
                ...base,
                chargingSchedule: schedule,
            },
        });
    }
}
