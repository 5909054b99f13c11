// set_user: the admin may do anything; a user identified by its id (the user's secret) may change
// only what the vendor lets users change about themselves — name, display, its cards' names and
// PINs. A partial body changes only the fields it names.
import assert from 'node:assert/strict';
import type { User } from '../../../lib/cnf/users';
import { ADMIN, ADMIN_PASSWORD, directSite, type DirectSite } from '../../support/cnf';

type Json = Record<string, unknown>;
const REMOTE = '192.0.2.50';
const ANNA = '2167520770';

const anna = {
    id: ANNA,
    name: 'Anna',
    display: true,
    dev_ids: ['E1'],
    rfids: [
        { id: '4711', name: 'Key', ac_auth: true, ac_ovch: false, used_phases: 0 },
        {
            id: '4712',
            name: 'Kid',
            ac_auth: true,
            ac_ovch: false,
            used_phases: 1,
            budget: { unit: 'kwh', amount: 5, reset: 'weekly' },
        },
    ],
    charging_rules: [{ mode: 0, current: 10000, days: 127, enabled: true }],
    budget: { unit: 'kwh', amount: 20, reset: 'monthly' },
};

describe('set_user', function () {
    this.timeout(20_000);
    let d: DirectSite;
    let now: number;

    beforeEach(async () => {
        now = 1_700_000_000_000;
        d = directSite(null, { adminPassword: ADMIN_PASSWORD, now: () => now });
        await d.ctx.auth.password.ready();
        const r = await asAdmin(anna);
        assert.equal(r.status, 200, r.body);
        await d.ctx.auth.password.ready();
    });
    afterEach(() => d.stop());

    const post = (body: unknown, extra: Json = {}) =>
        d.call({
            method: 'POST',
            query: 'cmd=set_user',
            body: JSON.stringify(body),
            remoteAddress: REMOTE,
            ...extra,
        });
    const asAdmin = (body: unknown) => post(body, { authorization: ADMIN });
    const stored = (): User => structuredClone(d.ctx.users.get(ANNA)!);

    it('a user cannot give itself wallboxes, budgets, rules or card rights', async () => {
        const before = stored();
        const attempts: [unknown, string][] = [
            [{ id: ANNA, dev_ids: ['E1', 'E2', 'E3'] }, 'dev_ids needs the admin password'],
            [
                { id: ANNA, budget: { unit: 'kwh', amount: 1000 } },
                'budget needs the admin password',
            ],
            [{ id: ANNA, charging_rules: [] }, 'charging_rules needs the admin password'],
            [
                { id: ANNA, rfids: [{ id: '4711', used_phases: 7 }, { id: '4712' }] },
                'rfids[0].used_phases needs the admin password',
            ],
            [
                { id: ANNA, rfids: [{ id: '4711' }, { id: '4712', budget: null }] },
                'user.rfids[1].budget: must be a object (got null)',
            ],
            [
                { id: ANNA, rfids: [{ id: '4711' }, { id: '4712', ac_auth: false }] },
                'rfids[1].ac_auth needs the admin password',
            ],
            [
                { id: ANNA, rfids: [{ id: '4711' }, { id: '4712' }, { id: '9999' }] },
                'adding or removing cards needs the admin password',
            ],
            [
                { id: ANNA, rfids: [{ id: '4711' }] },
                'adding or removing cards needs the admin password',
            ],
        ];
        for (const [body, message] of attempts) {
            const r = await post(body);
            assert.equal(JSON.parse(r.body), message, JSON.stringify(body));
            assert.ok(r.status === 403 || r.status === 400, r.body);
            assert.deepEqual(stored(), before, `nothing changed by ${JSON.stringify(body)}`);
        }
    });

    it('a user changes its name, display and its cards’ names and PINs with its id', async () => {
        const r = await post({
            id: ANNA,
            name: 'Anna B.',
            display: false,
            rfids: [{ id: '1234', name: 'New key' }, { name: 'Kid’s fob' }],
        });
        assert.equal(r.status, 200, r.body);
        const after = stored();
        assert.equal(after.name, 'Anna B.');
        assert.equal(after.display, false);
        assert.deepEqual(
            after.rfids.map((c) => [c.id, c.name]),
            [
                ['1234', 'New key'],
                ['4712', 'Kid’s fob'],
            ],
        );
        // What only the admin sets is kept: card rights and budgets, wallboxes, rules, budget.
        assert.deepEqual(after.rfids[1]!.budget, anna.rfids[1]!.budget);
        assert.equal(after.rfids[1]!.used_phases, 1);
        assert.deepEqual(after.dev_ids, ['E1']);
        assert.deepEqual(after.budget, { unit: 'kwh', amount: 20, reset: 'monthly' });
        assert.equal(after.charging_rules.length, 1);
        // The new PIN authorises, the old one is nobody's.
        assert.equal(d.ctx.userFor('1234'), ANNA);
        assert.equal(d.ctx.userFor('4711'), null);
        // Posting the user back as get_user shows it, with a change, is fine.
        const self = JSON.parse(
            (await d.call({ query: `cmd=get_user&id=${ANNA}`, remoteAddress: REMOTE })).body,
        ) as Json;
        const back = await post({ ...self, name: 'Anna C.' });
        assert.equal(back.status, 200, back.body);
        assert.equal(stored().name, 'Anna C.');
    });

    it('a partial body changes only the fields it names, for the admin too', async () => {
        assert.equal((await asAdmin({ id: ANNA, name: 'Renamed' })).status, 200);
        let after = stored();
        assert.equal(after.name, 'Renamed');
        assert.deepEqual(after.dev_ids, ['E1'], 'wallboxes kept');
        assert.deepEqual(
            after.rfids.map((c) => c.id),
            ['4711', '4712'],
            'cards kept',
        );
        assert.deepEqual(after.budget, anna.budget);
        // A card the admin names by its id keeps what the body does not say about it.
        const r = await asAdmin({ id: ANNA, rfids: [{ id: '4712', name: 'Kid 2' }] });
        assert.equal(r.status, 200, r.body);
        after = stored();
        assert.deepEqual(
            after.rfids.map((c) => c.id),
            ['4712'],
            'the admin replaces the list',
        );
        assert.equal(after.rfids[0]!.name, 'Kid 2');
        assert.deepEqual(after.rfids[0]!.budget, anna.rfids[1]!.budget);
        assert.equal(after.rfids[0]!.used_phases, 1);
        // The admin may widen rights.
        assert.equal((await asAdmin({ id: ANNA, dev_ids: ['E1', 'E3'] })).status, 200);
        assert.deepEqual(stored().dev_ids, ['E1', 'E3']);
    });

    it('an unknown id is a failed login; a PIN of someone else is refused and counted', async () => {
        assert.equal((await asAdmin({ id: '3167520771', rfids: [{ id: '5555' }] })).status, 200);
        const taken = await post({ id: ANNA, rfids: [{ id: '5555' }, { id: '4712' }] });
        assert.deepEqual(
            [taken.status, JSON.parse(taken.body)],
            [400, 'user.rfids: 5555 belongs to another user'],
        );
        const ids = await post({ id: ANNA, rfids: [{ id: '3167520771' }, { id: '4712' }] });
        assert.equal(ids.status, 400, 'a PIN equal to another user’s id');
        const unknown = await post({ id: '1111111111', name: 'x' });
        assert.equal(unknown.status, 401);
        assert.match(String(unknown.headers['WWW-Authenticate']), /^Basic /);
        assert.equal(d.ctx.users.get('1111111111'), undefined, 'not created');
        await post({ id: '1111111112', name: 'x' });
        await post({ id: '1111111113', name: 'x' });
        const blocked = await post({ id: ANNA, name: 'x' });
        assert.equal(blocked.status, 429, 'five failures block the address');
        assert.equal(stored().name, 'Anna');
    });

    it('user ids are strings end to end: leading zeros and more than 53 bits stay', async () => {
        const ids = ['0012345678', '98765432109876543210'];
        for (const id of ids) {
            assert.equal((await asAdmin({ id, name: id, dev_ids: ['E1'] })).status, 200);
            const got = JSON.parse(
                (await d.call({ query: `cmd=get_user&id=${id}`, remoteAddress: REMOTE })).body,
            ) as Json;
            assert.equal(got.id, id);
        }
        const list = JSON.parse(
            (await d.call({ query: 'cmd=get_users', authorization: ADMIN })).body,
        ) as Json[];
        assert.deepEqual(
            list.map((u) => u.id),
            [ANNA, ...ids],
        );
        assert.equal((await asAdmin({ id: 12345678, name: 'number' })).status, 400);
    });
});
