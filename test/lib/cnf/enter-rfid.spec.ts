// enter_rfid needs no password, so it must not let anyone on the network end someone's charge: a
// card that is nobody's, or that may not authorise at the wallbox, changes nothing, is refused
// (403) and counts as a failed attempt, throttled as wrong passwords are.
import assert from 'node:assert/strict';
import { ADMIN, ADMIN_PASSWORD, directSite, fingerprint, type DirectSite } from '../../support/cnf';

type Json = Record<string, unknown>;
const REMOTE = '192.0.2.77';

describe('enter_rfid with a card that cannot authorise', function () {
    this.timeout(20_000);
    let d: DirectSite;
    let now: number;

    beforeEach(async () => {
        now = 1_700_000_000_000;
        d = directSite(null, { adminPassword: ADMIN_PASSWORD, now: () => now });
        await d.ctx.auth.password.ready();
        const user = async (body: Json) => {
            const r = await d.call({
                method: 'POST',
                query: 'cmd=set_user',
                body: JSON.stringify(body),
                authorization: ADMIN,
            });
            assert.equal(r.status, 200, r.body);
        };
        // Anna may charge at E3; Ben is a known user for no wallbox in particular.
        await user({
            id: '2167520770',
            name: 'Anna',
            dev_ids: ['E3'],
            rfids: [{ id: '4711' }, { id: '4712', ac_auth: false }],
        });
        await user({ id: '3167520771', name: 'Ben', rfids: [{ id: '5555' }] });
        // Anna's car charges at E3 after her card.
        d.site.push('E3', { state: 3, currents: [16000, 16000, 16000] });
        await d.site.manager.runCycle();
        const entered = await enter('4711', 'E3');
        assert.equal(entered.status, 200, entered.body);
        await d.site.manager.runCycle();
        assert.equal(limit('E3'), undefined, 'authorised');
    });
    afterEach(() => d.stop());

    const enter = (rfid: string, devId?: string, remoteAddress = REMOTE) =>
        d.call({
            query: `cmd=enter_rfid&rfid=${rfid}${devId ? `&dev_id=${devId}` : ''}`,
            remoteAddress,
        });
    const limit = (id: string) => d.site.manager.lastCycle!.snapshot.limits?.get(id);
    const needsAuth = async (id: string) => {
        const info = JSON.parse((await d.call({ query: 'cmd=get_dev_info' })).body) as {
            devices: Json[];
        };
        return info.devices.find((x) => x.dev_id === id)!.needs_auth;
    };

    it('an unknown card changes nothing: the authorised charge goes on', async () => {
        const before = fingerprint(d);
        const res = await enter('9999', 'E3');
        assert.deepEqual([res.status, JSON.parse(res.body)], [403, 'unknown RFID/PIN']);
        assert.equal(fingerprint(d), before, 'nothing changed');
        await d.site.manager.runCycle();
        assert.equal(limit('E3'), undefined, 'still authorised');
        assert.equal(await needsAuth('E3'), false);
        // Without dev_id as well.
        assert.equal((await enter('9999')).status, 403);
        assert.equal(fingerprint(d), before);
    });

    it("another user's card, or one that may not authorise, is refused where it may not", async () => {
        const before = fingerprint(d);
        for (const card of ['5555', '4712']) {
            const res = await enter(card, 'E3');
            assert.deepEqual(
                [res.status, JSON.parse(res.body)],
                [403, 'RFID/PIN not allowed at E3'],
                card,
            );
        }
        assert.equal(fingerprint(d), before);
        await d.site.manager.runCycle();
        assert.equal(limit('E3'), undefined, 'still authorised');
        // A known card at a wallbox that needs no authorisation is taken (user rules, budgets).
        assert.equal((await enter('5555', 'E1')).status, 200);
        assert.equal(d.ctx.rfids.get('E1')?.user, '3167520771');
    });

    it('refusals count as failed logins: the address is throttled, others are not', async () => {
        for (let i = 0; i < 5; i++) assert.equal((await enter(`90${i}`, 'E3')).status, 403);
        const blocked = await enter('4711', 'E3');
        assert.equal(blocked.status, 429, 'even the right card waits');
        assert.match(JSON.parse(blocked.body) as string, /too many failed logins, retry in \d+ s/);
        assert.ok(Number(blocked.headers['Retry-After']) >= 1);
        // The throttle is the one of the admin password: admin logins wait too.
        const admin = await d.call({
            query: 'cmd=override_device&dev_id=E3&flags=C',
            authorization: ADMIN,
            remoteAddress: REMOTE,
        });
        assert.equal(admin.status, 429);
        assert.equal((await enter('4711', 'E3', '192.0.2.78')).status, 200, 'another address');
        now += 60_000;
        assert.equal((await enter('4711', 'E3')).status, 200, 'after the block');
    });
});
