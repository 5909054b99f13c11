// OCPP wallboxes run charging sessions (transactions) of their own: a card entered with
// enter_rfid starts one (RemoteStartTransaction / RequestStartTransaction), override C ends it and
// c starts it again, and a used-up budget ends it — against the simulated charge point over a
// real WebSocket, in 1.6J and 2.0.1.
import assert from 'node:assert/strict';
import { CnfContext } from '../../../lib/cnf/context';
import { OcppCentralSystem } from '../../../lib/ocpp/central-system';
import { OcppChargePointSim, type OcppProtocol } from '../../../lib/sim/ocpp-sim';
import { Site } from '../../../lib/site/site';
import { ADMIN_PASSWORD, adminCall, TEST_SCRYPT } from '../../support/cnf';

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as OcppProtocol[]) {
    describe(`OCPP sessions from the manager (${protocol})`, function () {
        this.timeout(20_000);
        let cs: OcppCentralSystem;
        let site: Site;
        let ctx: CnfContext;
        let sim: OcppChargePointSim;

        beforeEach(async () => {
            cs = new OcppCentralSystem({ callTimeoutMs: 2000, meterValueSampleInterval: 1 });
            const { port } = await cs.listen({ host: '127.0.0.1', port: 0 });
            site = new Site({
                params: {
                    max_total_current: 32_000,
                    reserve_current: 0,
                    cycle_ms: 200,
                    // The card check holds the car at 0 until the card: no hold or pause after it.
                    increase_hold_time: 0,
                    min_pause_time: 0,
                },
                devices: [
                    {
                        dev_type: 'evse_ocpp',
                        dev_id: 'E1',
                        address: 'CP-7',
                        id: 1,
                        max_charging_cur: 16_000,
                        used_phases: 7,
                    },
                ],
                ocpp: cs,
            });
            ctx = new CnfContext(site, { adminPassword: ADMIN_PASSWORD, scrypt: TEST_SCRYPT });
            await ctx.auth.password.ready();
            sim = new OcppChargePointSim({
                url: `ws://127.0.0.1:${port}/ocpp`,
                identity: 'CP-7',
                protocol,
                plugged: true,
                meterValueInterval: 1,
                tickMs: 50,
            });
            await sim.start();
            site.start();
            await until(() => sim.state.booted, 5000, 'the boot');
        });
        afterEach(async () => {
            await sim.close();
            ctx.close();
            await site.stop();
            await cs.close();
        });

        const call = (query: string, body?: unknown) => adminCall(ctx, query, body);

        it('enter_rfid starts the session, C ends it, c starts it again with the card', async () => {
            await call('cmd=set_user', {
                id: '1001',
                name: 'Anna',
                dev_ids: ['E1'],
                rfids: [{ id: 'CARD1' }],
            });
            assert.equal(sim.state.transactionId, undefined);
            await call('cmd=enter_rfid&rfid=CARD1&dev_id=E1');
            await until(() => sim.state.transactionId !== undefined, 5000, 'the session');
            assert.equal(sim.state.idTag, 'CARD1');
            await until(() => sim.state.currents[0] > 0, 5000, 'the car charging');

            await call('cmd=override_device&dev_id=E1&flags=C');
            await until(() => sim.state.transactionId === undefined, 5000, 'the session ended');
            await call('cmd=override_device&dev_id=E1&flags=c');
            await until(() => sim.state.transactionId !== undefined, 5000, 'a new session');
            assert.equal(sim.state.idTag, 'CARD1');
        });

        it('a used-up budget ends the session', async () => {
            await call('cmd=set_user', {
                id: '1002',
                name: 'Ben',
                dev_ids: ['E1'],
                rfids: [{ id: 'CARD2' }],
                // 2 Wh: used up within a few seconds at 16 A.
                budget: { unit: 'kwh', amount: 0.002, reset: 'once' },
            });
            await call('cmd=enter_rfid&rfid=CARD2&dev_id=E1');
            await until(() => sim.state.transactionId !== undefined, 5000, 'the session');
            await until(() => sim.state.transactionId === undefined, 15_000, 'the session ended');
            assert.ok(sim.state.energyWh >= 2, `${sim.state.energyWh} Wh charged`);
        });
    });
}
