import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RPCServer } from 'ocpp-rpc';
import type RpcServerClient from 'ocpp-rpc/lib/server-client';
import { OcppChargePointSim, type OcppChargePointSimOptions } from '../../../lib/sim/ocpp-sim';
import { selfSignedCert } from '../../support/tls';

interface Seen {
    identity: string;
    method: string;
    params: Record<string, unknown>;
    at: number;
}

interface TxEvent {
    eventType: string;
    triggerReason: string;
    seqNo: number;
    idToken?: { idToken: string };
    transactionInfo: { transactionId: string; stoppedReason?: string; remoteStartId?: number };
}

/** A minimal central system for the tests: accepts everything, records every call. */
class TestCsms {
    readonly rpc = new RPCServer({ protocols: ['ocpp1.6', 'ocpp2.0.1'], strictMode: true });
    readonly calls: Seen[] = [];
    readonly passwords: (string | undefined)[] = [];
    readonly clients = new Map<string, RpcServerClient>();
    port = 0;
    private https: HttpsServer | undefined;

    constructor() {
        this.rpc.auth((accept, _reject, handshake) => {
            this.passwords.push(handshake.password?.toString('utf8'));
            accept({});
        });
        this.rpc.on('client', (client: RpcServerClient) => {
            this.clients.set(client.identity ?? '', client);
            client.handle(async ({ method, params }) => {
                const p = (params ?? {}) as Record<string, unknown>;
                this.calls.push({
                    identity: client.identity ?? '',
                    method: method ?? '',
                    params: p,
                    at: Date.now(),
                });
                return this.answer(client.protocol, method ?? '');
            });
        });
    }

    private answer(protocol: string | undefined, method: string): Record<string, unknown> {
        const now = new Date().toISOString();
        switch (method) {
            case 'BootNotification':
                return { status: 'Accepted', interval: 300, currentTime: now };
            case 'Heartbeat':
                return { currentTime: now };
            case 'Authorize':
                return protocol === 'ocpp1.6'
                    ? { idTagInfo: { status: 'Accepted' } }
                    : { idTokenInfo: { status: 'Accepted' } };
            case 'StartTransaction':
                return { transactionId: 7, idTagInfo: { status: 'Accepted' } };
            default:
                return {};
        }
    }

    async listen(): Promise<this> {
        const http = await this.rpc.listen(0, '127.0.0.1');
        this.port = (http.address() as AddressInfo).port;
        return this;
    }

    async listenTls(key: Buffer, cert: Buffer): Promise<this> {
        this.https = createHttpsServer({ key, cert });
        const upgrade = this.rpc.handleUpgrade;
        this.https.on('upgrade', (req, socket, head) => void upgrade(req, socket as never, head));
        await new Promise<void>((resolve) => this.https!.listen(0, '127.0.0.1', resolve));
        this.port = (this.https.address() as AddressInfo).port;
        return this;
    }

    get url(): string {
        return `${this.https ? 'wss' : 'ws'}://127.0.0.1:${this.port}/ocpp`;
    }

    of(method: string, identity?: string): Seen[] {
        return this.calls.filter(
            (c) => c.method === method && (identity === undefined || c.identity === identity),
        );
    }

    async close(): Promise<void> {
        await this.rpc.close({ force: true });
        if (this.https) {
            this.https.closeAllConnections();
            await new Promise<void>((resolve) => this.https!.close(() => resolve()));
        }
    }
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

const quickCar = {
    batteryWh: 60_000,
    soc: 0.3,
    maxCurrent: 16_000,
    phases: 3,
    followMs: 0,
} as const;

function profile16(id: number, stackLevel: number, limit: number, extra: object = {}) {
    return {
        connectorId: 1,
        csChargingProfiles: {
            chargingProfileId: id,
            stackLevel,
            chargingProfilePurpose: 'TxDefaultProfile',
            chargingProfileKind: 'Absolute',
            chargingSchedule: {
                chargingRateUnit: 'A',
                chargingSchedulePeriod: [{ startPeriod: 0, limit }],
            },
            ...extra,
        },
    };
}

describe('OcppChargePointSim', function () {
    this.timeout(15000);
    let csms: TestCsms;
    const sims: OcppChargePointSim[] = [];

    function sim(opts: Partial<OcppChargePointSimOptions> = {}): OcppChargePointSim {
        const s = new OcppChargePointSim({
            url: csms.url,
            identity: 'CP-1',
            tickMs: 50,
            reconnect: { initialDelayMs: 100, maxDelayMs: 200 },
            car: quickCar,
            ...opts,
        });
        sims.push(s);
        return s;
    }

    beforeEach(async () => {
        csms = await new TestCsms().listen();
    });
    afterEach(async () => {
        await Promise.all(sims.splice(0).map((s) => s.close()));
        await csms.close();
    });

    for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as const) {
        it(`${protocol}: boots, takes the heartbeat interval and reports its connector status`, async () => {
            const cp = sim({ protocol });
            await cp.start();
            await until('status', () => csms.of('StatusNotification').length === 1);
            const boot = csms.of('BootNotification')[0]!;
            const status = csms.of('StatusNotification')[0]!.params;
            if (protocol === 'ocpp1.6') {
                assert.equal(boot.params.chargePointVendor, 'EVCM');
                assert.deepEqual(
                    [status.connectorId, status.status, status.errorCode],
                    [1, 'Available', 'NoError'],
                );
            } else {
                assert.equal(boot.params.reason, 'PowerUp');
                assert.deepEqual(
                    [status.evseId, status.connectorId, status.connectorStatus],
                    [1, 1, 'Available'],
                );
            }
            assert.equal(cp.state.connected, true);
            assert.equal(cp.state.booted, true);
            assert.equal(cp.state.heartbeatInterval, 300);
            cp.plug();
            await until('status on plug-in', () => csms.of('StatusNotification').length === 2);
            assert.equal(
                csms.of('StatusNotification')[1]!.params[
                    protocol === 'ocpp1.6' ? 'status' : 'connectorStatus'
                ],
                protocol === 'ocpp1.6' ? 'Preparing' : 'Occupied',
            );
        });
    }

    it('1.6: presentCard → Authorize + StartTransaction; meter values at the interval follow the limit; unplug → StopTransaction', async () => {
        const cp = sim({ plugged: true, meterValueInterval: 1 });
        await cp.start();
        await until('boot', () => cp.state.booted);
        assert.equal(await cp.presentCard('0411'), true);
        assert.equal(csms.of('Authorize')[0]!.params.idTag, '0411');
        const start = csms.of('StartTransaction')[0]!.params;
        assert.deepEqual([start.connectorId, start.idTag], [1, '0411']);
        assert.equal(cp.state.transactionId, 7);
        const client = csms.clients.get('CP-1')!;
        assert.deepEqual(await client.call('SetChargingProfile', profile16(2, 2, 10)), {
            status: 'Accepted',
        });
        const first = csms.of('MeterValues').length;
        await until('two more meter values', () => csms.of('MeterValues').length >= first + 2);
        const mv = csms.of('MeterValues');
        const gap = mv[mv.length - 1]!.at - mv[mv.length - 2]!.at;
        assert.ok(gap > 800 && gap < 1300, `interval ${gap} ms`);
        const last = mv[mv.length - 1]!.params as {
            transactionId: number;
            meterValue: { sampledValue: { measurand: string; phase?: string; value: string }[] }[];
        };
        assert.equal(last.transactionId, 7);
        const sv = last.meterValue[0]!.sampledValue;
        const l1 = sv.find((s) => s.measurand === 'Current.Import' && s.phase === 'L1')!;
        assert.equal(Number(l1.value), 10, 'the car draws the 10 A limit');
        const power = sv.find((s) => s.measurand === 'Power.Active.Import')!;
        assert.equal(Number(power.value), 6900);
        assert.ok(sv.some((s) => s.measurand === 'Energy.Active.Import.Register'));
        assert.equal(cp.state.status, 'Charging');
        await cp.unplug();
        const stop = csms.of('StopTransaction')[0]!.params;
        assert.deepEqual([stop.transactionId, stop.reason], [7, 'EVDisconnected']);
        assert.ok((stop.meterStop as number) >= (start.meterStart as number));
        await until('Available', () =>
            csms
                .of('StatusNotification')
                .some(
                    (c) =>
                        c.params.status === 'Available' && c !== csms.of('StatusNotification')[0],
                ),
        );
    });

    it('2.0.1: presentCard → Authorize + TransactionEvent Started; Updated with meter values; Ended on unplug', async () => {
        const cp = sim({ protocol: 'ocpp2.0.1', plugged: true, meterValueInterval: 1 });
        await cp.start();
        await until('boot', () => cp.state.booted);
        assert.equal(await cp.presentCard('0411'), true);
        assert.deepEqual(csms.of('Authorize')[0]!.params.idToken, {
            idToken: '0411',
            type: 'ISO14443',
        });
        const started = csms.of('TransactionEvent')[0]!.params as unknown as TxEvent;
        assert.equal(started.eventType, 'Started');
        assert.equal(started.triggerReason, 'Authorized');
        assert.equal(started.idToken?.idToken, '0411');
        assert.equal(started.transactionInfo.transactionId, cp.state.transactionId);
        await until('Updated', () =>
            csms
                .of('TransactionEvent')
                .some((c) => c.params.triggerReason === 'MeterValuePeriodic'),
        );
        await until('MeterValues', () => csms.of('MeterValues').length > 0);
        await cp.unplug();
        const ended = csms.of('TransactionEvent').at(-1)!.params as unknown as TxEvent;
        assert.equal(ended.eventType, 'Ended');
        assert.equal(ended.transactionInfo.stoppedReason, 'EVDisconnected');
        const seq = csms.of('TransactionEvent').map((c) => c.params.seqNo);
        assert.deepEqual(
            seq,
            seq.map((_, i) => i),
            'seqNo counts up from 0',
        );
    });

    it('falls from the control profile to the 6 A fail-safe profile by itself when its validity ends, with the central system gone', async () => {
        const cp = sim({ plugged: true });
        await cp.start();
        await until('boot', () => cp.state.booted);
        await cp.presentCard('0411');
        const client = csms.clients.get('CP-1')!;
        await client.call('SetChargingProfile', profile16(1, 1, 6));
        const validTo = new Date(Date.now() + 1500).toISOString();
        await client.call('SetChargingProfile', profile16(2, 2, 14, { validTo }));
        await until('car at 14 A', () => cp.state.currents[0] === 14_000);
        assert.equal(cp.state.limitProfileId, 2);
        await csms.close();
        await until('disconnected', () => !cp.state.connected);
        assert.equal(cp.state.effectiveLimit, 14_000, 'still the control limit while valid');
        await until('fail-safe', () => cp.state.effectiveLimit === 6000, 3000);
        assert.ok(Date.now() >= Date.parse(validTo) - 5);
        assert.equal(cp.state.limitProfileId, 1);
        await until('car at 6 A', () => cp.state.currents[0] === 6000);
        assert.equal(cp.state.connected, false);
    });

    it('without a valid profile the station maximum applies; ClearChargingProfile removes profiles', async () => {
        const cp = sim({ maxCurrent: 20_000 });
        await cp.start();
        await until('boot', () => cp.state.booted);
        assert.equal(cp.state.effectiveLimit, 20_000);
        const client = csms.clients.get('CP-1')!;
        await client.call('SetChargingProfile', profile16(1, 1, 8));
        // validFrom in the future: not yet valid.
        const validFrom = new Date(Date.now() + 60_000).toISOString();
        await client.call('SetChargingProfile', profile16(2, 2, 16, { validFrom }));
        assert.equal(cp.state.effectiveLimit, 8000);
        assert.deepEqual(await client.call('ClearChargingProfile', { id: 1 }), {
            status: 'Accepted',
        });
        assert.deepEqual(await client.call('ClearChargingProfile', { id: 1 }), {
            status: 'Unknown',
        });
        assert.equal(cp.state.effectiveLimit, 20_000);
        assert.deepEqual(
            cp.state.profiles.map((p) => p.id),
            [2],
        );
    });

    it('converts a W limit to A per phase at 230 V over numberPhases', async () => {
        const cp = sim({ plugged: true });
        await cp.start();
        await until('boot', () => cp.state.booted);
        await cp.presentCard('0411');
        const client = csms.clients.get('CP-1')!;
        const p = profile16(1, 1, 0);
        p.csChargingProfiles.chargingSchedule = {
            chargingRateUnit: 'W',
            chargingSchedulePeriod: [{ startPeriod: 0, limit: 2300, numberPhases: 1 } as never],
        };
        assert.deepEqual(await client.call('SetChargingProfile', p), { status: 'Accepted' });
        assert.equal(cp.state.effectiveLimit, 10_000);
        assert.equal(cp.state.limitPhases, 1);
        await until('car on one phase', () => cp.state.currents.join() === '10000,0,0');
    });

    it('rejects profiles when told to, and other purposes; unknown calls are NotImplemented', async () => {
        const cp = sim({ rejectProfiles: true });
        await cp.start();
        await until('boot', () => cp.state.booted);
        const client = csms.clients.get('CP-1')!;
        assert.deepEqual(await client.call('SetChargingProfile', profile16(1, 1, 6)), {
            status: 'Rejected',
        });
        cp.setRejectProfiles(false);
        const max = profile16(3, 1, 6);
        max.csChargingProfiles.chargingProfilePurpose = 'ChargePointMaxProfile';
        assert.deepEqual(await client.call('SetChargingProfile', max), { status: 'Rejected' });
        assert.deepEqual(cp.state.profiles, []);
        await assert.rejects(
            client.call('Reset', { type: 'Soft' }),
            (e: { rpcErrorCode?: string }) => e.rpcErrorCode === 'NotImplemented',
        );
    });

    it('1.6: RemoteStartTransaction starts, RemoteStopTransaction stops; configuration is read and changed', async () => {
        const cp = sim({ plugged: true });
        await cp.start();
        await until('boot', () => cp.state.booted);
        const client = csms.clients.get('CP-1')!;
        assert.deepEqual(
            await client.call('RemoteStartTransaction', { idTag: 'REMOTE', connectorId: 1 }),
            { status: 'Accepted' },
        );
        await until('started', () => cp.state.transactionId === 7);
        assert.equal(csms.of('StartTransaction')[0]!.params.idTag, 'REMOTE');
        assert.equal(csms.of('Authorize').length, 0, 'AuthorizeRemoteTxRequests is false');
        assert.deepEqual(await client.call('RemoteStopTransaction', { transactionId: 7 }), {
            status: 'Accepted',
        });
        await until('stopped', () => csms.of('StopTransaction').length === 1);
        assert.equal(csms.of('StopTransaction')[0]!.params.reason, 'Remote');
        await until('Finishing', () => cp.state.status === 'Finishing');
        assert.deepEqual(
            await client.call('ChangeConfiguration', {
                key: 'MeterValueSampleInterval',
                value: '5',
            }),
            { status: 'Accepted' },
        );
        assert.deepEqual(
            await client.call('ChangeConfiguration', { key: 'NoSuchKey', value: '5' }),
            { status: 'NotSupported' },
        );
        const conf = (await client.call('GetConfiguration', {
            key: ['MeterValueSampleInterval', 'Nope'],
        })) as { configurationKey: { key: string; value: string }[]; unknownKey: string[] };
        assert.deepEqual(conf.configurationKey[0], {
            key: 'MeterValueSampleInterval',
            readonly: false,
            value: '5',
        });
        assert.deepEqual(conf.unknownKey, ['Nope']);
        assert.deepEqual(await client.call('TriggerMessage', { requestedMessage: 'Heartbeat' }), {
            status: 'Accepted',
        });
        await until('triggered heartbeat', () => csms.of('Heartbeat').length === 1);
    });

    it('2.0.1: RequestStartTransaction / RequestStopTransaction; Set/GetVariables', async () => {
        const cp = sim({ protocol: 'ocpp2.0.1', plugged: true });
        await cp.start();
        await until('boot', () => cp.state.booted);
        const client = csms.clients.get('CP-1')!;
        assert.deepEqual(
            await client.call('RequestStartTransaction', {
                idToken: { idToken: 'REMOTE', type: 'Central' },
                remoteStartId: 5,
                evseId: 1,
            }),
            { status: 'Accepted' },
        );
        await until('started', () => csms.of('TransactionEvent').length === 1);
        const started = csms.of('TransactionEvent')[0]!.params as unknown as TxEvent;
        assert.equal(started.triggerReason, 'RemoteStart');
        assert.equal(started.transactionInfo.remoteStartId, 5);
        assert.deepEqual(
            await client.call('RequestStopTransaction', {
                transactionId: started.transactionInfo.transactionId,
            }),
            { status: 'Accepted' },
        );
        await until('ended', () =>
            csms.of('TransactionEvent').some((c) => c.params.eventType === 'Ended'),
        );
        const set = (await client.call('SetVariables', {
            setVariableData: [
                {
                    attributeValue: '3',
                    component: { name: 'SampledDataCtrlr' },
                    variable: { name: 'TxUpdatedInterval' },
                },
                {
                    attributeValue: '3',
                    component: { name: 'Nope' },
                    variable: { name: 'X' },
                },
            ],
        })) as { setVariableResult: { attributeStatus: string }[] };
        assert.deepEqual(
            set.setVariableResult.map((r) => r.attributeStatus),
            ['Accepted', 'UnknownComponent'],
        );
        const get = (await client.call('GetVariables', {
            getVariableData: [
                {
                    component: { name: 'SampledDataCtrlr' },
                    variable: { name: 'TxUpdatedInterval' },
                },
            ],
        })) as { getVariableResult: { attributeValue: string }[] };
        assert.equal(get.getVariableResult[0]!.attributeValue, '3');
        // 2.0.1 profile shape (chargingSchedule is a list).
        assert.deepEqual(
            await client.call('SetChargingProfile', {
                evseId: 1,
                chargingProfile: {
                    id: 2,
                    stackLevel: 2,
                    chargingProfilePurpose: 'TxDefaultProfile',
                    chargingProfileKind: 'Absolute',
                    chargingSchedule: [
                        {
                            id: 1,
                            chargingRateUnit: 'A',
                            chargingSchedulePeriod: [{ startPeriod: 0, limit: 11 }],
                        },
                    ],
                },
            }),
            { status: 'Accepted' },
        );
        assert.equal(cp.state.effectiveLimit, 11_000);
    });

    it('silent: stays connected, answers nothing; answers again afterwards', async () => {
        const cp = sim();
        await cp.start();
        await until('boot', () => cp.state.booted);
        const client = csms.clients.get('CP-1')!;
        cp.setSilent(true);
        await assert.rejects(
            client.call('GetConfiguration', {}, { callTimeoutMs: 300 }),
            /timed? ?out/i,
        );
        assert.equal(cp.state.connected, true);
        cp.setSilent(false);
        await client.call('GetConfiguration', {});
    });

    it('reconnects after a dropped connection and boots again', async () => {
        const cp = sim();
        await cp.start();
        await until('boot', () => cp.state.booted);
        await cp.dropConnection(200);
        assert.equal(cp.state.connected, false);
        await until('second boot', () => csms.of('BootNotification').length === 2);
        assert.equal(cp.state.connected, true);
    });

    it('sends the Basic-auth password', async () => {
        const cp = sim({ password: 's3cret-passw0rd' });
        await cp.start();
        await until('boot', () => cp.state.booted);
        assert.deepEqual(csms.passwords, ['s3cret-passw0rd']);
    });
});

describe('OcppChargePointSim over TLS (security profile 2)', function () {
    this.timeout(15000);
    let dir: string;
    let key: Buffer;
    let cert: Buffer;

    before(function () {
        try {
            execFileSync('openssl', ['version'], { stdio: 'ignore' });
        } catch {
            this.skip(); // no openssl to make a certificate with
        }
        dir = mkdtempSync(join(tmpdir(), 'ocpp-tls-'));
        selfSignedCert(dir);
        key = readFileSync(join(dir, 'key.pem'));
        cert = readFileSync(join(dir, 'cert.pem'));
    });
    after(() => {
        if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('connects over wss with the CA and password; refuses an untrusted certificate', async () => {
        const csms = await new TestCsms().listenTls(key, cert);
        const trusted = new OcppChargePointSim({
            url: csms.url,
            identity: 'CP-TLS',
            password: 'pw-over-tls',
            tls: { ca: cert },
        });
        const untrusted = new OcppChargePointSim({
            url: csms.url,
            identity: 'CP-NOCA',
            reconnect: { initialDelayMs: 100, maxDelayMs: 100 },
        });
        try {
            await trusted.start();
            await untrusted.start();
            await until('boot over TLS', () => trusted.state.booted);
            assert.deepEqual(csms.passwords, ['pw-over-tls']);
            await new Promise((r) => setTimeout(r, 400));
            assert.equal(untrusted.state.connected, false);
            assert.equal(csms.of('BootNotification', 'CP-NOCA').length, 0);
        } finally {
            await trusted.close();
            await untrusted.close();
            await csms.close();
        }
    });
});

describe('evcm-sim ocpp', function () {
    this.timeout(15000);

    it('runs N charge points against a central system and stops on SIGTERM', async () => {
        const csms = await new TestCsms().listen();
        const bin = join(__dirname, '..', '..', '..', '..', 'bin', 'evcm-sim.js');
        const child = spawn(
            process.execPath,
            [
                bin,
                'ocpp',
                '--url',
                csms.url,
                '--id',
                'CP-42',
                '--count',
                '2',
                '--protocol',
                '2.0.1',
                '--status',
                '1',
            ],
            { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
        try {
            await until(
                'both boots',
                () =>
                    ['CP-42', 'CP-43'].every((id) => csms.of('BootNotification', id).length === 1),
                8000,
            );
            await until('status lines', () => /CP-43: online Available limit 32 A/.test(out), 4000);
            process.kill(child.pid!, 'SIGTERM');
            assert.equal(await exited, 0);
            await until(
                'disconnected',
                () =>
                    csms.clients.size === 2 &&
                    [...csms.clients.values()].every((c) => c.state !== 1),
                3000,
            );
        } finally {
            if (child.exitCode === null) child.kill('SIGKILL');
            await csms.close();
        }
    });
});
