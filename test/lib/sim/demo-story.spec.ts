// The `npm start` demo's story, in simulated time: demo/flows.json's manager and its three Power
// Brain simulators, wired as the nodes wire them (real Modbus TCP on loopback, one manual clock
// for the site and the simulators). Within the first minute a car is slowed, one is paused and
// later resumed; the fuse is never exceeded; the manager's "other load" is the household the
// simulated grid meter adds up, so it sees the cars with their phase rotation; the visitors'
// wallbox waits for Anna's card.
import assert from 'node:assert/strict';
import { cnfContextFor } from '../../../lib/cnf/context';
import { MemoryUsers, parseUsersText } from '../../../lib/cnf/users';
import { ManualClock } from '../../../lib/core/clock';
import type { Phases3, PhaseRotation } from '../../../lib/core/types';
import { runCnfCommand } from '../../../lib/nodes-support/cnf-call';
import { gridLoadOf, simConfigSchema } from '../../../lib/nodes-support/sim';
import { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import { parseManagerConfig, userTableText } from '../../../lib/site/editor';
import { Site } from '../../../lib/site/site';
import { demoFlow } from '../../support/demo';

interface Second {
    t: number;
    setpoints: Map<string, { current: number; state: string }>;
    /** What the wallbox simulators' cars draw (wallbox phases, mA). */
    draws: Map<string, Phases3>;
    /** The grid right after the household changed, before the manager reacted, and after. */
    gridBefore: Phases3;
    gridAfter: Phases3;
    /** Other load as the manager computed it, and as the simulation knows it. */
    otherLoad: Phases3;
    householdMinusPv: Phases3;
}

async function runDemo(start: number, seconds: number, cardAt: number) {
    const { flow } = await demoFlow();
    const managerDef = flow.find((n) => n.type === 'evcm-manager')!;
    const clock = new ManualClock(start);
    const setup = parseManagerConfig(managerDef);
    const sims = new Map<string, PowerBrainSim>();
    const devIdOf = (port: number) =>
        setup.devices.find((d) => d.address === `127.0.0.1:${port}`)!.dev_id;
    const loads: [PowerBrainSim, PhaseRotation][] = [];
    // The wallboxes are there before the manager connects (its backoff runs on real time).
    for (const def of flow.filter((n) => n.type === 'evcm-powerbrain-sim')) {
        const cfg = simConfigSchema.parse(def);
        assert.equal(cfg.manager, managerDef.id, `${def.id} is measured by the demo's grid meter`);
        const sim = new PowerBrainSim({
            port: cfg.port,
            plugged: cfg.plugged,
            car: cfg.car,
            defaultEnable: cfg.defaultEnable,
            now: () => clock.now(),
        });
        await sim.start();
        loads.push([sim, cfg.phaseRotation]);
        sims.set(devIdOf(cfg.port), sim);
    }
    const site = new Site({ ...setup, clock });
    for (const [sim, rotation] of loads) site.world.attachLoad(gridLoadOf(sim, rotation));
    const ctx = cnfContextFor(site, {
        adminPassword: 'demo',
        users: new MemoryUsers(parseUsersText(userTableText(managerDef))),
        now: () => clock.now(),
    });
    assert.deepEqual([...sims.keys()].sort(), ['E1', 'E2', 'E3']);
    const log: Second[] = [];
    try {
        for (let t = 0; t < seconds; t++) {
            if (t === cardAt) {
                await runCnfCommand(ctx, { cmd: 'enter_rfid', rfid: '4711', dev_id: 'E3' });
            }
            if (t > 0) clock.advance(999); // whole seconds, with the millisecond below
            const gridBefore = site.world.gridNow();
            const report = await site.manager.runCycle();
            // Cars follow a reduction at once: a millisecond later is what the fuse carries.
            clock.advance(1);
            const pv = site.world.pvNow();
            const household = site.world.householdNow();
            log.push({
                t,
                setpoints: new Map(
                    [...report.result.setpoints].map(([id, s]) => [
                        id,
                        { current: s.current, state: s.state },
                    ]),
                ),
                draws: new Map([...sims].map(([id, sim]) => [id, sim.carCurrents])),
                gridBefore,
                gridAfter: site.world.gridNow(),
                otherLoad: report.result.site.nonEvseLoad,
                householdMinusPv: [0, 1, 2].map((p) => household[p]! - pv[p]!) as never,
            });
        }
    } finally {
        await site.stop();
        await Promise.all([...sims.values()].map((s) => s.close()));
    }
    return { log, params: site.params };
}

/**
 * The grid meter sees every car on its building phase: the manager's "other load" (grid −
 * wallboxes) is the household minus the PV, up to the Power Brains' 0.1 A resolution per car.
 */
function assertHonestAccounting(log: Second[]): void {
    for (const s of log.slice(2)) {
        for (let p = 0; p < 3; p++) {
            const error = Math.abs(s.otherLoad[p]! - s.householdMinusPv[p]!);
            assert.ok(
                error <= 200,
                `t=${s.t} L${p + 1}: manager ${s.otherLoad[p]} vs household ${s.householdMinusPv[p]}`,
            );
        }
    }
}

describe('the npm start demo (demo/flows.json) in simulated time', function () {
    this.timeout(20_000);

    // 02:00 and 12:30 UTC: no PV and the PV at its peak; Carport's rule window both ways.
    for (const hour of [2, 12.5]) {
        it(`at ${hour}:00 UTC: slowed, paused and resumed within a minute, fuse respected, honest accounting`, async () => {
            const start = Date.UTC(2026, 5, 1) + hour * 3_600_000;
            const { log, params } = await runDemo(start, 75, 1000);
            const fuse = Number(params.max_total_current);
            const worst = Math.max(...log.flatMap((s) => [...s.gridBefore, ...s.gridAfter]));
            assert.ok(worst <= fuse, `the grid peaked at ${worst} mA on a ${fuse} mA fuse`);

            assertHonestAccounting(log);
            const charging = (s: Second, id: string) => Math.max(...s.draws.get(id)!) > 0;
            const slowed = log.find((s) =>
                ['E1', 'E2'].some((id) => {
                    const c = s.setpoints.get(id)!.current;
                    return c > 0 && c < 16_000 && charging(s, id);
                }),
            );
            assert.ok(slowed && slowed.t <= 15, `a car is slowed at t=${slowed?.t}`);
            const paused = log.find(
                (s) =>
                    s.t > 2 && ['E1', 'E2'].some((id) => s.setpoints.get(id)!.state === 'paused'),
            );
            assert.ok(paused && paused.t <= 45, `a car is paused at t=${paused?.t}`);
            const pausedId = ['E1', 'E2'].find(
                (id) => paused.setpoints.get(id)!.state === 'paused',
            )!;
            const resumed = log.find((s) => s.t > paused.t && charging(s, pausedId));
            assert.ok(resumed, `${pausedId} resumes (paused at t=${paused.t})`);
            // The visitors' wallbox has no card yet: its car never draws.
            for (const s of log) assert.ok(!charging(s, 'E3'), `E3 charges at t=${s.t}`);
        });
    }

    it("the visitors' wallbox charges once Anna's card is entered, on the building's L2", async () => {
        const start = Date.UTC(2026, 5, 1, 2);
        const { log } = await runDemo(start, 90, 8);
        const before = log.filter((s) => s.t < 8);
        assert.ok(before.every((s) => Math.max(...s.draws.get('E3')!) === 0));
        const charged = log.find((s) => s.draws.get('E3')![0] > 0);
        // It waits for its turn: a busy household leaves room for two cars at most.
        assert.ok(charged, 'E3 charges after the card');
        assertHonestAccounting(log);
        // A single-phase car on a wallbox wired with 120°: its L1 is the building's L2.
        const last = log.at(-1)!;
        const e3 = last.draws.get('E3')!;
        assert.equal(e3[1], 0);
        assert.equal(e3[2], 0);
        const othersOnL1 = ['E1', 'E2'].reduce((t, id) => t + last.draws.get(id)![0], 0);
        const othersOnL2 = ['E1', 'E2'].reduce((t, id) => t + last.draws.get(id)![1], 0);
        const evseL1 = last.gridAfter[0] - last.householdMinusPv[0];
        const evseL2 = last.gridAfter[1] - last.householdMinusPv[1];
        assert.equal(evseL1, othersOnL1, 'L1 carries the three-phase cars only');
        assert.equal(evseL2, othersOnL2 + e3[0], 'L2 carries the visitor too');
    });
});
