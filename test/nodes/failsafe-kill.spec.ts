// What survives a dead Node-RED: a real Node-RED in a child process drives simulated Power Brains
// that run here, in the test process, over Modbus TCP. Node-RED is killed with SIGKILL (no close
// handler, no disable_policy), and each wallbox must fall to its configured fail-safe current on
// its own within its fail-safe time. What the wallboxes hold is read by an independent Modbus
// client (modbus-serial's own, not the package's bus).
import assert from 'node:assert/strict';
import { PowerBrainSim } from '../../lib/sim/powerbrain-sim';
import { registers, sleep } from '../support/modbus';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

const CAR = { batteryWh: 60_000, soc: 0.3, maxCurrent: 16_000, phases: 3 as const, followMs: 0 };
const MAX = 16_000;

/** The wallboxes: a fail-safe current above 0 (charging goes on, slower) and 0 (it stops). */
const WALLBOXES = [
    { failSafeCur: 8000, failSafeS: 5 },
    { failSafeCur: 0, failSafeS: 6 },
];

/** 8092..8095 as the device shows them: CP state, limit (0.1 A), enable, charging current (0.1 A). */
function expectedControl(failSafeCur: number): number[] {
    return failSafeCur > 0
        ? [2, failSafeCur / 100, 1, failSafeCur / 100] // C: charging at the fail-safe current
        : [1, 0, 0, 0]; // B: plugged in, not charging
}

describe('a killed Node-RED leaves every Power Brain at its fail-safe (real runtime)', function () {
    this.timeout(90_000);
    const sims: PowerBrainSim[] = [];
    let red: NodeRedProcess | undefined;

    before(async () => {
        for (let i = 0; i < WALLBOXES.length; i++) {
            const sim = new PowerBrainSim({
                port: 0,
                meterPorts: false,
                plugged: true,
                car: CAR,
                defaultEnable: false,
            });
            await sim.start();
            sims.push(sim);
        }
        red = await startNodeRed([
            {
                id: 'f00dfa115afe0001',
                type: 'evcm-manager',
                name: 'Site',
                title: 'Site',
                max_total_current: '63000',
                reserve_current: '0',
                min_pause_time: '0',
                lb_enabled: true,
                disable_policy: '0',
                cycle_ms: '500',
                devices: JSON.stringify(
                    WALLBOXES.map((w, i) => ({
                        dev_type: 'evse_powerbrain',
                        dev_id: `E${i + 1}`,
                        address: `127.0.0.1:${sims[i]!.ports.evse}`,
                        id: 1,
                        used_phases: 7,
                        max_charging_cur: MAX,
                        fail_safe_cur: w.failSafeCur,
                        fail_safe_duration: w.failSafeS,
                    })),
                ),
            },
        ]);
    });

    after(async () => {
        await red?.stop();
        for (const sim of sims) await sim.close();
    });

    it('SIGKILL: each wallbox holds its fail-safe current within its fail-safe time', async () => {
        // Under control first: every car charges at the maximum, far from its fail-safe current.
        const deadline = Date.now() + 30_000;
        while (!sims.every((s) => s.state.currentLimit === MAX && s.state.chargingEnabled)) {
            assert.ok(Date.now() < deadline, `no control within 30 s:\n${red!.log()}`);
            await sleep(100);
        }
        for (let i = 0; i < sims.length; i++) {
            const w = WALLBOXES[i]!;
            assert.deepEqual(
                await registers(sims[i]!.ports.evse, 8083, 3),
                [0, w.failSafeS, w.failSafeCur / 100],
                `E${i + 1}: fail-safe programmed from the configuration`,
            );
            assert.deepEqual(await registers(sims[i]!.ports.evse, 8092, 4), [2, 160, 1, 160]);
        }

        await red!.kill();
        const killedAt = Date.now();
        // Watch the simulators in-process (not over Modbus: a request would count as
        // communication) until each has fallen back, and note when.
        const trippedAt: (number | undefined)[] = sims.map(() => undefined);
        const lastRequest = sims.map((s) => s.state.lastRequestAt!);
        const longest = Math.max(...WALLBOXES.map((w) => w.failSafeS)) * 1000;
        while (trippedAt.some((t) => t === undefined) && Date.now() < killedAt + longest + 3000) {
            sims.forEach((s, i) => {
                if (trippedAt[i] === undefined && s.state.failSafeTrips > 0)
                    trippedAt[i] = Date.now();
            });
            await sleep(50);
        }
        for (let i = 0; i < sims.length; i++) {
            const w = WALLBOXES[i]!;
            const name = `E${i + 1}`;
            assert.ok(trippedAt[i] !== undefined, `${name} never fell back`);
            assert.ok(lastRequest[i]! <= killedAt, `${name}: nothing talked to it after the kill`);
            // Not before its time without communication, and within it (plus the watch's step).
            assert.ok(
                trippedAt[i]! - lastRequest[i]! >= w.failSafeS * 1000,
                `${name} fell back after ${trippedAt[i]! - lastRequest[i]!} ms`,
            );
            assert.ok(
                trippedAt[i]! - killedAt <= w.failSafeS * 1000 + 1000,
                `${name} fell back ${trippedAt[i]! - killedAt} ms after the kill`,
            );
            // What the wallbox shows any Modbus client, and what its car draws.
            assert.deepEqual(
                await registers(sims[i]!.ports.evse, 8092, 4),
                expectedControl(w.failSafeCur),
                name,
            );
            assert.deepEqual(
                sims[i]!.state.currents,
                [w.failSafeCur, w.failSafeCur, w.failSafeCur],
                `${name}: the car follows`,
            );
        }
    });
});
