// get_sessions: the recorded charging sessions through /cnf (JSON and CSV, filtered, admin only),
// and a budget that counts exactly what the session record says.
import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import { CnfContext } from '../../../lib/cnf/context';
import { handleCnf } from '../../../lib/cnf/handle';
import { MemoryUsers } from '../../../lib/cnf/users';
import { Site } from '../../../lib/site/site';
import { TEST_SCRYPT } from '../../support/cnf';

const PASSWORD = 'sessions-admin';
const USER = '2167520770';
const CARD = '4711';
const T0 = new Date(2026, 11, 3, 18, 0, 0).getTime();

function site() {
    const clock = new ManualClock(T0);
    const s = new Site({
        params: { reserve_current: 0, increase_hold_time: 0, max_increase_per_cycle: 100_000 },
        clock,
        devices: [
            { dev_type: 'evse_ajax', dev_id: 'E1', name: 'Garage, left', used_phases: 7 },
            { dev_type: 'evse_ajax', dev_id: 'E2', name: 'Garage, right', used_phases: 7 },
            { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
        ],
    });
    const users = new MemoryUsers([
        {
            id: USER,
            name: '=Anna "A"',
            rfids: [{ id: CARD }],
            budget: { unit: 'kwh', amount: 20, reset: 'once' },
        },
    ]);
    const ctx = new CnfContext(s, {
        users,
        adminPassword: PASSWORD,
        scrypt: TEST_SCRYPT,
        now: () => clock.now(),
    });
    const auth = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
    const call = (query: string, admin = true) =>
        handleCnf(
            {
                method: 'GET',
                remoteAddress: '127.0.0.1',
                query,
                ...(admin ? { authorization: auth } : {}),
            },
            ctx,
        );
    const counters = { E1: 5_000, E2: 90_000 };
    /** One minute on; each listed wallbox charges at `amps` on three phases, the others wait. */
    const minute = async (
        charging: Partial<Record<'E1' | 'E2', number>>,
        plugged = ['E1', 'E2'],
    ) => {
        clock.advance(60_000);
        for (const id of ['E1', 'E2'] as const) {
            const amps = charging[id] ?? 0;
            const wh = (amps * 3 * 230) / 60;
            counters[id] += wh;
            s.push(id, {
                state: !plugged.includes(id) ? 1 : amps > 0 ? 3 : 2,
                currents: [amps * 1000, amps * 1000, amps * 1000],
                powerW: amps * 3 * 230,
                totalEnergyWh: counters[id],
            });
        }
        s.push('M1', { powerW: 0, currents: [0, 0, 0] });
        await s.manager.runCycle();
    };
    return { s, ctx, clock, call, minute };
}

type Rec = Record<string, unknown>;

describe('/cnf get_sessions', function () {
    it('records each session, filters it, answers CSV, and the budget counts the same energy', async () => {
        const t = site();
        await t.minute({});
        assert.equal((await t.call(`cmd=enter_rfid&rfid=${CARD}&dev_id=E1`)).status, 200);
        for (let i = 0; i < 10; i++) await t.minute({ E1: 16, E2: i < 5 ? 10 : 0 });
        await t.minute({}, ['E2']); // E1 unplugged
        const running = JSON.parse((await t.call('cmd=get_sessions')).body) as {
            sessions: Rec[];
            running: Rec[];
        };
        assert.equal(running.sessions.length, 1);
        assert.deepEqual(
            running.running.map((r) => r.dev_id),
            ['E2'],
        );
        await t.minute({}, []);

        const all = JSON.parse((await t.call('cmd=get_sessions')).body) as { sessions: Rec[] };
        assert.equal(all.sessions.length, 2);
        const e1 = all.sessions.find((r) => r.dev_id === 'E1')!;
        // What the wires carried: 10 minutes at 16 A × 3 phases × 230 V.
        const e1Wh = (16 * 3 * 230 * 10) / 60;
        assert.ok(Math.abs((e1.energy_wh as number) - e1Wh) < 1e-6, String(e1.energy_wh));
        assert.equal(e1.user_id, USER);
        assert.equal(e1.card, CARD);
        assert.equal(e1.reason, 'unplugged');
        assert.equal(e1.peak_ma, 16_000);
        assert.equal(e1.mean_ma, 16_000);
        assert.equal(e1.charging_s, 600);
        const e2 = all.sessions.find((r) => r.dev_id === 'E2')!;
        assert.ok(Math.abs((e2.energy_wh as number) - (10 * 3 * 230 * 5) / 60) < 1e-6);
        assert.equal(e2.user_id, undefined);

        // The budget has used exactly what the record says.
        const session = t.s.authorisation.sessionBudgetAt('E1');
        assert.equal(session, null, 'the card ended with the unplug');
        const left = t.s.limits.budgets.remaining(
            { key: `user:${USER}`, budget: { unit: 'kwh', amount: 20, reset: 'once' } },
            t.clock.now(),
        );
        assert.ok(Math.abs(left - (20 - (e1.energy_wh as number) / 1000)) < 1e-9, String(left));

        const only = async (q: string) =>
            (
                JSON.parse((await t.call(`cmd=get_sessions&${q}`)).body) as { sessions: Rec[] }
            ).sessions.map((r) => r.dev_id);
        assert.deepEqual(await only(`user=${CARD}`), ['E1']);
        assert.deepEqual(await only(`user=${USER}`), ['E1']);
        assert.deepEqual(await only('dev_id=e2'), ['E2']);
        const after = Math.floor((T0 + 30 * 60_000) / 1000);
        assert.deepEqual(await only(`from=${after}`), []);
        assert.deepEqual(await only(`to=${new Date(T0).toISOString()}`), []);
        assert.equal((await only('max=1')).length, 1);

        const csv = await t.call('cmd=get_sessions&format=csv');
        assert.equal(csv.status, 200);
        assert.match(csv.headers['Content-Type']!, /^text\/csv/);
        const lines = csv.body.trimEnd().split('\r\n');
        assert.equal(lines.length, 3);
        assert.ok(lines[0]!.startsWith('id,dev_id,name,user_id,user,card,start,end'));
        const row = lines.find((l) => l.includes(',E1,'))!;
        // Quoted because of its comma and quotes; the leading = cannot become a formula.
        assert.ok(row.includes(`"Garage, left"`), row);
        assert.ok(row.includes(`"'=Anna ""A"""`), row);
        assert.ok(row.includes(`,${(e1Wh / 1000).toFixed(3)},`), row);
        await t.s.stop();
    });

    it('needs the admin password and names a bad parameter', async () => {
        const t = site();
        assert.equal((await t.call('cmd=get_sessions', false)).status, 401);
        const bad = await t.call('cmd=get_sessions&from=yesterday');
        assert.equal(bad.status, 400);
        assert.match(bad.body, /from/);
        assert.equal((await t.call('cmd=get_sessions&format=xml')).status, 400);
        await t.s.stop();
    });
});
