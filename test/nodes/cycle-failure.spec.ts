// A control cycle that throws, in a real Node-RED runtime driving a simulated Power Brain over
// Modbus TCP: the failure is an event, one log line per episode, red rings on the nodes that use
// the manager, and after the grid meter's stale_after every wallbox at its fail-safe current,
// as the wallbox itself shows it.
import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';
import type { CycleFailure } from '../../lib/core/engine';
import { PowerBrainSim } from '../../lib/sim/powerbrain-sim';
import type { ManagerNode } from '../../nodes/shared/types';
import {
    allNodes,
    logged,
    manager,
    sleep,
    statuses,
    type Flow,
    type HelperNode,
} from '../support/node-red';

helper.init(require.resolve('node-red'));

const node = (id: string) => helper.getNode(id) as unknown as HelperNode;

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(20);
    }
}

describe('a failing control cycle (real Node-RED, Power Brain over Modbus TCP)', function () {
    this.timeout(40_000);
    let sim: PowerBrainSim;
    let feeder: NodeJS.Timeout | undefined;

    beforeEach(async () => {
        sim = new PowerBrainSim({
            host: '127.0.0.1',
            port: 0,
            meterPorts: false,
            plugged: true,
            car: { batteryWh: 200_000, soc: 0.2, maxCurrent: 16_000, phases: 3, followMs: 100 },
        });
        await sim.start();
    });
    afterEach(async () => {
        clearInterval(feeder);
        await helper.unload();
        await sim.close();
    });

    it('is reported, logged once, shown red, and ends at the fail-safe current', async () => {
        const flow = [
            manager(
                'm1',
                [
                    {
                        dev_type: 'evse_powerbrain',
                        dev_id: 'E1',
                        address: `127.0.0.1:${sim.ports.evse}`,
                        id: 1,
                        max_charging_cur: 16_000,
                        fail_safe_cur: 7000,
                    },
                    { dev_type: 'meter_ajax', dev_id: 'M1', role: 3, stale_after: 2 },
                ],
                { max_increase_per_cycle: '100000', increase_hold_time: '0' },
            ),
            { id: 'mi', type: 'evcm-meter-in', manager: 'm1', dev_id: 'M1' },
            { id: 'st', type: 'evcm-status', manager: 'm1', wires: [[]] },
        ];
        await helper.load(allNodes(), flow as unknown as Flow);
        const m1 = helper.getNode('m1') as unknown as ManagerNode & HelperNode;
        const site = m1.site!;
        // The grid meter keeps reporting 2 A of household besides the car.
        feeder = setInterval(() => {
            const car = sim.state.currents;
            node('mi').receive({
                payload: { current: [2000 + car[0], 2000 + car[1], 2000 + car[2]] },
            });
        }, 100);
        await until(() => sim.state.currentLimit === 16_000, 15_000, 'the car at 16 A');

        const failures: CycleFailure[] = [];
        site.manager.events.on('cycleFailed', (f) => failures.push(f));
        const stage = site.limits;
        const working = stage.limits.bind(stage);
        stage.limits = () => {
            throw new Error('limits stage broke');
        };
        const broken = Date.now();
        await until(() => sim.state.currentLimit === 7000, 10_000, 'the fail-safe current');
        const tookMs = Date.now() - broken;
        // Not before the failure has lasted stale_after (2 s), and soon after (cycle_ms 200).
        assert.ok(tookMs >= 1800 && tookMs <= 3500, `fail-safe after ${tookMs} ms`);
        assert.ok(failures.length >= 8, `${failures.length} failed cycles reported`);
        assert.equal(failures[0]!.failures, 1);
        assert.equal(failures[0]!.error.message, 'limits stage broke');
        assert.equal(failures.at(-1)!.failSafe, true);

        // One line for the episode, one for the fail-safe: not one per failed cycle.
        const errs = logged(m1, 'error');
        assert.deepEqual(
            errs.filter((e) => e.startsWith('evcm-manager.errors.cycle')),
            ['evcm-manager.errors.cycle-failed', 'evcm-manager.errors.cycle-fail-safe'],
        );
        for (const id of ['mi', 'st']) {
            const last = statuses(node(id)).at(-1)!;
            assert.equal(last.fill, 'red', `${id}: ${JSON.stringify(last)}`);
            assert.equal(
                last.text,
                `${id === 'mi' ? 'evcm-meter-in' : 'evcm-status'}.status.cycle-failed`,
            );
        }

        // Working again: the car gets its current back, the rings their colour, the log a line.
        stage.limits = working;
        await until(() => sim.state.currentLimit === 16_000, 10_000, 'the car back at 16 A');
        assert.ok(logged(m1, 'log').includes('evcm-manager.status.cycle-recovered'));
        assert.notEqual(statuses(node('mi')).at(-1)!.fill, 'red');
        assert.equal(site.manager.failing, null);
    });
});
