// The authorisation flow: a wallbox with an assigned user charges only after a valid RFID, PIN
// or user id arrives (enter_rfid, with or without dev_id, or the wallbox's own reader).
import assert from 'node:assert/strict';
import type { SimEvse } from '../../../lib/devices/sim';
import { ADMIN, ADMIN_PASSWORD, directSite, type DirectSite } from '../../support/cnf';

type Json = Record<string, unknown>;

describe('/cnf authorisation flow', function () {
    this.timeout(20_000);
    let d: DirectSite;
    beforeEach(async () => {
        d = directSite(null, { adminPassword: ADMIN_PASSWORD });
        await d.ctx.auth.password.ready();
        await d.site.manager.runCycle();
    });
    afterEach(() => d.stop());

    const admin = (query: string, body?: string) =>
        d.call({ method: body ? 'POST' : 'GET', query, body, authorization: ADMIN });
    const limit = (id: string) => d.site.manager.lastCycle!.snapshot.limits?.get(id);
    const info = async (id: string): Promise<Json> => {
        const all = JSON.parse((await d.call({ query: 'cmd=get_dev_info' })).body) as {
            devices: Json[];
        };
        return all.devices.find((x) => x.dev_id === id)!;
    };
    const user = (dev_ids: string[], rfids: { id: string; ac_auth?: boolean }[] = []) =>
        admin('cmd=set_user', JSON.stringify({ id: '2167520770', name: 'wusel', dev_ids, rfids }));

    it('no user assigned: the wallbox charges without authorisation', async () => {
        await d.site.manager.runCycle();
        assert.equal(limit('E1'), undefined);
        assert.equal((await info('E1')).needs_auth, false);
    });

    it('a user assigned: waits for a valid card, then charges until unplugged', async () => {
        assert.equal((await user(['E1'], [{ id: '4711' }])).status, 200);
        await d.site.manager.runCycle();
        assert.equal(limit('E1'), 0, 'waiting: no charging');
        assert.equal((await info('E1')).needs_auth, true);

        // An unknown card does not authorise.
        assert.equal((await d.call({ query: 'cmd=enter_rfid&rfid=9999&dev_id=E1' })).status, 403);
        await d.site.manager.runCycle();
        assert.equal(limit('E1'), 0);

        // The right card without dev_id goes to the one wallbox waiting.
        assert.equal((await d.call({ query: 'cmd=enter_rfid&rfid=4711' })).status, 200);
        await d.site.manager.runCycle();
        assert.equal(limit('E1'), undefined, 'authorised');
        assert.equal((await info('E1')).needs_auth, false);

        // Unplugging ends the session; the next car waits again.
        const sim = d.site.manager.driver('E1') as SimEvse;
        sim.unplug();
        await d.site.manager.runCycle();
        await d.site.manager.runCycle();
        sim.plug({ batteryWh: 60_000, soc: 0.3, maxCurrent: 16_000, phases: 3 });
        await d.site.manager.runCycle();
        assert.equal(limit('E1'), 0, 'a new session needs a new card');
    });

    it('the user id itself authorises; a card without ac_auth does not; other wallboxes are not affected', async () => {
        await user(['E1'], [{ id: '1234', ac_auth: false }]);
        const refused = await d.call({ query: 'cmd=enter_rfid&rfid=1234&dev_id=E1' });
        assert.deepEqual([refused.status, refused.body], [403, '"RFID/PIN not allowed at E1"']);
        await d.site.manager.runCycle();
        assert.equal(limit('E1'), 0, 'a card that may not authorise');
        await d.call({ query: 'cmd=enter_rfid&rfid=2167520770&dev_id=E1' });
        await d.site.manager.runCycle();
        assert.equal(limit('E1'), undefined, 'the user id');
        d.site.push('E3', { state: 2 });
        await d.site.manager.runCycle();
        assert.equal(limit('E3'), undefined, 'E3 has no user assigned');
    });

    it("a card held to the wallbox's own reader authorises there", async () => {
        await user(['E3'], [{ id: '0815' }]);
        d.site.push('E3', { state: 2 });
        await d.site.manager.runCycle();
        assert.equal(limit('E3'), 0);
        d.site.push('E3', { state: 2, rfid: '0815' });
        await d.site.manager.runCycle();
        assert.equal(limit('E3'), undefined);
    });

    it("a stray card at the wallbox's own reader does not end the session", async () => {
        await user(['E3'], [{ id: '0815' }]);
        const cycle = async (rfid: string, rfidCount: number) => {
            d.site.push('E3', { state: 3, rfid, rfidCount });
            await d.site.manager.runCycle();
            return limit('E3');
        };
        assert.equal(await cycle('0815', 1), undefined, 'authorised');
        assert.equal(await cycle('DEADBEEF', 2), undefined, 'an unknown card changes nothing');
        assert.equal(d.ctx.rfids.get('E3')?.rfid, '0815');
    });

    it("the card a wallbox's reader still shows after unplugging does not let the next car charge", async () => {
        await user(['E3'], [{ id: '0815' }]);
        const cycle = async (reading: { state: 1 | 2; rfid?: string; rfidCount?: number }) => {
            d.site.push('E3', reading);
            await d.site.manager.runCycle();
            return limit('E3');
        };
        assert.equal(await cycle({ state: 2, rfid: '0815', rfidCount: 1 }), undefined);
        assert.equal(await cycle({ state: 1, rfid: '0815', rfidCount: 1 }), undefined, 'gone');
        assert.equal(
            await cycle({ state: 2, rfid: '0815', rfidCount: 1 }),
            0,
            'the next car waits: the reader only still shows the old card',
        );
        assert.equal(
            await cycle({ state: 2, rfid: '0815', rfidCount: 2 }),
            undefined,
            'the same card presented again (the count moved) authorises',
        );
        // A reader without a count: the card must disappear or change first.
        await cycle({ state: 1, rfid: '0815' });
        assert.equal(await cycle({ state: 2, rfid: '0815' }), 0);
        assert.equal(await cycle({ state: 2 }), 0);
        assert.equal(await cycle({ state: 2, rfid: '0815' }), undefined);
    });

    it('a card presented before the car is plugged in counts for that car', async () => {
        await user(['E3'], [{ id: '0815' }]);
        d.site.push('E3', { state: 1 });
        await d.site.manager.runCycle();
        d.site.push('E3', { state: 1, rfid: '0815', rfidCount: 7 });
        await d.site.manager.runCycle();
        d.site.push('E3', { state: 2, rfid: '0815', rfidCount: 7 });
        await d.site.manager.runCycle();
        assert.equal(limit('E3'), undefined);
    });

    it('enter_rfid without dev_id refuses to guess between several waiting wallboxes', async () => {
        await user(['E1', 'E3'], [{ id: '4711' }]);
        d.site.push('E3', { state: 2 });
        await d.site.manager.runCycle();
        const res = await d.call({ query: 'cmd=enter_rfid&rfid=4711' });
        assert.equal(res.status, 400);
        assert.match(res.body, /E1, E3 are waiting: give dev_id/);
        assert.equal(d.ctx.rfids.size, 0, 'nothing recorded');
    });
});
