// Auth of /cnf: every protected command without, with wrong and with right credentials;
// throttling of failed logins; writes only from this machine while no password is set; the
// RFID/PIN/user-id paths the vendor allows.
import assert from 'node:assert/strict';
import { AdminPassword, hashPasswordForStore, verifyStoredPassword } from '../../../lib/cnf/auth';
import type { CnfRequest } from '../../../lib/cnf/handle';
import {
    ADMIN,
    ADMIN_PASSWORD,
    basic,
    directSite,
    fingerprint,
    type DirectSite,
} from '../../support/cnf';

const REMOTE = '192.0.2.10';

interface Case {
    name: string;
    query: string;
    body?: string;
    /** Status with the right credentials (default 200). */
    ok?: number;
}

const PROTECTED: Case[] = [
    { name: 'modbus write', query: 'cmd=modbus&device=E1&write=8044&value=7' },
    { name: 'set_params', query: 'cmd=set_params', body: '{"title":"x"}' },
    { name: 'override_device E', query: 'cmd=override_device&dev_id=E1&flags=E' },
    { name: 'override_device C', query: 'cmd=override_device&dev_id=E1&flags=C' },
    { name: 'override_device mamps', query: 'cmd=override_device&dev_id=E1&mamps=8000' },
    { name: 'soft_meter set', query: 'cmd=soft_meter&dev_id=E1&val=100' },
    { name: 'set_ajax_meter', query: 'cmd=set_ajax_meter&dev_id=M3&power_w=100' },
    { name: 'set_ajax_evse', query: 'cmd=set_ajax_evse&dev_id=E3', body: '{"state":2}' },
    { name: 'get_users', query: 'cmd=get_users' },
    { name: 'get_user (unknown id)', query: 'cmd=get_user&id=12345', ok: 404 },
    { name: 'set_user (new user)', query: 'cmd=set_user', body: '{"id":"12345","name":"a"}' },
    { name: 'get_new_user_id', query: 'cmd=get_new_user_id' },
    { name: 'accept_license', query: 'cmd=accept_license&acc=1&allow_usage_stats=0' },
    { name: 'del_device', query: 'cmd=del_device&dev_id=M3' },
    { name: 'reset_device', query: 'cmd=reset_device&dev_id=E1' },
    { name: 'set_diag_logging', query: 'cmd=set_diag_logging&enable=1' },
    { name: 'set_cm_vars', query: 'cmd=set_cm_vars&name=a&val=1' },
    { name: 'get_cm_vars', query: 'cmd=get_cm_vars' },
    { name: 'get_devices', query: 'cmd=get_devices' },
    { name: 'set_device', query: 'cmd=set_device', body: '{"devices":[{"dev_id":"E1","prio":2}]}' },
    {
        name: 'set_cplan',
        query: 'cmd=set_cplan&dev_id=E1',
        body: '{"cplan":[{"st":0,"dr":1440,"lm":8000}]}',
    },
    { name: 'get_cplan', query: 'cmd=get_cplan&dev_id=E1' },
];

const PUBLIC = [
    'cmd=get_dev_info',
    'cmd=get_params',
    'cmd=get_dev_types',
    'cmd=modbus&device=E1&read=8092',
    'cmd=modbus&device=meter1&read=all',
    'cmd=soft_meter&dev_id=E1',
];

function request(c: Case, extra: Partial<CnfRequest>): CnfRequest {
    return {
        method: c.body ? 'POST' : 'GET',
        query: c.query,
        body: c.body,
        remoteAddress: REMOTE,
        ...extra,
    };
}

describe('/cnf auth', function () {
    this.timeout(20_000);
    let d: DirectSite;
    let now = 1_000_000;
    const clock = () => now;
    afterEach(async () => {
        await d?.stop();
    });

    for (const c of PROTECTED) {
        it(`${c.name}: 401 without and with wrong credentials, works with the right ones`, async () => {
            d = directSite(null, { adminPassword: ADMIN_PASSWORD, now: clock });
            await d.ctx.auth.password.ready();
            const before = fingerprint(d);
            const none = await d.call(request(c, {}));
            assert.equal(none.status, 401, none.body);
            assert.match(none.headers['WWW-Authenticate'] ?? '', /^Basic realm=/);
            const wrong = await d.call(request(c, { authorization: basic('admin', 'nope') }));
            assert.equal(wrong.status, 401, wrong.body);
            const otherUser = await d.call(
                request(c, { authorization: basic('root', ADMIN_PASSWORD) }),
            );
            assert.equal(otherUser.status, 401, otherUser.body);
            assert.equal(fingerprint(d), before, 'rejected requests change nothing');
            const right = await d.call(request(c, { authorization: ADMIN }));
            assert.equal(right.status, c.ok ?? 200, right.body);
        });
    }

    it('change_admin_pwd needs the old password', async () => {
        d = directSite(null, { adminPassword: ADMIN_PASSWORD, now: clock });
        const bad = await d.call({
            query: 'cmd=change_admin_pwd&old_pwd=x&new_pwd=y',
            remoteAddress: REMOTE,
        });
        assert.equal(bad.status, 401);
        const ok = await d.call({
            query: `cmd=change_admin_pwd&old_pwd=${ADMIN_PASSWORD}&new_pwd=secret2`,
            remoteAddress: REMOTE,
        });
        assert.equal(ok.status, 200, ok.body);
        const old = await d.call({
            query: 'cmd=get_users',
            authorization: ADMIN,
            remoteAddress: REMOTE,
        });
        assert.equal(old.status, 401);
        const fresh = await d.call({
            query: 'cmd=get_users',
            authorization: basic('admin', 'secret2'),
            remoteAddress: REMOTE,
        });
        assert.equal(fresh.status, 200);
    });

    it('keeps only an scrypt hash of the password', () => {
        d = directSite(null, { adminPassword: ADMIN_PASSWORD });
        const seen = new Set<unknown>();
        const walk = (v: unknown): void => {
            if (typeof v === 'string') assert.ok(!v.includes(ADMIN_PASSWORD));
            if (Buffer.isBuffer(v)) assert.ok(!v.toString('latin1').includes(ADMIN_PASSWORD));
            if (v && typeof v === 'object' && !seen.has(v)) {
                seen.add(v);
                for (const x of Object.values(v as object)) walk(x);
            }
        };
        walk(d.ctx.auth);
    });

    it('public commands need no credentials, even with a password set', async () => {
        d = directSite(null, { adminPassword: ADMIN_PASSWORD, now: clock });
        d.site.start();
        await d.site.manager.runCycle();
        for (const q of PUBLIC) {
            const r = await d.call({ query: q, remoteAddress: REMOTE });
            assert.equal(r.status, 200, `${q}: ${r.body}`);
        }
    });

    it('throttles failed logins per client address', async () => {
        d = directSite(null, { adminPassword: ADMIN_PASSWORD, now: clock });
        const q = { query: 'cmd=get_users', remoteAddress: REMOTE };
        for (let i = 0; i < 5; i++) {
            const r = await d.call({ ...q, authorization: basic('admin', `guess${i}`) });
            assert.equal(r.status, 401);
        }
        const blocked = await d.call({ ...q, authorization: ADMIN });
        assert.equal(blocked.status, 429, 'even the right password waits');
        assert.match(blocked.body, /too many failed logins/);
        assert.ok(Number(blocked.headers['Retry-After']) >= 1);
        // another address is not affected
        const other = await d.call({ ...q, remoteAddress: '192.0.2.11', authorization: ADMIN });
        assert.equal(other.status, 200);
        // RFID guesses count too
        const rfid = await d.call({
            query: 'cmd=override_device&dev_id=E1&flags=C&rfid=999',
            remoteAddress: REMOTE,
        });
        assert.equal(rfid.status, 429);
        now += 1500;
        assert.equal((await d.call({ ...q, authorization: ADMIN })).status, 200);
        // the block doubles with every further failure
        for (let i = 0; i < 5; i++) await d.call({ ...q, authorization: basic('admin', 'x') });
        now += 1100;
        assert.equal((await d.call({ ...q, authorization: basic('admin', 'y') })).status, 401);
        now += 1500;
        assert.equal((await d.call({ ...q, authorization: ADMIN })).status, 429);
        now += 600;
        assert.equal((await d.call({ ...q, authorization: ADMIN })).status, 200);
    });

    it('accepts changes only from this machine while no password is set', async () => {
        d = directSite(null, { now: clock });
        for (const c of PROTECTED) {
            const before = fingerprint(d);
            const remote = await d.call(request(c, { authorization: basic('admin', '') }));
            assert.equal(remote.status, 403, `${c.name}: ${remote.body}`);
            assert.match(remote.body, /no admin password set/);
            assert.equal(fingerprint(d), before);
        }
        for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
            const r = await d.call({
                query: 'cmd=set_cm_vars&name=a&val=1',
                remoteAddress: address,
            });
            assert.equal(r.status, 200, address);
        }
        for (const q of PUBLIC.slice(0, 3)) {
            assert.equal((await d.call({ query: q, remoteAddress: REMOTE })).status, 200);
        }
    });

    it('lets a user override with an RFID/PIN where the vendor allows it', async () => {
        d = directSite(null, { adminPassword: ADMIN_PASSWORD, now: clock });
        const created = await d.call({
            method: 'POST',
            query: 'cmd=set_user',
            body: JSON.stringify({
                id: '55555',
                name: 'u',
                dev_ids: ['E1'],
                rfids: [{ id: '4711' }],
            }),
            authorization: ADMIN,
            remoteAddress: REMOTE,
        });
        assert.equal(created.status, 200, created.body);
        const at = (q: string) => d.call({ query: q, remoteAddress: REMOTE });
        assert.equal((await at('cmd=override_device&dev_id=E1&flags=C&rfid=4711')).status, 200);
        assert.equal((await at('cmd=override_device&dev_id=E1&mamps=8000&rfid=4711')).status, 200);
        assert.equal((await at('cmd=override_device&dev_id=E1&flags=Uc&rfid=4711')).status, 200);
        assert.deepEqual(d.ctx.overrides.get('E1'), { flags: 4, current: 8000 });
        // E needs admin; U/u need the user's RFID or the admin, who may do whatever a user may;
        // a card for another wallbox is refused
        assert.equal((await at('cmd=override_device&dev_id=E1&flags=E&rfid=4711')).status, 401);
        assert.equal((await at('cmd=override_device&dev_id=E1&flags=u')).status, 401);
        const u = await d.call({
            query: 'cmd=override_device&dev_id=E1&flags=u',
            authorization: ADMIN,
            remoteAddress: REMOTE,
        });
        assert.equal(u.status, 200, u.body);
        assert.deepEqual(d.ctx.overrides.get('E1'), { flags: 0, current: 8000 });
        assert.equal((await at('cmd=override_device&dev_id=E3&flags=C&rfid=4711')).status, 403);
        // a user changes itself with its id; the id reads it back
        assert.equal((await at('cmd=get_user&id=55555')).status, 200);
        const self = await d.call({
            method: 'POST',
            query: 'cmd=set_user',
            body: JSON.stringify({ id: '55555', name: 'renamed', rfids: [{ id: '4711' }] }),
            remoteAddress: REMOTE,
        });
        assert.equal(self.status, 200, self.body);
        assert.equal(d.ctx.users.get('55555')?.name, 'renamed');
    });
});

describe('admin password in its stored form', () => {
    const cost = { N: 1024, r: 8, p: 1 };

    it('round-trips through stored() and setStored() with its own cost and salt', async () => {
        const a = new AdminPassword(cost);
        assert.equal(a.stored(), null);
        await a.set('s3cret');
        const stored = a.stored()!;
        assert.match(stored, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
        assert.ok(!stored.includes('s3cret'));
        // a manager with another default cost still verifies a stored hash
        const b = new AdminPassword({ N: 2048, r: 8, p: 1 });
        await b.setStored(stored);
        assert.equal(await b.verify('s3cret'), true);
        assert.equal(await b.verify('S3cret'), false);
        assert.equal(b.stored(), stored);
        assert.equal(await verifyStoredPassword('s3cret', stored), true);
        assert.equal(await verifyStoredPassword('other', stored), false);
        assert.equal(
            await verifyStoredPassword('s3cret', await hashPasswordForStore('s3cret', cost)),
            true,
        );
    });

    it('refuses a malformed or too costly stored hash, and changes apply in call order', async () => {
        const a = new AdminPassword(cost);
        for (const bad of ['scrypt$', 'scrypt$1000$8$1$AAAA$AAAA', 'scrypt$1048576$64$1$AA$AA']) {
            assert.throws(() => void a.setStored(bad), /not a stored scrypt password hash/);
            assert.equal(await verifyStoredPassword('x', bad), false);
        }
        const other = new AdminPassword(cost);
        await other.set('from-store');
        // the slow set() started first must not overwrite the stored hash set after it
        void a.set('first');
        await a.setStored(other.stored());
        assert.equal(await a.verify('from-store'), true);
        assert.equal(await a.verify('first'), false);
        await a.setStored(null);
        assert.equal(a.isSet, false);
    });
});
