import { strict as assert } from 'node:assert';
import type { EvseReading, Phases3 } from '../../../lib/core/types';
import type { SessionRecord } from '../../../lib/sessions/record';
import { SessionRecordSchema } from '../../../lib/sessions/record';
import { SessionTracker, type WallboxSample } from '../../../lib/sessions/tracker';

const T0 = Date.UTC(2026, 11, 3, 8, 0, 0);

/** One wallbox fed reading by reading, as the control cycle feeds the tracker. */
function wallbox(dev_id = 'E1') {
    const tracker = new SessionTracker();
    const ended: SessionRecord[] = [];
    tracker.events.on('ended', (r) => ended.push(r));
    let now = T0;
    const feed = (
        reading: EvseReading | undefined,
        extra: Partial<WallboxSample> = {},
        stepMs = 10_000,
    ) => {
        now += stepMs;
        tracker.update(now, [
            { dev_id, name: 'Garage', reading, takenAt: reading ? now : undefined, ...extra },
        ]);
        return now;
    };
    return { tracker, ended, feed, at: () => now };
}

const charging = (currents: Phases3, totalEnergyWh?: number, powerW?: number): EvseReading => ({
    state: 3,
    currents,
    ...(totalEnergyWh === undefined ? {} : { totalEnergyWh }),
    ...(powerW === undefined ? {} : { powerW }),
});

describe('session tracker', () => {
    it('records a plug-in to unplug: counter energy, peak and time-weighted mean, who and why', () => {
        const w = wallbox();
        const start = w.feed({ state: 2, totalEnergyWh: 10_000 }, { card: '4711' });
        // Charging intervals of 10 s each at these currents (the highest phase counts).
        const steps: [Phases3, number][] = [
            [[16_000, 15_800, 16_100], 10_020],
            [[10_000, 10_000, 10_000], 10_050],
            [[6_000, 6_000, 6_000], 10_070],
        ];
        for (const [c, wh] of steps)
            w.feed(charging(c, wh), { user: { id: 'u1', name: 'Anna' }, card: '4711' });
        w.feed({ state: 2, totalEnergyWh: 10_070 });
        const end = w.feed({ state: 1, totalEnergyWh: 10_070 });
        assert.equal(w.ended.length, 1);
        const r = w.ended[0]!;
        SessionRecordSchema.parse(r);
        assert.equal(r.start, start);
        assert.equal(r.end, end);
        assert.equal(r.energy_wh, 10_070 - 10_000);
        assert.equal(r.energy_source, 'counter');
        assert.equal(r.meter_start_wh, 10_000);
        assert.equal(r.meter_stop_wh, 10_070);
        assert.equal(r.charging_s, 30);
        assert.equal(r.peak_ma, 16_100);
        assert.equal(r.mean_ma, Math.round((16_100 + 10_000 + 6_000) / 3));
        assert.deepEqual(
            [r.user_id, r.user, r.card, r.reason],
            ['u1', 'Anna', '4711', 'unplugged'],
        );
        assert.equal(w.tracker.running('E1'), undefined);
    });

    it("each cycle's steps add up to the record, the unplug cycle's last Wh included", () => {
        const w = wallbox();
        let stepped = 0;
        const feed = (r: EvseReading) => {
            w.feed(r);
            stepped += w.tracker.step('E1')?.wh ?? 0;
        };
        feed({ state: 2, totalEnergyWh: 100 });
        feed(charging([16_000, 16_000, 16_000], 130));
        feed(charging([16_000, 16_000, 16_000], 175));
        feed({ state: 1, totalEnergyWh: 190 }); // the counter moved once more before the unplug
        assert.equal(w.ended[0]!.energy_wh, 90);
        assert.equal(stepped, 90);
        w.feed({ state: 1, totalEnergyWh: 190 });
        assert.equal(w.tracker.step('E1'), undefined, 'no session, no step');
    });

    it('without a counter: power × time over fresh readings only', () => {
        const w = wallbox();
        w.feed({ state: 2 });
        w.feed(charging([16_000, 16_000, 16_000], undefined, 11_000), {}, 60_000);
        // The wallbox stops answering: its last reading stays, with its old time.
        const stale = charging([16_000, 16_000, 16_000], undefined, 11_000);
        w.tracker.update(w.at() + 60_000, [
            { dev_id: 'E1', name: 'Garage', reading: stale, takenAt: w.at() },
        ]);
        w.feed(charging([16_000, 16_000, 16_000], undefined, 7_200), {}, 70_000);
        w.feed({ state: 1 });
        const r = w.ended[0]!;
        assert.equal(r.energy_source, 'power');
        // 60 s at 11 kW, then 60 s (the longest gap counted) at 7.2 kW.
        assert.equal(r.energy_wh, Math.round(((11_000 * 60 + 7_200 * 60) / 3600) * 1000) / 1000);
        assert.equal(r.charging_s, 120);
    });

    it('a counter that jumps back or implausibly far counts nothing for that step', () => {
        const w = wallbox();
        w.feed({ state: 2, totalEnergyWh: 500 });
        w.feed(charging([16_000, 0, 0], 600));
        w.feed(charging([16_000, 0, 0], 20)); // the wallbox restarted its counter
        w.feed(charging([16_000, 0, 0], 90));
        w.feed(charging([16_000, 0, 0], 90 + 60_000)); // a swapped meter
        w.feed(charging([16_000, 0, 0], 90 + 60_010));
        w.feed({ state: 1 });
        assert.equal(w.ended[0]!.energy_wh, 100 + 70 + 10);
    });

    it('follows the wallbox transaction: a late start is adopted, its end closes the record', () => {
        const w = wallbox();
        w.feed({ state: 2, totalEnergyWh: 1000 });
        const tx = { id: '17', idTag: 'CARD-A', meterStartWh: 1000, startedAt: T0 + 15_000 };
        w.feed(charging([10_000, 10_000, 10_000], 1010), { transaction: tx });
        w.feed(charging([10_000, 10_000, 10_000], 1040), { transaction: tx });
        const ended = {
            id: '17',
            stoppedAt: T0 + 35_000,
            meterStopWh: 1045,
            energyWh: 45,
            reason: 'EVDisconnected',
        };
        w.feed({ state: 2, totalEnergyWh: 1045 }, { endedTransaction: ended });
        assert.equal(w.ended.length, 1);
        const r = w.ended[0]!;
        assert.equal(r.transaction_id, '17');
        assert.equal(r.card, 'CARD-A');
        assert.equal(r.reason, 'transaction');
        assert.equal(r.ocpp_reason, 'EVDisconnected');
        assert.equal(r.energy_wh, 45, 'the charge point’s own figure');
        assert.equal(r.end, ended.stoppedAt);
        // The car stays: no new session until a new transaction or a new plug-in.
        w.feed({ state: 2, totalEnergyWh: 1045 }, { endedTransaction: ended });
        assert.equal(w.tracker.running('E1'), undefined);
        const tx2 = { id: '18', idTag: 'CARD-B', meterStartWh: 1045, startedAt: w.at() + 10_000 };
        w.feed(charging([10_000, 10_000, 10_000], 1050), {
            transaction: tx2,
            endedTransaction: ended,
        });
        assert.equal(w.tracker.running('E1')?.transaction_id, '18');
        assert.equal(w.tracker.running('E1')?.energy_wh, 5);
        w.feed({ state: 1, totalEnergyWh: 1050 });
        assert.equal(w.ended[1]!.reason, 'unplugged');
    });

    it('after a restart a checkpointed session goes on with the same car, else it is interrupted', () => {
        const before = wallbox();
        before.feed({ state: 2, totalEnergyWh: 2000 });
        before.feed(charging([16_000, 16_000, 16_000], 2100));
        const cp = before.tracker.runningAll();
        assert.equal(cp.length, 1);
        const cpAt = before.at();

        // Still plugged: the counter since the checkpoint counts.
        const a = wallbox();
        a.tracker.restore(cp);
        a.feed(undefined); // not read yet: it waits
        assert.equal(a.ended.length, 0);
        a.feed(charging([16_000, 16_000, 16_000], 2400));
        a.feed({ state: 1, totalEnergyWh: 2400 });
        assert.equal(a.ended.length, 1);
        assert.equal(a.ended[0]!.id, cp[0]!.id);
        assert.equal(a.ended[0]!.energy_wh, 400);
        assert.equal(a.ended[0]!.reason, 'unplugged');

        // Gone meanwhile: ends where the checkpoint saw it last.
        const b = wallbox();
        b.tracker.restore(cp);
        b.feed({ state: 1, totalEnergyWh: 2400 });
        assert.equal(b.ended[0]!.reason, 'interrupted');
        assert.equal(b.ended[0]!.end, cpAt);
        assert.equal(b.ended[0]!.energy_wh, 100);
        assert.equal(b.tracker.running('E1'), undefined);
    });

    it('an unplug before the charge point reports the end records the transaction once', () => {
        const w = wallbox();
        const tx = { id: '5', meterStartWh: 0, startedAt: T0 };
        w.feed(charging([8_000, 8_000, 8_000], 10), { transaction: tx });
        w.feed({ state: 1, totalEnergyWh: 20 }, { transaction: tx });
        w.feed({ state: 1, totalEnergyWh: 20 }, { transaction: tx });
        w.feed({ state: 1, totalEnergyWh: 20 }, { endedTransaction: { id: '5', stoppedAt: T0 } });
        assert.equal(w.ended.length, 1);
        assert.equal(w.ended[0]!.reason, 'unplugged');
        assert.equal(w.ended[0]!.energy_wh, 20);
        assert.equal(w.tracker.running('E1'), undefined);
    });

    it('a wallbox removed from the table ends its session', () => {
        const w = wallbox();
        w.feed({ state: 2 });
        w.tracker.update(w.at() + 1000, []);
        assert.equal(w.ended[0]!.reason, 'removed');
    });

    it('an offline or faulted wallbox keeps its session running', () => {
        const w = wallbox();
        w.feed({ state: 2, totalEnergyWh: 0 });
        w.feed({ state: 6, totalEnergyWh: 0 });
        w.feed({ state: 5, totalEnergyWh: 0 });
        assert.ok(w.tracker.running('E1'));
        assert.equal(w.ended.length, 0);
    });
});
