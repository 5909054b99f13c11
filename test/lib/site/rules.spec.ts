import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import { localTime } from '../../../lib/rules/rules';
import { Site } from '../../../lib/site/site';

const PARAMS = {
    max_total_current: 32000,
    reserve_current: 0,
    increase_hold_time: 0,
    max_increase_per_cycle: 100000,
};

describe('site: charging rules drive the wallboxes', () => {
    it('a time window: charging inside it, paused outside', async () => {
        const clock = new ManualClock(Date.UTC(2026, 10, 23, 12));
        const { minute } = localTime(clock.now());
        const site = new Site({
            params: PARAMS,
            clock,
            devices: [
                {
                    dev_type: 'evse_ajax',
                    dev_id: 'E1',
                    used_phases: 7,
                    charging_rules: [{ mode: 0, current: 10000, time: minute, dur: 30 }],
                },
            ],
        });
        const cycle = async (state: 2 | 3) => {
            site.push('E1', { state, currents: [0, 0, 0], powerW: 0 });
            return (await site.manager.runCycle()).result.setpoints.get('E1')!;
        };
        assert.equal((await cycle(2)).current, 10000, 'inside the window: the rule gives 10 A');
        clock.advance(31 * 60_000);
        const after = await cycle(3);
        assert.equal(after.current, 0, 'after the window: rules exist, none matches → 0');
        assert.equal(after.state, 'idle');
        await site.stop();
    });

    it('PV surplus from the grid meter, divided by the charging phases', async () => {
        const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
        const site = new Site({
            params: PARAMS,
            clock,
            devices: [
                {
                    dev_type: 'evse_ajax',
                    dev_id: 'E1',
                    used_phases: 7,
                    charging_rules: [{ mode: 5, solar: 6000 }],
                },
                { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
            ],
        });
        const cycle = async (gridW: number, carW: number, carA: number) => {
            site.push('E1', { state: 3, currents: [carA, carA, carA], powerW: carW });
            site.push('M1', { powerW: gridW, currents: [0, 0, 0] });
            return (await site.manager.runCycle()).result.setpoints.get('E1')!.current;
        };
        // Feeding 5 kW in while the car draws nothing: 5 kW / 230 V / 3 phases = 7.2 A.
        assert.equal(await cycle(-5000, 0, 0), 7246);
        // The car now takes 5 kW and the grid is balanced: the surplus is unchanged.
        assert.equal(await cycle(0, 5000, 7246), 7246);
        // A cloud: importing 2 kW with the car at 5 kW leaves 3 kW: below 6 A → pause.
        assert.equal(await cycle(2000, 5000, 7246), 0);
        await site.stop();
    });

    it('rejects a malformed rule in the device table, naming it', () => {
        assert.throws(
            () =>
                new Site({
                    devices: [
                        { dev_type: 'evse_sim', dev_id: 'E1', charging_rules: [{ mode: 9 }] },
                    ],
                }),
            /devices\[0\]\.charging_rules\[0\]\.mode/,
        );
    });
});
