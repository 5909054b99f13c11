// The fail-safe that lives in the charge point: a real Node-RED in a child process controls
// simulated OCPP charge points (1.6J and 2.0.1) that run here, in the test process, over real
// WebSockets on Node-RED's own port. Node-RED is killed with SIGKILL (no close handler, nothing
// sent on the way out); each charge point must fall to its fail_safe_cur by itself once its
// control profile's validity (fail_safe_duration) has run out, and not before.
import assert from 'node:assert/strict';
import { OcppChargePointSim, type OcppProtocol } from '../../lib/sim/ocpp-sim';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const CAR = { batteryWh: 60_000, soc: 0.3, maxCurrent: 16_000, phases: 3 as const, followMs: 0 };
const MAX = 16_000;

const CHARGE_POINTS: {
    identity: string;
    protocol: OcppProtocol;
    failSafeCur: number;
    s: number;
}[] = [
    { identity: 'CP-K1', protocol: 'ocpp1.6', failSafeCur: 8000, s: 5 },
    { identity: 'CP-K2', protocol: 'ocpp2.0.1', failSafeCur: 0, s: 6 },
];

describe('a killed Node-RED leaves every OCPP charge point at its fail-safe (real runtime)', function () {
    this.timeout(90_000);
    const sims: OcppChargePointSim[] = [];
    let red: NodeRedProcess | undefined;

    before(async () => {
        red = await startNodeRed([
            { id: 'f00dfa115afe00c1', type: 'evcm-ocpp', path: '/ocpp/' },
            {
                id: 'f00dfa115afe0001',
                type: 'evcm-manager',
                name: 'Site',
                ocpp: 'f00dfa115afe00c1',
                max_total_current: '63000',
                reserve_current: '0',
                min_pause_time: '0',
                lb_enabled: true,
                disable_policy: '0',
                cycle_ms: '500',
                devices: JSON.stringify(
                    CHARGE_POINTS.map((c, i) => ({
                        dev_type: 'evse_ocpp',
                        dev_id: `E${i + 1}`,
                        address: c.identity,
                        id: 1,
                        max_charging_cur: MAX,
                        fail_safe_cur: c.failSafeCur,
                        fail_safe_duration: c.s,
                    })),
                ),
            },
        ]);
        const base = red.url.replace(/^http/, 'ws');
        for (const c of CHARGE_POINTS) {
            const sim = new OcppChargePointSim({
                url: `${base}ocpp`,
                identity: c.identity,
                protocol: c.protocol,
                maxCurrent: 32_000,
                car: CAR,
                plugged: true,
                tickMs: 50,
                reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
            });
            sims.push(sim);
            await sim.start();
        }
    });

    after(async () => {
        for (const sim of sims) await sim.close();
        await red?.stop();
    });

    it('SIGKILL: each charge point falls to fail_safe_cur when its control profile expires', async () => {
        let deadline = Date.now() + 20_000;
        while (!sims.every((s) => s.state.booted)) {
            assert.ok(Date.now() < deadline, `no boot within 20 s:\n${red!.log()}`);
            await sleep(100);
        }
        for (const s of sims) assert.ok(await s.presentCard('4711'), 'a card starts charging');
        // Under control: the control profile (id 2) holds the maximum above the fail-safe (id 1).
        deadline = Date.now() + 20_000;
        while (!sims.every((s) => s.state.effectiveLimit === MAX && s.state.limitProfileId === 2)) {
            assert.ok(Date.now() < deadline, `no control within 20 s:\n${red!.log()}`);
            await sleep(100);
        }
        sims.forEach((s, i) => {
            const failSafe = s.state.profiles.find((p) => p.id === 1);
            assert.ok(failSafe, `${CHARGE_POINTS[i]!.identity}: a fail-safe profile`);
            assert.equal(failSafe.validTo, undefined, 'permanent');
            assert.equal(failSafe.stackLevel, 1);
            assert.equal(failSafe.periods[0]!.limit * 1000, CHARGE_POINTS[i]!.failSafeCur);
        });

        await red!.kill();
        const killedAt = Date.now();
        // The control profiles as the charge points last received them.
        const validTo = sims.map((s) => s.state.profiles.find((p) => p.id === 2)!.validTo!);
        const fellAt: (number | undefined)[] = sims.map(() => undefined);
        const longest = Math.max(...CHARGE_POINTS.map((c) => c.s)) * 1000;
        while (fellAt.some((t) => t === undefined) && Date.now() < killedAt + longest + 3000) {
            sims.forEach((s, i) => {
                if (fellAt[i] === undefined && s.state.limitProfileId === 1) fellAt[i] = Date.now();
            });
            await sleep(20);
        }
        for (let i = 0; i < sims.length; i++) {
            const c = CHARGE_POINTS[i]!;
            const s = sims[i]!.state;
            assert.ok(fellAt[i] !== undefined, `${c.identity} never fell back`);
            const after = fellAt[i]! - killedAt;
            console.log(
                `      ${c.identity} (${c.protocol}): at ${c.failSafeCur} mA ${after} ms after the kill ` +
                    `(validity ${c.s} s; ${fellAt[i]! - validTo[i]!} ms after its control profile's validTo)`,
            );
            // Not before the validity ends, and within it plus the watch's step.
            assert.ok(fellAt[i]! >= validTo[i]!, `${c.identity} fell back before validTo`);
            assert.ok(
                fellAt[i]! - validTo[i]! <= 500,
                `${c.identity}: ${fellAt[i]! - validTo[i]!} ms late`,
            );
            assert.ok(
                after <= c.s * 1000 + 500,
                `${c.identity} fell back ${after} ms after the kill`,
            );
            assert.equal(s.connected, false, 'nobody talks to it');
            assert.equal(s.effectiveLimit, c.failSafeCur, c.identity);
            // The car follows: at the fail-safe current, or nothing below 6 A.
            await sleep(300);
            const cur = Math.max(...sims[i]!.state.currents);
            assert.equal(cur, c.failSafeCur, `${c.identity}: the car draws ${cur} mA`);
        }
    });
});
