// Issue 15's "done when", end to end in a real Node-RED (child process): a charge point that is
// added only through /cnf (set_params with an evse_ocpp device: address = identity, id =
// connector) and then connects to Node-RED's own port is under control within one cycle; its
// profile follows the allocation, its meter values and model show in get_dev_info, and its card
// goes through the users set with set_user.
import assert from 'node:assert/strict';
import { OcppChargePointSim } from '../../lib/sim/ocpp-sim';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const CYCLE_MS = 1000;
const CAR = { batteryWh: 60_000, soc: 0.3, maxCurrent: 16_000, phases: 3 as const, followMs: 0 };

describe('an OCPP charge point configured through /cnf (real runtime)', function () {
    this.timeout(60_000);
    let red: NodeRedProcess | undefined;
    let cp: OcppChargePointSim | undefined;

    before(async () => {
        red = await startNodeRed([
            { id: 'tab1', type: 'tab', label: 'Site' },
            { id: 'ocpp1', type: 'evcm-ocpp', path: '/ocpp/' },
            {
                id: 'mgr1',
                type: 'evcm-manager',
                name: 'Site',
                ocpp: 'ocpp1',
                max_total_current: '32000',
                reserve_current: '0',
                min_pause_time: '0',
                lb_enabled: true,
                disable_policy: '0',
                cycle_ms: String(CYCLE_MS),
                devices: '[]',
            },
            { id: 'cnf1', type: 'evcm-cnf', z: 'tab1', manager: 'mgr1', path: '/cnf', wires: [] },
        ]);
    });
    after(async () => {
        await cp?.close();
        await red?.stop();
    });

    const cnf = async (cmd: string, body?: unknown): Promise<unknown> => {
        const r = await fetch(`${red!.url}cnf?cmd=${cmd}`, {
            method: body === undefined ? 'GET' : 'POST',
            ...(body === undefined
                ? {}
                : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
        });
        const text = await r.text();
        assert.equal(r.status, 200, `${cmd}: ${text}`);
        return text ? JSON.parse(text) : null;
    };
    const device = async (id: string) =>
        ((await cnf('get_dev_info')) as { devices: Record<string, unknown>[] }).devices.find(
            (d) => d.dev_id === id,
        )!;

    it('set_params, connect: controlled within one cycle; profile, meter values and card as the manager has them', async () => {
        await cnf('set_params', {
            devices: [{ dev_type: 'evse_ocpp', dev_id: 'E9', address: 'CP-42', id: 1 }],
        });
        await cnf('set_user', {
            id: '4242',
            name: 'Olga',
            dev_ids: ['E9'],
            rfids: [{ id: 'C42' }],
        });
        assert.equal((await device('E9')).state, 6, 'offline until it connects');

        cp = new OcppChargePointSim({
            url: `${red!.url.replace(/^http/, 'ws')}ocpp`,
            identity: 'CP-42',
            vendor: 'Example',
            model: 'Wallbox 42',
            car: CAR,
            plugged: true,
            meterValueInterval: 1,
            tickMs: 50,
        });
        await cp.start();
        let deadline = Date.now() + 10_000;
        while (!cp.state.booted) {
            assert.ok(Date.now() < deadline, `no boot:\n${red!.log()}`);
            await sleep(10);
        }
        const bootedAt = Date.now();
        while (cp.state.limitProfileId !== 2) {
            assert.ok(Date.now() < deadline, `no control profile:\n${red!.log()}`);
            await sleep(10);
        }
        const controlMs = Date.now() - bootedAt;
        console.log(`      boot → control profile: ${controlMs} ms (cycle ${CYCLE_MS} ms)`);
        assert.ok(controlMs <= CYCLE_MS + 250, `controlled ${controlMs} ms after the boot`);
        assert.ok(
            cp.state.profiles.some((p) => p.id === 1 && p.stackLevel === 1),
            'fail-safe',
        );

        // The card goes through the users: a stranger's is refused, Olga's starts charging.
        assert.equal(await cp.presentCard('NOBODY'), false, 'an unknown card is refused');
        assert.equal(await cp.presentCard('C42'), true, "Olga's card is accepted");
        deadline = Date.now() + 10_000;
        while (Math.max(...cp.state.currents) === 0) {
            assert.ok(Date.now() < deadline, 'the car does not charge');
            await sleep(50);
        }

        // The profile follows the allocation: a lower fuse through /cnf, a lower limit.
        for (const fuse of [10_000, 13_000]) {
            await cnf('set_params', { max_total_current: fuse });
            deadline = Date.now() + 3 * CYCLE_MS + 1000;
            while (cp.state.effectiveLimit !== fuse) {
                assert.ok(
                    Date.now() < deadline,
                    `limit ${cp.state.effectiveLimit} mA, fuse ${fuse} mA`,
                );
                await sleep(50);
            }
        }

        // Meter values and the model as get_dev_info shows them (the central system sets the
        // charge point's sample interval to 10 s).
        deadline = Date.now() + 15_000;
        for (;;) {
            const d = await device('E9');
            const drawn = cp.state.currents;
            const shown = [d.current_l1, d.current_l2, d.current_l3] as number[];
            if (
                d.state === 3 &&
                shown.every((c, p) => Math.abs(c - drawn[p]!) <= 100) &&
                drawn[0] === 13_000
            ) {
                assert.match(String(d.model), /Example Wallbox 42/);
                assert.ok(Number(d.cur_charging_power) > 0, 'power');
                break;
            }
            assert.ok(Date.now() < deadline, `get_dev_info ${JSON.stringify(d)}`);
            await sleep(200);
        }
        assert.doesNotMatch(red!.log(), /\[error\]/);
    });
});
