// The `npm start` demo (demo/flows.json) in the real Node-RED runtime, on free ports: the manager
// drives the three Power Brain simulators over Modbus TCP, reacts to household steps within a
// cycle or two without the grid ever passing the fuse, and the visitors' wallbox waits for
// Anna's card. The demo's own household profile is switched off here so that the test can step
// the load itself; the profile's story is tested in simulated time (test/lib/sim/demo-story).
import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import type { Phases3 } from '../../lib/core/types';
import type { PowerBrainSimState } from '../../lib/sim/powerbrain-sim';
import type { ManagerNode } from '../../nodes/shared/types';
import { devInfo } from '../../lib/cnf/views';
import { cnfContextOf } from '../../nodes/shared/cnf';
import { OcppChargePointSim } from '../../lib/sim/ocpp-sim';
import { demoFlow } from '../support/demo';
import {
    allNodes,
    errors,
    nextMessage,
    sleep,
    type Flow,
    type HelperNode,
} from '../support/node-red';

helper.init(require.resolve('node-red'));
const injectNode = require(require.resolve('@node-red/nodes/core/common/20-inject.js')) as never;

const SIMS = { E1: 'evcm-demo-sim-e1', E2: 'evcm-demo-sim-e2', E3: 'evcm-demo-sim-e3' } as const;
type EvseId = keyof typeof SIMS;

/** Polls `check` every 100 ms until it holds; fails naming `what` after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean> | boolean) {
    const deadline = Date.now() + ms;
    while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
        await sleep(100);
    }
}

describe('the npm start demo in Node-RED', function () {
    this.timeout(30_000);
    afterEach(() => helper.unload());

    it('drives three Power Brain simulators over Modbus, pauses within two cycles, keeps the fuse, waits for the card', async () => {
        const { flow } = await demoFlow();
        const managerDef = flow.find((n) => n.type === 'evcm-manager')!;
        const devices = JSON.parse(managerDef.devices as string) as Record<string, unknown>[];
        // Every simulated meter (grid and PV) describes the same household: all of them flat.
        for (const meter of devices.filter((d) => d.dev_type === 'meter_sim')) {
            meter.sim_step_current = 0; // a flat 5 A household …
            meter.sim_pv_peak_w = 0; // … and no PV, whatever the time of day
        }
        managerDef.devices = JSON.stringify(devices);
        const runnable = flow
            .filter((n) => n.type !== 'comment')
            .map((n) => (n.type === 'debug' ? { id: n.id, type: 'helper', z: n.z } : n));
        await helper.load([...(allNodes() as never[]), injectNode], runnable as unknown as Flow);

        const site = (helper.getNode(managerDef.id) as unknown as ManagerNode).site!;
        assert.ok(site, 'the demo manager runs');
        const fuse = site.maxTotalCurrentNow;
        const budget = fuse - site.params.reserve_current;
        const simOut = helper.getNode('evcm-demo-sim-debug') as unknown as HelperNode;
        /** A simulator's state: any input makes the node answer with it. */
        const simState = async (id: EvseId): Promise<PowerBrainSimState> => {
            const answer = nextMessage<{ topic: string; payload: PowerBrainSimState }>(
                simOut,
                2000,
                (m) => m.topic === id,
            );
            (helper.getNode(SIMS[id]) as unknown as HelperNode).receive({ topic: id, payload: {} });
            return (await answer).payload;
        };
        const setpoint = (id: EvseId) => site.manager.lastCycle?.result.setpoints.get(id);
        const draws = async (id: EvseId) => Math.max(...(await simState(id)).currents);

        // What the grid carries, sampled every 50 ms all along; E3 must not draw before the card.
        let worst = 0;
        let cardGiven = false;
        let e3DrewEarly = false;
        const sampler = setInterval(() => {
            const grid: Phases3 = site.world.gridNow();
            worst = Math.max(worst, ...grid);
        }, 50);
        try {
            // 1. Every simulator has been written to over Modbus: the limit and enable it holds
            //    are the manager's setpoint (the simulators start at 16 A, disabled).
            await until('all three simulators hold their setpoints', 10_000, async () => {
                for (const id of ['E1', 'E2', 'E3'] as const) {
                    const sp = setpoint(id);
                    const s = await simState(id);
                    if (!sp || s.requests === 0) return false;
                    const held =
                        sp.current >= 6000
                            ? s.chargingEnabled && Math.abs(s.currentLimit - sp.current) < 100
                            : !s.chargingEnabled && s.currentLimit === 6000;
                    if (!held) return false;
                }
                return true;
            });
            await until('Garage and Carport charge', 5000, async () => {
                return (await draws('E1')) > 0 && (await draws('E2')) > 0;
            });
            const e3 = await simState('E3');
            assert.equal(e3.chargingEnabled, false, 'E3 waits for a card');
            assert.deepEqual(e3.currents, [0, 0, 0]);
            assert.ok(e3.plugged);
            const e3Watch = setInterval(() => {
                void simState('E3').then(
                    (s) => {
                        if (!cardGiven && Math.max(...s.currents) > 0) e3DrewEarly = true;
                    },
                    () => undefined,
                );
            }, 300);
            try {
                // 2. The household steps up by the reserve, twice: within two cycles the cars
                //    draw no more than the budget leaves, and one of them pauses.
                await sleep(1500);
                for (const step of [4000, 8000]) {
                    site.world.extraLoad = [step, step, step];
                    await sleep(2200);
                    const household = site.world.householdNow();
                    const e1 = (await simState('E1')).currents;
                    const e2 = (await simState('E2')).currents;
                    for (let p = 0; p < 3; p++) {
                        const load = household[p]! + e1[p]! + e2[p]!;
                        assert.ok(load <= budget + 100, `+${step}: L${p + 1} ${load} mA`);
                    }
                }
                const states = (['E1', 'E2'] as const).map((id) => setpoint(id)!.state);
                assert.ok(states.includes('paused'), `one car paused: ${states.join(', ')}`);
                const pausedId = states[0] === 'paused' ? 'E1' : 'E2';
                assert.equal(await draws(pausedId), 0, `${pausedId} stopped drawing`);
                assert.equal(e3DrewEarly, false, 'E3 never drew before the card');

                // 3. The load falls back; Anna's card at the visitors' wallbox lets E3 charge.
                site.world.extraLoad = [0, 0, 0];
                const rfid = helper.getNode('evcm-demo-rfid') as unknown as HelperNode;
                cardGiven = true;
                rfid.receive({ payload: '4711' });
                await until(
                    'E3 charges after the card',
                    15_000,
                    async () => (await draws('E3')) > 0,
                );
                const e3Now = (await simState('E3')).currents;
                assert.ok(e3Now[0] > 0 && e3Now[1] === 0 && e3Now[2] === 0, 'a one-phase car');

                // 4. What clients display: the phases each car was seen on (a car on n phases
                //    uses the wallbox's L1..Ln), and each simulator's own serial number.
                await sleep(1200);
                const manager = helper.getNode(managerDef.id) as unknown as ManagerNode;
                const info = devInfo(cnfContextOf(manager, site)) as {
                    devices: Record<string, unknown>[];
                };
                const serials = new Set<string>();
                for (const id of ['E1', 'E2', 'E3'] as const) {
                    const simDef = flow.find((n) => n.id === SIMS[id])!;
                    const d = info.devices.find((x) => x.dev_id === id)!;
                    assert.equal(d.used_phases, (1 << Number(simDef.car_phases)) - 1, id);
                    assert.equal(d.desc, 'cFos Power Brain', id);
                    serials.add(String(d.model).split(',').pop() ?? '');
                }
                assert.equal(serials.size, 3, [...serials].join(' '));
            } finally {
                clearInterval(e3Watch);
            }
        } finally {
            clearInterval(sampler);
        }
        assert.ok(worst > 0 && worst <= fuse, `the grid peaked at ${worst} mA (fuse ${fuse} mA)`);
        for (const n of runnable.filter((r) => r.type !== 'tab')) {
            const node = helper.getNode(n.id) as unknown as HelperNode;
            assert.deepEqual(errors(node), [], `${n.id} (${n.type})`);
        }
    });

    it('an edited manager, deployed alone, gets its simulators measured again', async () => {
        const { flow } = await demoFlow();
        const runnable = flow
            .filter((n) => n.type !== 'comment')
            .map((n) => (n.type === 'debug' ? { id: n.id, type: 'helper', z: n.z } : n));
        await helper.load([...(allNodes() as never[]), injectNode], runnable as unknown as Flow);
        const managerId = flow.find((n) => n.type === 'evcm-manager')!.id;
        const siteOf = () => (helper.getNode(managerId) as unknown as ManagerNode).site!;
        const first = siteOf();
        await until('the simulators attach', 5000, () => first.world.attachedLoads === 3);
        // "Modified nodes" deploy of the manager only: Node-RED restarts the nodes that use it.
        const edited = runnable.map((n) =>
            n.id === managerId ? { ...n, reserve_current: '5000' } : n,
        );
        await helper.setFlows(edited as unknown as Flow, 'nodes');
        const second = siteOf();
        assert.notEqual(second, first, 'a new site');
        assert.equal(second.params.reserve_current, 5000);
        await until('the simulators attach to the new site', 5000, () => {
            return second.world.attachedLoads === 3;
        });
        assert.equal(first.world.attachedLoads, 0, 'none left on the old site');
    });
    it("drives the OCPP wallbox through a simulated charge point on Node-RED's own port", async function () {
        this.timeout(60_000);
        const { flow } = await demoFlow();
        // A flat household and a fuse with room for a fourth car at its minimum (on the demo's
        // 25 A the street wallbox takes its turn among the paused ones).
        const managerDef = flow.find((n) => n.type === 'evcm-manager')!;
        const devices = JSON.parse(managerDef.devices as string) as Record<string, unknown>[];
        for (const meter of devices.filter((d) => d.dev_type === 'meter_sim')) {
            meter.sim_step_current = 0;
            meter.sim_pv_peak_w = 0;
        }
        managerDef.devices = JSON.stringify(devices);
        managerDef.max_total_current = '32000';
        const runnable = flow
            .filter((n) => n.type !== 'comment')
            .map((n) => (n.type === 'debug' ? { id: n.id, type: 'helper', z: n.z } : n));
        await helper.startServer();
        // As npm start runs it: an OCPP 1.6J charge point with a one-phase car, its card once booted.
        const cp = new OcppChargePointSim({
            url: `${helper.url().replace(/^http/, 'ws')}/ocpp`,
            identity: 'CP-DEMO',
            vendor: 'evcm',
            model: 'OCPP demo wallbox',
            plugged: true,
            car: { batteryWh: 50_000, soc: 0.4, maxCurrent: 16_000, phases: 1, followMs: 0 },
            reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
        });
        try {
            await helper.load(
                [...(allNodes() as never[]), injectNode],
                runnable as unknown as Flow,
            );
            const manager = helper.getNode('evcm-demo-manager') as unknown as ManagerNode;
            const site = manager.site!;
            const messages: { topic: string; payload: { action: string } }[] = [];
            (helper.getNode('evcm-demo-ocpp-debug') as unknown as HelperNode).on(
                'input',
                (m: { topic: string; payload: { action: string } }) => messages.push(m),
            );
            await cp.start();
            await until('CP-DEMO boots', 10_000, () => cp.state.booted);
            assert.ok(await cp.presentCard('DEMO'), 'E4 has no users: any card starts it');
            const setpoint = () => site.manager.lastCycle?.result.setpoints.get('E4');
            // Its meter values and model as clients see them.
            const e4 = () =>
                (
                    devInfo(cnfContextOf(manager, site)) as { devices: Record<string, unknown>[] }
                ).devices.find((x) => x.dev_id === 'E4')!;
            await until('get_dev_info shows what E4 draws', 15_000, () => {
                const d = e4();
                const drawn = cp.state.currents[0];
                return (
                    d.state === 3 &&
                    drawn > 0 &&
                    Math.abs(Number(d.current_l1) - drawn) <= 100 &&
                    String(d.model).startsWith('evcm OCPP demo wallbox')
                );
            });
            // Its limit follows the allocation: the household takes more, E4 gets less.
            const before = cp.state.effectiveLimit;
            // Profiles carry 0.1 A.
            assert.ok(Math.abs(before - setpoint()!.current) <= 50, `${before} mA`);
            // 28 A budget − 5 A household − 15 A: about 8 A are left on each phase.
            site.world.extraLoad = [15_000, 15_000, 15_000];
            await until('E4 is limited further', 5000, () => {
                const sp = setpoint();
                return (
                    !!sp &&
                    sp.current < before - 1000 &&
                    Math.abs(cp.state.effectiveLimit - sp.current) <= 50
                );
            });
            assert.ok(
                messages.some(
                    (m) => m.topic === 'CP-DEMO' && m.payload.action === 'BootNotification',
                ),
                'the OCPP messages reach the flow',
            );
        } finally {
            await cp.close();
            await helper.unload();
            await helper.stopServer();
        }
    });
});
