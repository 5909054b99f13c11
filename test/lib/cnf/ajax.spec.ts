// set_ajax_meter and set_ajax_evse: what a push stores, what it keeps, and what it refuses.
import assert from 'node:assert/strict';
import type { EvseReading, MeterReading } from '../../../lib/core/types';
import { directSite, jsonCall, type DirectSite } from '../../support/cnf';

describe('HTTP input devices (set_ajax_meter, set_ajax_evse)', () => {
    let d: DirectSite;
    beforeEach(() => {
        d = directSite(null);
    });
    afterEach(() => d.stop());

    const push = (query: string, body?: unknown) => jsonCall(d, query, body, undefined);
    const meter = () => d.site.manager.deviceState('M3').sample.reading as MeterReading | undefined;
    const devInfoOf = async (id: string) => {
        const info = (await push('cmd=get_dev_info')).value as {
            devices: { dev_id: string; import: number; export: number; total_energy: number }[];
        };
        return info.devices.find((x) => x.dev_id === id)!;
    };

    it('a push that leaves out the energy counters keeps them', async () => {
        const first = await push('cmd=set_ajax_meter&dev_id=M3', {
            power_w: 1000,
            import_wh: 1_234_500,
            export_wh: 77_000,
        });
        assert.deepEqual(first, { status: 200, value: 'ok' });
        assert.equal((await push('cmd=set_ajax_meter&dev_id=M3&power_w=900')).status, 200);
        assert.equal(meter()?.powerW, 900);
        assert.equal(meter()?.importWh, 1_234_500);
        assert.equal(meter()?.exportWh, 77_000);
        const shown = await devInfoOf('M3');
        assert.equal(shown.import, 1_234_500);
        assert.equal(shown.export, 77_000);
        // naming one counter changes only that one
        await push('cmd=set_ajax_meter&dev_id=M3', { power_w: 800, export_wh: 78_000 });
        assert.equal(meter()?.importWh, 1_234_500);
        assert.equal(meter()?.exportWh, 78_000);
    });

    it('a total never goes backwards: a lower counter is a meter that started again', async () => {
        await push('cmd=set_ajax_meter&dev_id=M3', { power_w: 1, import_wh: 5000 });
        await push('cmd=set_ajax_meter&dev_id=M3', { power_w: 1, import_wh: 5600 });
        assert.equal(meter()?.importWh, 5600);
        // the meter was replaced: it counts from 0 again, the total goes on from 5600
        await push('cmd=set_ajax_meter&dev_id=M3', { power_w: 1, import_wh: 0 });
        assert.equal(meter()?.importWh, 5600);
        await push('cmd=set_ajax_meter&dev_id=M3', { power_w: 1, import_wh: 250 });
        assert.equal(meter()?.importWh, 5850);
        const seen = [5850];
        for (const wh of [300, 100, 400, 0, 50]) {
            await push('cmd=set_ajax_meter&dev_id=M3', { power_w: 1, import_wh: wh });
            seen.push(meter()!.importWh!);
        }
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `${seen}`);
    });

    it('a wallbox push without total_energy keeps its counter', async () => {
        await push('cmd=set_ajax_evse&dev_id=E3', { state: 2, total_energy: 4321 });
        await push('cmd=set_ajax_evse&dev_id=E3', { state: 3, current: [6000, 0, 0] });
        const r = d.site.manager.deviceState('E3').sample.reading as EvseReading;
        assert.equal(r.state, 3);
        assert.equal(r.totalEnergyWh, 4321);
    });

    it('an empty push is refused and stores nothing', async () => {
        const r = await push('cmd=set_ajax_meter&dev_id=M3', {});
        assert.equal(r.status, 400);
        assert.equal(r.value, 'set_ajax_meter needs power_w (or power_va) or current');
        assert.equal(meter(), undefined);
        const e = await push('cmd=set_ajax_evse&dev_id=E3', {});
        assert.equal(e.status, 400);
        assert.match(String(e.value), /^body\.state: /);
    });

    it('a bad push changes nothing, not even the counters it names', async () => {
        await push('cmd=set_ajax_meter&dev_id=M3', { power_w: 10, import_wh: 100 });
        const before = JSON.stringify([meter(), [...d.ctx.ajax]]);
        const r = await push('cmd=set_ajax_meter&dev_id=M3', {
            power_w: 20,
            import_wh: 200,
            current: [1, 2],
        });
        assert.equal(r.status, 400);
        assert.match(String(r.value), /body\.current: must hold 3 values/);
        assert.equal(JSON.stringify([meter(), [...d.ctx.ajax]]), before);
    });

    it('answers set_ajax_evse with the control object', async () => {
        const r = await push('cmd=set_ajax_evse&dev_id=E3', { state: 1 });
        assert.equal(r.status, 200);
        assert.deepEqual(Object.keys(r.value as object).sort(), [
            'charging_current',
            'charging_enabled',
            'device_enabled',
            'paused',
        ]);
    });
});
