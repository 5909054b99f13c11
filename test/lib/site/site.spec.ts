import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import { parseDevices, parseParams, Site, toSiteConfig } from '../../../lib/site/site';

const DEVICES = [
    { dev_type: 'evse_sim', dev_id: 'E1', name: 'Garage', max_charging_cur: '20000' },
    { dev_type: 'evse_ajax', dev_id: 'E2', group: 'E5', used_phases: 1, phase_rotation: 120 },
    { dev_type: 'evse_group', dev_id: 'E5', max_charging_cur: 16000 },
    { dev_type: 'meter_sim', dev_id: 'M1', role: 3 },
    { dev_type: 'meter_ajax', dev_id: 'M2', role: 3, group: 'E5' },
];

describe('site (vendor-style configuration)', () => {
    it('maps parameters and the device table onto the core model', () => {
        const params = parseParams({
            max_total_current: '40000',
            min_pause_time: 120,
            lb_enabled: '1',
        });
        const config = toSiteConfig(params, parseDevices(DEVICES));
        assert.equal(config.params.maxTotalCurrent, 40_000);
        assert.equal(config.params.minPauseTimeMs, 120_000);
        assert.deepEqual(
            config.evses.map((e) => [e.id, e.group, e.maxCurrent, e.phaseRotation, e.staleAfterMs]),
            [
                ['E1', '', 20_000, 0, 10_000],
                ['E2', 'E5', 16_000, 120, 60_000],
            ],
        );
        assert.deepEqual(config.groups, [{ id: 'E5', group: '', maxCurrent: 16_000, meter: 'M2' }]);
        // The group's grid meter measures the group, not the site.
        assert.deepEqual(
            config.meters.map((m) => [m.id, m.role]),
            [
                ['M1', 3],
                ['M2', 0],
            ],
        );
    });

    it('names what is wrong in a bad parameter or device', () => {
        assert.throws(() => parseParams({ max_total_cur_prc: 0 }), /params\.max_total_cur_prc/);
        assert.throws(() => parseParams({ bogus: 1 }), /bogus/);
        assert.throws(
            () => parseDevices([{ dev_type: 'evse_sim', dev_id: 'E1', min_charging_cur: 5000 }]),
            /devices\[0\]\.min_charging_cur/,
        );
        assert.throws(
            () => parseDevices([{ dev_type: 'toaster', dev_id: 'E1' }]),
            /unknown dev_type "toaster"/,
        );
        assert.throws(
            () =>
                parseDevices([
                    {
                        dev_type: 'evse_sim',
                        dev_id: 'E1',
                        min_charging_cur: 10000,
                        max_charging_cur: 8000,
                    },
                ]),
            /max_charging_cur must be at least min_charging_cur/,
        );
        assert.throws(() => parseDevices([DEVICES[0], DEVICES[0]]), /duplicate dev_id E1/);
        assert.throws(() => parseDevices([DEVICES[1]]), /group E5 is not an evse_group/);
        assert.throws(
            () => parseDevices([{ dev_type: 'meter_sim', dev_id: 'E3' }]),
            /a meter dev_id starts with M/,
        );
    });

    it('changes parameters and devices all-or-nothing while running', async () => {
        const clock = new ManualClock(Date.UTC(2026, 0, 1, 2));
        const site = new Site({ params: { max_total_current: 32000 }, devices: DEVICES, clock });
        assert.throws(
            () => site.setParams({ max_total_current: 30000, reserve_current: -1 }),
            /reserve_current/,
        );
        assert.equal(site.params.max_total_current, 32000, 'rejected change left nothing behind');
        site.setParams({ max_total_current: 30000 });
        assert.equal(site.manager.site.params.maxTotalCurrent, 30000);

        await assert.rejects(site.setDevice({ dev_id: 'E1', prio: 'high' }), /devices\[0\]\.prio/);
        await site.setDevice({ dev_id: 'E1', prio: 3 });
        assert.equal(site.manager.site.evses.find((e) => e.id === 'E1')!.prio, 3);
        assert.ok(site.manager.driver('E1'), 'the simulated wallbox kept its driver');

        await site.setDevice({ dev_type: 'evse_sim', dev_id: 'E3' });
        assert.equal(site.world.evses.size, 2);
        await assert.rejects(site.deleteDevice('E5'), /E2: group E5 is not an evse_group/);
        await site.deleteDevice('E3');
        assert.equal(site.world.evses.size, 1);
        assert.equal(site.manager.driver('E3'), undefined);

        assert.throws(
            () => site.push('E1', { state: 2 }),
            /E1 is a evse_sim, not an HTTP input device/,
        );
        site.push('M2', { powerW: 0, currents: [1000, 1000, 1000] });
        const report = await site.manager.runCycle();
        assert.ok(report.result.setpoints.get('E1')!.current >= 6000);
        await site.stop();
    });
});
