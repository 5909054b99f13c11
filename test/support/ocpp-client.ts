// A small OCPP charge point for tests (ocpp-rpc RPCClient, strict mode): it boots, reports
// status and meter values, and records and answers what the central system sends.
import { RPCClient } from 'ocpp-rpc';

export type Protocol = 'ocpp1.6' | 'ocpp2.0.1';

export interface ReceivedCall {
    method: string;
    params: Record<string, unknown>;
}

export interface TestChargePointOptions {
    url: string;
    identity: string;
    protocol?: Protocol;
    password?: string;
    /** What the charge point answers to SetChargingProfile ('Accepted', 'Rejected', or 'silent'). */
    profileAnswer?: 'Accepted' | 'Rejected' | 'silent';
    wsOpts?: Record<string, unknown>;
}

export class TestChargePoint {
    readonly client: RPCClient;
    readonly received: ReceivedCall[] = [];
    readonly protocol: Protocol;
    profileAnswer: 'Accepted' | 'Rejected' | 'silent';
    private waiters: { method: string; resolve: (c: ReceivedCall) => void }[] = [];

    constructor(opts: TestChargePointOptions) {
        this.protocol = opts.protocol ?? 'ocpp1.6';
        this.profileAnswer = opts.profileAnswer ?? 'Accepted';
        this.client = new RPCClient({
            endpoint: opts.url,
            identity: opts.identity,
            protocols: [this.protocol],
            strictMode: true,
            reconnect: false,
            ...(opts.password !== undefined ? { password: opts.password } : {}),
            ...(opts.wsOpts ? { wsOpts: opts.wsOpts } : {}),
        } as never);
        this.client.handle(async ({ method, params }) => {
            const call = { method: method!, params: (params ?? {}) as Record<string, unknown> };
            this.received.push(call);
            this.waiters = this.waiters.filter((w) => {
                if (w.method !== call.method) return true;
                w.resolve(call);
                return false;
            });
            return this.answer(call);
        });
    }

    private answer(call: ReceivedCall): Record<string, unknown> {
        switch (call.method) {
            case 'SetChargingProfile':
                if (this.profileAnswer === 'silent') return new Promise(() => {}) as never;
                return { status: this.profileAnswer };
            case 'ChangeConfiguration':
            case 'ClearChargingProfile':
            case 'RemoteStartTransaction':
            case 'RemoteStopTransaction':
            case 'RequestStartTransaction':
            case 'RequestStopTransaction':
            case 'TriggerMessage':
                return { status: 'Accepted' };
            case 'SetVariables':
                return {
                    setVariableResult: (
                        call.params.setVariableData as {
                            component: unknown;
                            variable: unknown;
                        }[]
                    ).map((d) => ({
                        attributeStatus: 'Accepted',
                        component: d.component,
                        variable: d.variable,
                    })),
                };
            default:
                throw Object.assign(new Error('not implemented'), {
                    rpcErrorCode: 'NotImplemented',
                });
        }
    }

    /** Resolves with the next call of this method (or one already received, if `past`). */
    next(method: string, past = false): Promise<ReceivedCall> {
        if (past) {
            const seen = this.received.find((c) => c.method === method);
            if (seen) return Promise.resolve(seen);
        }
        return new Promise((resolve) => this.waiters.push({ method, resolve }));
    }

    connect(): Promise<unknown> {
        return this.client.connect();
    }

    call(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
        return this.client.call(method, params) as Promise<Record<string, unknown>>;
    }

    async boot(): Promise<Record<string, unknown>> {
        return this.protocol === 'ocpp2.0.1'
            ? this.call('BootNotification', {
                  reason: 'PowerUp',
                  chargingStation: { vendorName: 'Acme', model: 'Box', serialNumber: 'SN1' },
              })
            : this.call('BootNotification', {
                  chargePointVendor: 'Acme',
                  chargePointModel: 'Box',
                  chargePointSerialNumber: 'SN1',
              });
    }

    /** 1.6 status name, or 2.0.1 connectorStatus. */
    status(connector: number, status: string): Promise<Record<string, unknown>> {
        return this.protocol === 'ocpp2.0.1'
            ? this.call('StatusNotification', {
                  timestamp: new Date().toISOString(),
                  connectorStatus: status,
                  evseId: connector,
                  connectorId: 1,
              })
            : this.call('StatusNotification', {
                  connectorId: connector,
                  status,
                  errorCode: 'NoError',
              });
    }

    meter(
        connector: number,
        amps: [number, number, number],
        powerW: number,
        energyWh: number,
    ): Promise<Record<string, unknown>> {
        const v201 = this.protocol === 'ocpp2.0.1';
        const value = (x: number) => (v201 ? x : String(x));
        const sampledValue = [
            ...amps.map((a, i) => ({
                value: value(a),
                measurand: 'Current.Import',
                phase: `L${i + 1}`,
                ...(v201 ? { unitOfMeasure: { unit: 'A' } } : { unit: 'A' }),
            })),
            {
                value: value(powerW),
                measurand: 'Power.Active.Import',
                ...(v201 ? { unitOfMeasure: { unit: 'W' } } : { unit: 'W' }),
            },
            {
                value: value(energyWh),
                measurand: 'Energy.Active.Import.Register',
                ...(v201 ? { unitOfMeasure: { unit: 'Wh' } } : { unit: 'Wh' }),
            },
        ];
        const meterValue = [{ timestamp: new Date().toISOString(), sampledValue }];
        return v201
            ? this.call('MeterValues', { evseId: connector, meterValue })
            : this.call('MeterValues', { connectorId: connector, meterValue });
    }

    close(): Promise<unknown> {
        return this.client.close({ force: true });
    }
}
