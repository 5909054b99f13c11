import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { OcppCentralSystem } from '../../../lib/ocpp/central-system';
import { hashPassword, verifyPassword } from '../../../lib/ocpp/credentials';
import { OcppEvseDriver } from '../../../lib/ocpp/driver';
import { TestChargePoint, type Protocol } from '../../support/ocpp-client';
import { selfSignedCert } from '../../support/tls';

/** A charging profile as sent (1.6 and 2.0.1 fields). */
interface Profile {
    chargingProfileId?: number;
    stackLevel: number;
    chargingProfilePurpose: string;
    validTo?: string;
    chargingSchedule: Schedule & Schedule[];
}
interface Schedule {
    chargingRateUnit: string;
    chargingSchedulePeriod: { startPeriod: number; limit: number }[];
}

/** The HTTP status a refused connection got. */
const status = (code: number) => (err: unknown) => (err as { code?: number }).code === code;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(10);
    }
}

describe('OCPP central system', () => {
    let cs: OcppCentralSystem;
    let url: string;
    const clients: TestChargePoint[] = [];
    const drivers: OcppEvseDriver[] = [];

    async function start(opts: ConstructorParameters<typeof OcppCentralSystem>[0] = {}) {
        cs = new OcppCentralSystem({ callTimeoutMs: 500, ...opts });
        const { port } = await cs.listen({ host: '127.0.0.1', port: 0 });
        url = `ws://127.0.0.1:${port}/ocpp`;
    }

    function driver(
        identity: string,
        extra: Partial<ConstructorParameters<typeof OcppEvseDriver>[1]> = {},
    ) {
        const d = new OcppEvseDriver(cs, { id: 'E1', identity, connector: 1, ...extra });
        drivers.push(d);
        return d;
    }

    function cp(identity: string, protocol: Protocol = 'ocpp1.6', extra = {}) {
        const c = new TestChargePoint({ url, identity, protocol, ...extra });
        clients.push(c);
        return c;
    }

    afterEach(async () => {
        await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
        await Promise.all(drivers.splice(0).map((d) => d.close()));
        await cs?.close();
    });

    for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as const) {
        describe(protocol, () => {
            it('boot, status and meter values become the EVSE reading', async () => {
                await start();
                const d = driver('CP1');
                await assert.rejects(d.read(), /not connected/);
                const c = cp('CP1', protocol);
                await c.connect();
                const boot = await c.boot();
                assert.equal(boot.status, 'Accepted');
                await c.status(1, 'Available');
                assert.equal((await d.read()).state, 1);
                await c.status(1, protocol === 'ocpp1.6' ? 'Charging' : 'Occupied');
                if (protocol === 'ocpp2.0.1') {
                    assert.equal((await d.read()).state, 2);
                    await c.call('TransactionEvent', {
                        eventType: 'Started',
                        timestamp: new Date().toISOString(),
                        triggerReason: 'Authorized',
                        seqNo: 0,
                        transactionInfo: { transactionId: 'T1', chargingState: 'Charging' },
                        evse: { id: 1, connectorId: 1 },
                        idToken: { idToken: 'CARD1', type: 'ISO14443' },
                    });
                }
                await c.meter(1, [16, 15.5, 0], 7300, 12345);
                const r = await d.read();
                assert.equal(r.state, 3);
                assert.deepEqual(r.currents, [16000, 15500, 0]);
                assert.equal(r.powerW, 7300);
                assert.equal(r.totalEnergyWh, 12345);
                if (protocol === 'ocpp2.0.1') assert.equal(r.rfid, 'CARD1');
                assert.equal(d.boot?.vendor, 'Acme');
                assert.equal(d.boot?.serial, 'SN1');
                // After boot: the sample interval is configured.
                if (protocol === 'ocpp1.6') {
                    await until(
                        () =>
                            c.received.filter((r) => r.method === 'ChangeConfiguration').length ===
                            2,
                        'ChangeConfiguration',
                    );
                    const keys = c.received
                        .filter((r) => r.method === 'ChangeConfiguration')
                        .map((r) => `${String(r.params.key)}=${String(r.params.value)}`);
                    assert.deepEqual(keys, [
                        'MeterValueSampleInterval=10',
                        'MeterValuesSampledData=Current.Import,Power.Active.Import,Energy.Active.Import.Register',
                    ]);
                } else {
                    const set = await c.next('SetVariables', true);
                    const names = (
                        set.params.setVariableData as { variable: { name: string } }[]
                    ).map((v) => v.variable.name);
                    assert.deepEqual(names, [
                        'TxUpdatedInterval',
                        'TxUpdatedMeasurands',
                        'Interval',
                    ]);
                }
            });

            it('apply sends a TxDefaultProfile at the control level and waits for Accepted', async () => {
                await start();
                const d = driver('CP1', { validityMs: 60_000 });
                const c = cp('CP1', protocol);
                await c.connect();
                await c.boot();
                const before = Date.now();
                await d.apply({ current: 10_000, chargingEnabled: true, released: false });
                const call = c.received.filter((x) => x.method === 'SetChargingProfile').at(-1)!;
                const p =
                    protocol === 'ocpp1.6'
                        ? (call.params.csChargingProfiles as Profile)
                        : (call.params.chargingProfile as Profile);
                const schedule =
                    protocol === 'ocpp1.6' ? p.chargingSchedule : p.chargingSchedule[0]!;
                assert.equal(p.stackLevel, 2);
                assert.equal(p.chargingProfilePurpose, 'TxDefaultProfile');
                assert.equal(schedule.chargingRateUnit, 'A');
                assert.equal(schedule.chargingSchedulePeriod[0]!.limit, 10);
                const validTo = Date.parse(p.validTo ?? '');
                assert.ok(validTo >= before + 59_000 && validTo <= Date.now() + 60_000);
                assert.equal(d.keepAliveMs, 60_000);

                // Released (disable_policy -1): the current it is counted at, still expiring.
                await d.apply({ current: 16_000, chargingEnabled: true, released: true });
                const released = c.received
                    .filter((x) => x.method === 'SetChargingProfile')
                    .at(-1)!;
                const rp =
                    protocol === 'ocpp1.6'
                        ? (released.params.csChargingProfiles as Profile)
                        : (released.params.chargingProfile as Profile);
                const rs = protocol === 'ocpp1.6' ? rp.chargingSchedule : rp.chargingSchedule[0]!;
                assert.equal(rs.chargingSchedulePeriod[0]!.limit, 16);
                assert.ok(rp.validTo);

                c.profileAnswer = 'Rejected';
                await assert.rejects(
                    d.apply({ current: 0, chargingEnabled: false, released: false }),
                    /Rejected/,
                );
                c.profileAnswer = 'silent';
                await assert.rejects(
                    d.apply({ current: 6000, chargingEnabled: true, released: false }),
                    /SetChargingProfile failed/,
                );
            });
        });
    }

    it('installs the fail-safe profile on connect and when it changes', async () => {
        await start();
        const d = driver('CP1', { failSafe: { current: 6000, timeoutMs: 180_000 } });
        const c = cp('CP1');
        await c.connect();
        await c.boot();
        const first = await c.next('SetChargingProfile', true);
        const p = first.params.csChargingProfiles as Profile;
        assert.equal(p.stackLevel, 1);
        assert.equal(p.chargingProfileId, 1);
        assert.equal(p.validTo, undefined);
        assert.equal(p.chargingSchedule.chargingSchedulePeriod[0]!.limit, 6);
        const next = c.next('SetChargingProfile');
        d.setFailSafe({ current: 0, timeoutMs: 180_000 });
        const changed = (await next).params.csChargingProfiles as Profile;
        assert.equal(changed.chargingSchedule.chargingSchedulePeriod[0]!.limit, 0);
        assert.equal(changed.stackLevel, 1);
    });

    it('Basic auth: the right password is let in, a wrong or missing one refused with 401', async () => {
        await start();
        driver('CP1', { password: 'secret-1' });
        assert.notEqual(cs.find('CP1')?.passwordHash, 'secret-1');
        await assert.rejects(cp('CP1', 'ocpp1.6', { password: 'wrong' }).connect(), status(401));
        await assert.rejects(cp('CP1').connect(), status(401));
        await cp('CP1', 'ocpp1.6', { password: 'secret-1' }).connect();
        assert.equal(cs.find('CP1')?.connected, true);
        assert.ok(await verifyPassword('x', hashPassword('x')));
        assert.ok(!(await verifyPassword('y', hashPassword('x'))));
    });

    it('refuses unknown identities, or lists them as pending with acceptNew', async () => {
        await start();
        await assert.rejects(cp('NOBODY').connect(), status(404));
        cs.acceptNew = true;
        const c = cp('NEW1');
        await c.connect();
        assert.deepEqual(
            cs.pending.map((p) => p.identity),
            ['NEW1'],
        );
        assert.equal((await c.boot()).status, 'Pending');
        // Adopted by a device: it is asked to boot again and is then accepted.
        const d = driver('NEW1');
        await c.next('TriggerMessage', true);
        assert.equal(cs.pending.length, 0);
        assert.equal((await c.boot()).status, 'Accepted');
        await c.status(1, 'Available');
        assert.equal((await d.read()).state, 1);
    });

    it('a second connection with the same identity replaces the first', async () => {
        await start();
        const d = driver('CP1');
        const a = cp('CP1');
        await a.connect();
        await a.boot();
        const closed = new Promise((r) => a.client.once('close', r));
        const b = cp('CP1');
        await b.connect();
        await closed;
        await b.status(1, 'Charging');
        assert.equal((await d.read()).state, 3);
        assert.equal(cs.find('CP1')?.counters.replaced, 1);
    });

    it('bad input is answered and counted, and other charge points keep working', async () => {
        await start({ maxBadMessages: 3 });
        driver('BAD');
        const good = driver('GOOD');
        const g = cp('GOOD');
        await g.connect();
        await g.boot();

        const raw = new WebSocket(`${url}/BAD`, ['ocpp1.6']);
        await new Promise((r, j) => (raw.once('open', r), raw.once('error', j)));
        const replies: unknown[] = [];
        // Only answers (CALLRESULT / CALLERROR): the central system's own calls are left out.
        raw.on('message', (m) => {
            const frame = JSON.parse(String(m)) as unknown[];
            if (frame[0] !== 2) replies.push(frame);
        });
        raw.send(
            JSON.stringify([
                2,
                'b1',
                'BootNotification',
                { chargePointVendor: 'X', chargePointModel: 'Y' },
            ]),
        );
        await until(() => replies.length === 1, 'boot reply');
        raw.send('not json');
        await until(() => replies.length === 2, 'reply to a malformed frame');
        assert.equal((replies[1] as unknown[])[0], 4);
        // Schema violation: connectorId must be an integer.
        raw.send(
            JSON.stringify([
                2,
                's1',
                'StatusNotification',
                { connectorId: 'x', status: 'Available', errorCode: 'NoError' },
            ]),
        );
        await until(() => replies.length === 3, 'reply to a schema violation');
        assert.equal((replies[2] as unknown[])[0], 4);
        assert.match(String((replies[2] as unknown[])[2]), /Violation/);
        raw.send(JSON.stringify([2, 'u1', 'MakeCoffee', {}]));
        await until(() => replies.length === 4, 'reply to an unknown action');
        assert.equal((replies[3] as unknown[])[2], 'NotImplemented');
        const counters = cs.find('BAD')!.counters;
        assert.equal(counters.badMessages, 1);
        assert.equal(counters.schemaViolations, 1);
        assert.equal(counters.unknownActions, 1);

        // A flood of bad frames closes only that connection.
        const closed = new Promise((r) => raw.once('close', r));
        for (let i = 0; i < 10; i++) raw.send('[garbage');
        await closed;
        await until(() => !cs.find('BAD')!.connected, 'the flooding connection to be dropped');

        await g.status(1, 'Charging');
        assert.equal((await good.read()).state, 3);
    });

    it('calls before an accepted boot are refused with SecurityError', async () => {
        await start();
        driver('CP1');
        const c = cp('CP1');
        await c.connect();
        await assert.rejects(c.status(1, 'Available'), /SecurityError|BootNotification/);
        await c.next('TriggerMessage', true);
        assert.equal(cs.find('CP1')!.counters.refusedBeforeBoot, 1);
    });

    it('a flood of valid calls is rate limited for that charge point only', async () => {
        await start({ rateLimit: { perSecond: 1, burst: 5 } });
        driver('CP1');
        const c = cp('CP1');
        await c.connect();
        await c.boot();
        const results = await Promise.allSettled(
            Array.from({ length: 20 }, () => c.call('Heartbeat', {})),
        );
        assert.ok(results.some((r) => r.status === 'rejected'));
        assert.ok(cs.find('CP1')!.counters.rateLimited > 0);
    });

    it('drops a half-open connection after the ping interval', async () => {
        await start({ pingIntervalMs: 100 });
        driver('CP1');
        const port = Number(new URL(url).port);
        // A client that completes the handshake and then never answers anything (no pongs).
        const socket = tcpConnect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        socket.write(
            'GET /ocpp/CP1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
                'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
                'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n',
        );
        try {
            await until(() => cs.find('CP1')!.connected, 'the connection');
            await until(() => !cs.find('CP1')!.connected, 'the half-open connection to be dropped');
        } finally {
            socket.destroy();
        }
    });

    for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as const) {
        it(`remote start and stop (${protocol}), and every message is an event`, async () => {
            await start();
            const d = driver('CP1');
            const frames: { direction: string; frame: unknown[] }[] = [];
            const ended: string[] = [];
            d.session.events.on('message', (m) => frames.push(m));
            d.session.events.on('transactionEnded', (t) => ended.push(t.transaction.id));
            const c = cp('CP1', protocol);
            await c.connect();
            await c.boot();
            assert.equal(await d.remoteStart('CARD9'), true);
            const started = await c.next(
                protocol === 'ocpp1.6' ? 'RemoteStartTransaction' : 'RequestStartTransaction',
                true,
            );
            if (protocol === 'ocpp1.6') {
                assert.equal(started.params.idTag, 'CARD9');
                assert.equal(started.params.connectorId, 1);
            } else {
                assert.equal((started.params.idToken as { idToken: string }).idToken, 'CARD9');
                assert.equal(started.params.evseId, 1);
            }
            assert.equal(await d.remoteStop(), false, 'no transaction to stop');
            let txId: string;
            if (protocol === 'ocpp1.6') {
                const r = await c.call('StartTransaction', {
                    connectorId: 1,
                    idTag: 'CARD9',
                    meterStart: 0,
                    timestamp: new Date().toISOString(),
                });
                txId = String(r.transactionId);
            } else {
                txId = 'TX-9';
                await c.call('TransactionEvent', {
                    eventType: 'Started',
                    timestamp: new Date().toISOString(),
                    triggerReason: 'RemoteStart',
                    seqNo: 0,
                    transactionInfo: { transactionId: txId, chargingState: 'Charging' },
                    evse: { id: 1, connectorId: 1 },
                });
            }
            assert.equal(await d.remoteStop(), true);
            const stop = await c.next(
                protocol === 'ocpp1.6' ? 'RemoteStopTransaction' : 'RequestStopTransaction',
                true,
            );
            assert.equal(String(stop.params.transactionId), txId);
            if (protocol === 'ocpp1.6') {
                await c.call('StopTransaction', {
                    transactionId: Number(txId),
                    meterStop: 100,
                    timestamp: new Date().toISOString(),
                });
            } else {
                await c.call('TransactionEvent', {
                    eventType: 'Ended',
                    timestamp: new Date().toISOString(),
                    triggerReason: 'RemoteStop',
                    seqNo: 1,
                    transactionInfo: { transactionId: txId, stoppedReason: 'Remote' },
                });
            }
            assert.deepEqual(ended, [txId]);
            assert.ok(
                frames.some((f) => f.direction === 'in' && f.frame[2] === 'BootNotification'),
            );
            assert.ok(frames.some((f) => f.direction === 'out' && f.frame[0] === 3));
            assert.ok(
                frames.some(
                    (f) =>
                        f.direction === 'out' &&
                        f.frame[2] ===
                            (protocol === 'ocpp1.6'
                                ? 'RemoteStopTransaction'
                                : 'RequestStopTransaction'),
                ),
            );
        });
    }

    it('attaches to an existing HTTP server under the path prefix', async () => {
        cs = new OcppCentralSystem({ path: '/ocpp/' });
        const server: Server = createServer((_q, s) => s.end('hello'));
        let other = 0;
        server.on('upgrade', (req, socket, head) => {
            if (!cs.handleUpgrade(req, socket, head)) {
                other++;
                socket.destroy();
            }
        });
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        const port = (server.address() as { port: number }).port;
        try {
            const d = driver('CP%201');
            const c = new TestChargePoint({
                url: `ws://127.0.0.1:${port}/ocpp`,
                identity: 'CP%201',
            });
            clients.push(c);
            await c.connect();
            await c.boot();
            assert.equal(cs.find('CP%201')?.connected, true);
            assert.equal(d.session.identity, 'CP%201');
            const elsewhere = new TestChargePoint({
                url: `ws://127.0.0.1:${port}/other`,
                identity: 'CP1',
            });
            await assert.rejects(elsewhere.connect());
            assert.equal(other, 1);
        } finally {
            await cs.close();
            await new Promise((r) => server.close(r));
        }
    });

    it('TLS listener (security profile 2)', async function () {
        const dir = mkdtempSync(join(tmpdir(), 'ocpp-tls-'));
        try {
            selfSignedCert(dir);
        } catch {
            rmSync(dir, { recursive: true, force: true });
            this.skip();
        }
        const cert = readFileSync(join(dir, 'cert.pem'));
        const key = readFileSync(join(dir, 'key.pem'));
        rmSync(dir, { recursive: true, force: true });
        cs = new OcppCentralSystem();
        const { port } = await cs.listen({ host: '127.0.0.1', port: 0, tls: { cert, key } });
        driver('CP1', { password: 'pw' });
        const c = new TestChargePoint({
            url: `wss://127.0.0.1:${port}/ocpp`,
            identity: 'CP1',
            password: 'pw',
            wsOpts: { ca: cert, rejectUnauthorized: true },
        });
        clients.push(c);
        await c.connect();
        assert.equal((await c.boot()).status, 'Accepted');
        const plain = new TestChargePoint({
            url: `ws://127.0.0.1:${port}/ocpp`,
            identity: 'CP1',
            password: 'pw',
        });
        await assert.rejects(plain.connect());
    });
});
