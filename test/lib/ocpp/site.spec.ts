// A Site drives an OCPP wallbox like any other: the allocator's current arrives at the charge
// point as a TxDefaultProfile, and cards presented there go through the site's users.
import assert from 'node:assert/strict';
import { OcppCentralSystem } from '../../../lib/ocpp/central-system';
import { OcppEvseDriver } from '../../../lib/ocpp/driver';
import type { SessionRecord } from '../../../lib/sessions/record';
import { Site } from '../../../lib/site/site';
import { MemoryUsers } from '../../../lib/users/directory';
import { TestChargePoint } from '../../support/ocpp-client';

interface Profile16 {
    stackLevel: number;
    validTo?: string;
    chargingSchedule: { chargingSchedulePeriod: { limit: number }[] };
}

describe('site with an evse_ocpp wallbox', () => {
    let cs: OcppCentralSystem;
    let site: Site | undefined;
    let c: TestChargePoint | undefined;
    let url: string;

    beforeEach(async () => {
        cs = new OcppCentralSystem({ callTimeoutMs: 1000 });
        const { port } = await cs.listen({ host: '127.0.0.1', port: 0 });
        url = `ws://127.0.0.1:${port}/`;
    });
    afterEach(async () => {
        await c?.close().catch(() => undefined);
        await site?.stop();
        site = undefined;
        await cs.close();
    });

    it('sends the allocator current as the control profile, and shows offline without a connection', async () => {
        site = new Site({
            params: { max_total_current: 20_000, reserve_current: 0 },
            devices: [
                {
                    dev_type: 'evse_ocpp',
                    dev_id: 'E1',
                    address: 'WB-1',
                    id: 1,
                    used_phases: 7,
                    ocpp_password: 'pw-1',
                    fail_safe_cur: 0,
                    fail_safe_duration: 30,
                },
            ],
            ocpp: cs,
        });
        const entry = site.device('E1') as { ocpp_password?: string };
        assert.match(entry.ocpp_password ?? '', /^scrypt\$/, 'stored hashed');
        const offline = await site.manager.runCycle();
        assert.equal(offline.result.setpoints.get('E1')?.state, 'unreachable');
        assert.match(site.manager.deviceState('E1').sample.error ?? '', /not connected/);

        c = new TestChargePoint({ url, identity: 'WB-1', password: 'pw-1' });
        await c.connect();
        await c.boot();
        // Fail-safe first: the permanent profile at stack level 1 with fail_safe_cur.
        const failSafe = (await c.next('SetChargingProfile', true)).params
            .csChargingProfiles as Profile16;
        assert.equal(failSafe.stackLevel, 1);
        assert.equal(failSafe.chargingSchedule.chargingSchedulePeriod[0]!.limit, 0);
        await c.status(1, 'Charging');
        await c.meter(1, [10, 10, 10], 6900, 1000);

        const profiles = () =>
            c!.received
                .filter((r) => r.method === 'SetChargingProfile')
                .map((r) => r.params.csChargingProfiles as Profile16)
                .filter((p) => p.stackLevel === 2);
        let report = await site.manager.runCycle();
        for (let i = 0; i < 5 && !(report.result.setpoints.get('E1')?.current ?? 0); i++) {
            report = await site.manager.runCycle();
        }
        const setpoint = report.result.setpoints.get('E1')!;
        assert.equal(setpoint.state, 'charging');
        assert.ok(setpoint.current > 0);
        const sent = profiles().at(-1)!;
        assert.equal(
            sent.chargingSchedule.chargingSchedulePeriod[0]!.limit,
            setpoint.current / 1000,
        );
        assert.equal(
            (site.manager.deviceState('E1').sample.reading as { state?: number })?.state,
            3,
        );
        const driver = site.manager.driver('E1') as OcppEvseDriver;
        assert.equal(driver.boot?.vendor, 'Acme');
        // fail_safe_duration is the profile's validity; the engine renews it at a third.
        assert.equal(driver.keepAliveMs, 30_000);
        const left = Date.parse(sent.validTo ?? '') - Date.now();
        assert.ok(left > 25_000 && left <= 30_000, `validTo in ${left} ms`);
    });

    it('answers Authorize through the site users and counts an accepted card as entered', async () => {
        const users = new MemoryUsers();
        users.set({ id: '1001', name: 'Ann', dev_ids: ['E1'], rfids: [{ id: 'CARD1' }] });
        site = new Site({
            params: { max_total_current: 20_000, reserve_current: 0 },
            devices: [{ dev_type: 'evse_ocpp', dev_id: 'E1', address: 'WB-2', id: 1 }],
            ocpp: cs,
            users,
        });
        c = new TestChargePoint({ url, identity: 'WB-2' });
        await c.connect();
        await c.boot();
        const bad = await c.call('Authorize', { idTag: 'STRANGER' });
        assert.equal((bad.idTagInfo as { status: string }).status, 'Invalid');
        const good = await c.call('StartTransaction', {
            connectorId: 1,
            idTag: 'CARD1',
            meterStart: 500,
            timestamp: new Date().toISOString(),
        });
        assert.equal((good.idTagInfo as { status: string }).status, 'Accepted');
        assert.equal(site.authorisation.rfids.get('E1')?.rfid, 'CARD1');
        assert.equal(site.authorisation.rfids.get('E1')?.user, '1001');
        const records: SessionRecord[] = [];
        site.sessions.events.on('ended', (r) => records.push(r));
        await c.status(1, 'Charging');
        await c.meter(1, [16, 16, 16], 11_000, 900);
        await site.manager.runCycle();
        assert.equal(site.sessions.running('E1')?.transaction_id, String(good.transactionId));
        await c.call('StopTransaction', {
            transactionId: good.transactionId,
            meterStop: 2500,
            reason: 'Local',
            timestamp: new Date().toISOString(),
        });
        const done = cs.find('WB-2')!.finished.at(-1)!;
        assert.equal(done.energyWh, 2000);
        assert.equal(done.idTag, 'CARD1');
        // The transaction is the session record: its id, card, user, the charge point's figures.
        await site.manager.runCycle();
        assert.equal(records.length, 1);
        const r = records[0]!;
        assert.equal(r.transaction_id, String(good.transactionId));
        assert.deepEqual([r.card, r.user_id, r.user], ['CARD1', '1001', 'Ann']);
        assert.deepEqual([r.meter_start_wh, r.meter_stop_wh, r.energy_wh], [500, 2500, 2000]);
        assert.deepEqual([r.reason, r.ocpp_reason], ['transaction', 'Local']);
        assert.equal(r.peak_ma, 16_000);
    });

    it('with two connectors a card counts as entered only where the transaction starts', async () => {
        const users = new MemoryUsers();
        users.set({ id: '1002', name: 'Bo', dev_ids: ['E1', 'E2'], rfids: [{ id: 'CARD2' }] });
        site = new Site({
            params: { max_total_current: 20_000, reserve_current: 0 },
            devices: [
                { dev_type: 'evse_ocpp', dev_id: 'E1', address: 'WB-3', id: 1 },
                { dev_type: 'evse_ocpp', dev_id: 'E2', address: 'WB-3', id: 2 },
            ],
            ocpp: cs,
            users,
        });
        c = new TestChargePoint({ url, identity: 'WB-3' });
        await c.connect();
        await c.boot();
        const auth = await c.call('Authorize', { idTag: 'CARD2' });
        assert.equal((auth.idTagInfo as { status: string }).status, 'Accepted');
        assert.equal(site.authorisation.rfids.size, 0, 'Authorize alone names no connector');
        await c.call('StartTransaction', {
            connectorId: 2,
            idTag: 'CARD2',
            meterStart: 0,
            timestamp: new Date().toISOString(),
        });
        assert.deepEqual([...site.authorisation.rfids.keys()], ['E2']);
    });

    it('without a central system an evse_ocpp wallbox has no driver', async () => {
        site = new Site({ devices: [{ dev_type: 'evse_ocpp', dev_id: 'E1', address: 'X' }] });
        assert.equal(site.manager.driver('E1'), undefined);
    });
});
