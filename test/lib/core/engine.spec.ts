import assert from 'node:assert/strict';
import { ManualClock } from '../../../lib/core/clock';
import { ChargingManager, type CycleReport } from '../../../lib/core/engine';
import {
    MeterRole,
    type EvseCommand,
    type EvseDriver,
    type EvseReading,
    type MeterDriver,
} from '../../../lib/core/types';
import { SimEvse, SimMeter, SimWorld } from '../../../lib/devices/sim';
import { evse, meter, PLAIN, siteConfig } from '../../support/site';

const CAR = { batteryWh: 60_000, soc: 0.2, maxCurrent: 16_000, phases: 3 as const, followMs: 2000 };

function simSite(params = {}) {
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 3)); // 03:00 UTC: no PV
    const world = new SimWorld(clock, {
        baseCurrent: [4000, 4000, 4000],
        stepCurrent: 0,
        stepMs: 60_000,
        seed: 1,
    });
    const config = siteConfig(
        { maxTotalCurrent: 32_000, reserveCurrent: 2000, ...params },
        [evse('E1'), evse('E2'), evse('E3')],
        [meter('M1', MeterRole.gridDemand)],
    );
    const evses = ['E1', 'E2', 'E3'].map((id) => new SimEvse(world, { id, car: CAR }));
    const grid = new SimMeter(world, { id: 'M1', role: MeterRole.gridDemand });
    const manager = new ChargingManager({ config, drivers: [...evses, grid], clock });
    return { clock, world, manager, evses, grid };
}

/** A wallbox that records what it is told. */
class RecordingEvse implements EvseDriver {
    readonly kind = 'evse';
    writes: { at: number; cmd: EvseCommand }[] = [];
    closed = false;
    reading: EvseReading = { state: 2, currents: [0, 0, 0] };
    constructor(
        readonly id: string,
        private clock: ManualClock,
        readonly keepAliveMs?: number,
    ) {}
    read() {
        return Promise.resolve(this.reading);
    }
    apply(cmd: EvseCommand) {
        this.writes.push({ at: this.clock.now(), cmd });
        return Promise.resolve();
    }
    close() {
        this.closed = true;
        return Promise.resolve();
    }
}

describe('ChargingManager (cycle engine)', () => {
    it('shares the fuse between three simulated cars and keeps the measured grid under the limit', async () => {
        const { clock, manager, grid } = simSite();
        let worst = 0;
        for (let i = 0; i < 120; i++) {
            const report = await manager.runCycle();
            const measured = report.snapshot.meters.get('M1')!.reading!.currents!;
            worst = Math.max(worst, ...measured);
            clock.advance(1000);
        }
        const sp = manager.lastCycle!.result.setpoints;
        // 30 A budget − 4 A household = 26 A: 8.6 A each.
        for (const id of ['E1', 'E2', 'E3']) assert.equal(sp.get(id)!.current, 8666);
        assert.ok(worst <= 30_000, `grid peaked at ${worst} mA`);
        const r = await grid.read();
        assert.ok(r.currents![0] > 29_000, 'the cars really draw what they were given');
    });

    it('runs cycles on its own period, measures cycle_time, and stops cleanly', async () => {
        const { clock, manager, evses, world } = simSite({ disablePolicy: 1 });
        const reports: CycleReport[] = [];
        const off = manager.events.on('cycle', (r) => reports.push(r));
        manager.start();
        for (let i = 0; i < 5; i++) {
            clock.advance(1000);
            await new Promise((r) => setImmediate(r));
        }
        assert.ok(reports.length >= 5, `${reports.length} cycles`);
        assert.ok(reports.every((r) => r.cycleTimeMs >= 0));
        assert.equal(reports[1]!.at - reports[0]!.at, 1000);
        off();
        await manager.stop();
        assert.equal(clock.pending, 0, 'no timer left');
        assert.equal(manager.events.count('cycle'), 0);
        // disable_policy 1: every wallbox gets its minimum when control is given up.
        for (const e of evses) {
            assert.deepEqual(e.lastCommand, {
                current: 6000,
                chargingEnabled: true,
                released: false,
            });
        }
        assert.equal(world.evses.size, 0, 'closed drivers leave the world');
    });

    it('writes on change, re-writes before the wallbox fail-safe, applies disable_policy on stop', async () => {
        const clock = new ManualClock(0);
        const box = new RecordingEvse('E1', clock, 9000);
        const config = siteConfig({ reserveCurrent: 0, disablePolicy: 0 }, [evse('E1')]);
        const manager = new ChargingManager({ config, drivers: [box], clock });
        for (let t = 0; t < 10_000; t += 1000) {
            await manager.runCycle();
            clock.advance(1000);
        }
        const writes = box.writes.map((w) => w.at);
        // First write at once (6 A start), ramp-ups on change, then keep-alives every ≥ 3 s.
        assert.equal(box.writes[0]!.cmd.current, 6000);
        const gaps = writes.slice(1).map((t, i) => t - writes[i]!);
        assert.ok(
            gaps.every((g) => g <= 3000),
            `gaps ${gaps.join()}`,
        );
        assert.ok(writes.length < 10, 'not every cycle once settled');
        await manager.stop();
        assert.deepEqual(box.writes.at(-1)!.cmd, {
            current: 0,
            chargingEnabled: false,
            released: false,
        });
        assert.equal(box.closed, true);
    });

    it('reports a failing device once, counts errors, and notices recovery', async () => {
        const clock = new ManualClock(0);
        let failing = true;
        const m: MeterDriver = {
            id: 'M1',
            kind: 'meter',
            read: () =>
                failing
                    ? Promise.reject(new Error('M1: timeout'))
                    : Promise.resolve({ powerW: 0, currents: [0, 0, 0] }),
            close: () => Promise.resolve(),
        };
        const config = siteConfig({}, [evse('E1')], [meter('M1', MeterRole.gridDemand)]);
        const manager = new ChargingManager({ config, drivers: [m], clock });
        const errors: string[] = [];
        let recovered = 0;
        manager.events.on('deviceError', (e) => errors.push(e.error.message));
        manager.events.on('deviceRecovered', () => recovered++);
        for (let i = 0; i < 3; i++) await manager.runCycle();
        assert.deepEqual(errors, ['M1: timeout']);
        assert.equal(manager.deviceState('M1').comErrors, 3);
        assert.equal(manager.lastCycle!.result.site.failSafe, true);
        failing = false;
        await manager.runCycle();
        assert.equal(recovered, 1);
        assert.equal(manager.deviceState('M1').comError, false);
        assert.equal(manager.lastCycle!.result.site.failSafe, false);
    });

    it('a device that never answers costs one timeout, not the cycle', async () => {
        const clock = new ManualClock(0);
        const hanging: MeterDriver = {
            id: 'M1',
            kind: 'meter',
            read: () => new Promise(() => undefined),
            close: () => Promise.resolve(),
        };
        const config = siteConfig({}, [evse('E1')], [meter('M1', MeterRole.gridDemand)]);
        const manager = new ChargingManager({
            config,
            drivers: [hanging],
            clock,
            ioTimeoutMs: 500,
        });
        const cycle = manager.runCycle();
        clock.advance(500);
        const report = await cycle;
        assert.match(manager.deviceState('M1').lastError, /read M1: no answer within 500 ms/);
        assert.equal(report.result.site.failSafe, true);
    });

    it('one deadline for all requests; each silent device fails with its own timeout', async () => {
        const clock = new ManualClock(0);
        const silent = (id: string): MeterDriver => ({
            id,
            kind: 'meter',
            read: () => new Promise(() => undefined),
            close: () => Promise.resolve(),
        });
        const config = siteConfig(
            {},
            [evse('E1')],
            ['M1', 'M2', 'M3'].map((id) => meter(id, MeterRole.gridDemand)),
        );
        const manager = new ChargingManager({
            config,
            drivers: ['M1', 'M2', 'M3'].map(silent),
            clock,
            ioTimeoutMs: 500,
        });
        const errors: { id: string; message: string; code: unknown }[] = [];
        manager.events.on('deviceError', ({ id, error }) =>
            errors.push({ id, message: error.message, code: (error as { code?: unknown }).code }),
        );
        const cycle = manager.runCycle();
        // One timer for the decision's wait and one for the requests' deadline, not one per device.
        assert.equal(clock.pending, 2, 'two timers for three devices');
        clock.advance(500);
        await cycle;
        assert.deepEqual(
            errors,
            ['M1', 'M2', 'M3'].map((id) => ({
                id,
                message: `read ${id}: no answer within 500 ms`,
                code: 'ETIMEDOUT',
            })),
        );
        assert.equal(clock.pending, 0);
    });

    it('a late answer from an earlier cycle is not taken as the current one', async () => {
        const clock = new ManualClock(0);
        const answers: ((r: { powerW: number; currents: [number, number, number] }) => void)[] = [];
        const m: MeterDriver = {
            id: 'M1',
            kind: 'meter',
            read: () => new Promise((resolve) => answers.push(resolve)),
            close: () => Promise.resolve(),
        };
        const config = siteConfig({}, [evse('E1')], [meter('M1', MeterRole.gridDemand)]);
        const manager = new ChargingManager({ config, drivers: [m], clock, ioTimeoutMs: 500 });
        const first = manager.runCycle();
        clock.advance(500);
        await first;
        const second = manager.runCycle(); // its read is pending when the first one answers
        answers[0]!({ powerW: 0, currents: [1000, 1000, 1000] });
        await new Promise((r) => setImmediate(r));
        clock.advance(500);
        const report = await second;
        const state = manager.deviceState('M1');
        assert.equal(state.sample.reading, undefined, 'the late answer was dropped');
        assert.equal(state.comErrors, 2);
        assert.match(state.lastError, /read M1: no answer within 500 ms/);
        assert.equal(report.result.site.failSafe, true);
        // The second read answers late too; the third in time.
        const third = manager.runCycle();
        answers[1]!({ powerW: 0, currents: [2000, 2000, 2000] });
        answers[2]!({ powerW: 0, currents: [3000, 3000, 3000] });
        await third;
        assert.deepEqual(manager.deviceState('M1').sample.reading?.currents, [3000, 3000, 3000]);
        assert.equal(manager.deviceState('M1').comError, false);
        assert.equal(clock.pending, 0);
    });

    it('a write without an answer fails at the deadline and is written again next cycle', async () => {
        const clock = new ManualClock(0);
        const box = new RecordingEvse('E1', clock);
        let hang = true;
        const apply = box.apply.bind(box);
        box.apply = (cmd) => {
            void apply(cmd);
            return hang ? new Promise(() => undefined) : Promise.resolve();
        };
        const config = siteConfig({ reserveCurrent: 0 }, [evse('E1')]);
        const manager = new ChargingManager({ config, drivers: [box], clock, ioTimeoutMs: 500 });
        const first = manager.runCycle();
        await new Promise((r) => setImmediate(r)); // sensed, decided, written
        clock.advance(500);
        await first;
        const state = manager.deviceState('E1');
        assert.match(state.lastError, /write E1: no answer within 500 ms/);
        assert.equal(state.lastCommand, null);
        hang = false;
        await manager.runCycle();
        assert.equal(box.writes.length, 2, 'the same command again');
        assert.deepEqual(state.lastCommand, box.writes[1]!.cmd);
        assert.equal(clock.pending, 0);
    });

    it('uses values pushed from flows or HTTP and lets them go stale', async () => {
        const clock = new ManualClock(0);
        const config = siteConfig(
            { reserveCurrent: 0, maxIncreasePerCycle: 100_000, increaseHoldMs: 0 },
            [evse('E1', { staleAfterMs: 5000 })],
            [meter('M1', MeterRole.gridDemand, { staleAfterMs: 5000 })],
        );
        const manager = new ChargingManager({ config, clock });
        const setpoints: number[] = [];
        manager.events.on('setpoint', (e) => setpoints.push(e.setpoint.current));
        manager.pushReading('E1', { state: 2 });
        manager.pushReading('M1', { powerW: 0, currents: [20_000, 20_000, 20_000] });
        await manager.runCycle();
        assert.equal(manager.lastCycle!.result.setpoints.get('E1')!.current, 12_000);
        clock.advance(6000);
        manager.pushReading('E1', { state: 3 });
        await manager.runCycle();
        assert.equal(manager.lastCycle!.result.site.failSafe, true, 'meter value went stale');
        assert.deepEqual(setpoints, [12_000, 6000]);
    });

    describe('a loop that never waits', () => {
        const flush = () => new Promise((r) => setImmediate(r));
        /** Moves the clock in small steps, letting answers and decisions run in between. */
        async function step(clock: ManualClock, ms: number): Promise<void> {
            for (let t = 0; t < ms; t += 100) {
                clock.advance(100);
                await flush();
            }
        }
        const quietGrid = (
            currents: [number, number, number],
        ): MeterDriver & { silent: boolean } => {
            const m = {
                id: 'M1',
                kind: 'meter' as const,
                silent: false,
                read: () =>
                    m.silent
                        ? new Promise<never>(() => undefined)
                        : Promise.resolve({ powerW: 0, currents }),
                close: () => Promise.resolve(),
            };
            return m;
        };

        it('decides on schedule without waiting for a meter that stopped answering', async () => {
            const clock = new ManualClock(0);
            const m = quietGrid([10_000, 10_000, 10_000]);
            const box = new RecordingEvse('E1', clock);
            const config = siteConfig(
                { ...PLAIN, maxTotalCurrent: 32_000 },
                [evse('E1')],
                [meter('M1', MeterRole.gridDemand, { staleAfterMs: 5000 })],
            );
            const manager = new ChargingManager({
                config,
                drivers: [m, box],
                clock,
                cycleMs: 1000,
                ioTimeoutMs: 2000,
            });
            const reports: CycleReport[] = [];
            manager.events.on('cycle', (r) => reports.push(r));
            manager.start();
            clock.advance(0);
            await flush();
            await step(clock, 1000); // decisions at 0 and 1000
            m.silent = true;
            await step(clock, 6000);
            await manager.stop();
            const at = reports.map((r) => r.at);
            // The first read that goes unanswered holds its decision up to half a period, once;
            // every later decision is taken on the tick, while the read is outstanding and after
            // it timed out.
            assert.deepEqual(at, [0, 1000, 2500, 3000, 4000, 5000, 6000, 7000]);
            const byAt = new Map(reports.map((r) => [r.at, r]));
            // While outstanding, the last reading counts as long as it is fresh.
            assert.equal(byAt.get(3000)!.result.site.failSafe, false);
            assert.equal(byAt.get(3000)!.snapshot.meters.get('M1')!.takenAt, 1000);
            // The read sent at 2000 timed out at 4000: from then on the meter is not trusted.
            assert.equal(byAt.get(4000)!.result.site.failSafe, true);
            assert.match(manager.deviceState('M1').lastError, /read M1: no answer within 2000 ms/);
            assert.equal(manager.deviceState('M1').silent, true);
        });

        it('a wallbox that does not answer delays nobody else; its next command follows its answer', async () => {
            const clock = new ManualClock(0);
            const e1 = new RecordingEvse('E1', clock);
            const e2 = new RecordingEvse('E2', clock);
            const answers: (() => void)[] = [];
            const apply = e2.apply.bind(e2);
            let holding = true;
            e2.apply = (cmd) => {
                void apply(cmd);
                if (!holding) return Promise.resolve();
                return new Promise<void>((resolve) => answers.push(resolve));
            };
            const config = siteConfig(
                {
                    reserveCurrent: 0,
                    maxTotalCurrent: 32_000,
                    maxIncreasePerCycle: 1000,
                    increaseHoldMs: 0,
                },
                [evse('E1'), evse('E2')],
            );
            const manager = new ChargingManager({
                config,
                drivers: [e1, e2],
                clock,
                ioTimeoutMs: 5000,
            });
            const first = manager.runCycle();
            await flush();
            clock.advance(500); // E2 has been answering so far: its first write is waited for, once
            await first;
            // E2's write is still on its way: later decisions neither wait for it nor pile writes up.
            for (let i = 0; i < 3; i++) {
                clock.advance(1000);
                await manager.runCycle(); // resolves without the clock moving
            }
            assert.equal(e2.writes.length, 1);
            assert.equal(e1.writes.length, 4, 'E1 ramps every cycle');
            answers[0]!();
            await flush();
            assert.equal(e2.writes.length, 2, 'the newest command goes out as soon as E2 answered');
            assert.deepEqual(
                e2.writes[1]!.cmd.current,
                manager.lastCycle!.result.setpoints.get('E2')!.current,
            );
            answers[1]!();
            await flush();
            assert.deepEqual(manager.deviceState('E2').lastCommand, e2.writes[1]!.cmd);
            holding = false;
            await manager.stop();
        });

        it('sends reductions before increases: a raise waits until the lowering it follows is confirmed', async () => {
            const clock = new ManualClock(0);
            const e1 = new RecordingEvse('E1', clock);
            const e2 = new RecordingEvse('E2', clock);
            // Both charge what they are given (no meter: static management counts setpoints).
            e1.reading = e2.reading = { state: 3 };
            const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
            const apply = e1.apply.bind(e1);
            let hold = false;
            e1.apply = (cmd) => {
                void apply(cmd);
                if (!hold) return Promise.resolve();
                return new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
            };
            let e1Limit: number | undefined;
            const config = siteConfig(
                {
                    ...PLAIN,
                    maxTotalCurrent: 32_000,
                    increaseHoldMs: 0,
                    maxIncreasePerCycle: 32_000,
                },
                [evse('E1'), evse('E2', { maxCurrent: 32_000 })],
            );
            const manager = new ChargingManager({
                config,
                drivers: [e1, e2],
                clock,
                ioTimeoutMs: 60_000,
                limits: {
                    limits: () =>
                        e1Limit === undefined ? {} : { limits: new Map([['E1', e1Limit]]) },
                },
            });
            // A decision waits up to half a period for writes to wallboxes that answer.
            const decide = async () => {
                const cycle = manager.runCycle();
                await flush();
                clock.advance(500);
                await cycle;
            };
            const e2Max = () => Math.max(...e2.writes.map((w) => w.cmd.current));
            for (let i = 0; i < 3; i++) {
                await decide();
                clock.advance(1000);
            }
            assert.equal(e1.writes.at(-1)!.cmd.current, 16_000);
            assert.equal(e2Max(), 16_000);

            // E1 is lowered to 6 A and E2 may have the 10 A freed — but not before E1 confirmed.
            hold = true;
            e1Limit = 6000;
            await decide();
            assert.equal(e1.writes.at(-1)!.cmd.current, 6000);
            // The freed current is handed out from the next decision on.
            clock.advance(500);
            await decide();
            assert.equal(manager.lastCycle!.result.setpoints.get('E2')!.current, 26_000);
            assert.equal(e2Max(), 16_000, 'the raise went out while the lowering was unconfirmed');
            pending.shift()!.resolve();
            await flush();
            assert.equal(
                e2.writes.at(-1)!.cmd.current,
                26_000,
                'the raise follows the confirmation',
            );

            // A lowering that fails holds back the raise it made room for; the next decision,
            // which knows E1's level is unknown, decides again.
            e1Limit = undefined;
            hold = false;
            clock.advance(1000);
            await decide();
            clock.advance(1000);
            await decide();
            assert.equal(e1.writes.at(-1)!.cmd.current, 16_000);
            assert.equal(e2.writes.at(-1)!.cmd.current, 16_000);
            hold = true;
            e1Limit = 6000;
            clock.advance(1000);
            const writesBefore = e2.writes.length;
            await decide();
            clock.advance(500);
            await decide();
            assert.equal(manager.lastCycle!.result.setpoints.get('E2')!.current, 26_000);
            pending.shift()!.reject(new Error('rejected'));
            await flush();
            assert.equal(e2.writes.length, writesBefore, 'no raise after a failed lowering');
            hold = false;
            clock.advance(1000);
            await decide();
            await flush();
            assert.equal(e2.writes.at(-1)!.cmd.current, 26_000);
            await manager.stop();
        });

        function pushedSite(reactOnArrival: boolean) {
            const clock = new ManualClock(0);
            const box = new RecordingEvse('E1', clock);
            box.reading = { state: 3, currents: [16_000, 16_000, 16_000] };
            const config = siteConfig(
                { ...PLAIN, maxTotalCurrent: 32_000 },
                [evse('E1', { staleAfterMs: 60_000 })],
                [meter('M1', MeterRole.gridDemand, { staleAfterMs: 60_000 })],
            );
            const manager = new ChargingManager({ config, drivers: [box], clock, reactOnArrival });
            const reports: CycleReport[] = [];
            manager.events.on('cycle', (r) => reports.push(r));
            return { clock, box, manager, reports };
        }

        it('an overload pushed between cycles is decided and written at once', async () => {
            const { clock, box, manager, reports } = pushedSite(true);
            manager.pushReading('M1', { powerW: 0, currents: [26_000, 26_000, 26_000] });
            manager.start();
            await step(clock, 100);
            assert.equal(box.writes.at(-1)!.cmd.current, 16_000);
            // Below the limit: nothing happens before the next cycle.
            manager.pushReading('M1', { powerW: 0, currents: [30_000, 30_000, 30_000] });
            await flush();
            assert.equal(reports.length, 1);
            // A phase above max_total_current: decided and written before the clock moves on.
            manager.pushReading('M1', { powerW: 0, currents: [16_000, 41_000, 16_000] });
            await flush();
            assert.equal(reports.length, 2);
            assert.equal(reports[1]!.kind, 'reading');
            assert.equal(reports[1]!.at, 100);
            assert.ok(box.writes.at(-1)!.cmd.current < 16_000, `${box.writes.at(-1)!.cmd.current}`);
            await manager.stop();
        });

        it('without reactOnArrival the overload waits for the next cycle', async () => {
            const { clock, box, manager, reports } = pushedSite(false);
            manager.pushReading('M1', { powerW: 0, currents: [26_000, 26_000, 26_000] });
            manager.start();
            await step(clock, 100);
            manager.pushReading('M1', { powerW: 0, currents: [16_000, 41_000, 16_000] });
            await flush();
            assert.equal(reports.length, 1);
            assert.equal(box.writes.at(-1)!.cmd.current, 16_000);
            await step(clock, 900);
            assert.equal(reports.length, 2);
            assert.ok(box.writes.at(-1)!.cmd.current < 16_000);
            await manager.stop();
        });

        it("decideNow: requests share one decision; a reading's raises nobody within a period", async () => {
            const clock = new ManualClock(0);
            const box = new RecordingEvse('E1', clock);
            const config = siteConfig(
                {
                    reserveCurrent: 0,
                    maxTotalCurrent: 32_000,
                    maxIncreasePerCycle: 1000,
                    increaseHoldMs: 0,
                },
                [evse('E1')],
            );
            const manager = new ChargingManager({ config, drivers: [box], clock });
            assert.equal(await manager.decideNow(), null, 'not running: no decision');
            const reports: CycleReport[] = [];
            manager.events.on('cycle', (r) => reports.push(r));
            manager.start();
            await step(clock, 1000); // ticks at 0 (6 A) and 1000 (7 A)
            assert.equal(box.writes.at(-1)!.cmd.current, 7000);
            clock.advance(50);
            const asked = [
                manager.decideNow('reading'),
                manager.decideNow('reading'),
                manager.decideNow('reading'),
            ];
            const answered = await Promise.all(asked);
            assert.equal(reports.length, 3, 'one decision for three requests');
            assert.ok(answered.every((r) => r === reports[2]));
            assert.equal(reports[2]!.kind, 'reading');
            assert.equal(reports[2]!.result.setpoints.get('E1')!.current, 7000, 'held');
            // A command may raise (as a cycle may), so that a switch turned on shows at once.
            clock.advance(50);
            const command = await manager.decideNow();
            assert.equal(command!.kind, 'command');
            assert.equal(command!.result.setpoints.get('E1')!.current, 8000);
            await step(clock, 1000);
            assert.equal(box.writes.at(-1)!.cmd.current, 9000, 'the next cycle raises again');
            await manager.stop();
        });
    });

    describe('loud failures', () => {
        const flush = () => new Promise((r) => setImmediate(r));

        it('a cycle that throws is reported, then every wallbox goes to its fail-safe current', async () => {
            const clock = new ManualClock(0);
            const box = new RecordingEvse('E1', clock);
            let fail = false;
            const config = siteConfig(
                {
                    reserveCurrent: 0,
                    maxTotalCurrent: 32_000,
                    maxIncreasePerCycle: 100_000,
                    increaseHoldMs: 0,
                },
                [evse('E1', { failSafeCurrent: 7000 })],
                [meter('M1', MeterRole.gridDemand, { staleAfterMs: 3000 })],
            );
            const manager = new ChargingManager({
                config,
                drivers: [box],
                clock,
                limits: {
                    limits: () => {
                        if (fail) throw new Error('rule store unreadable');
                        return {};
                    },
                },
            });
            const failures: {
                failures: number;
                since: number;
                failSafe: boolean;
                message: string;
            }[] = [];
            const recoveries: { since: number; failures: number }[] = [];
            manager.events.on('cycleFailed', (f) =>
                failures.push({
                    failures: f.failures,
                    since: f.since,
                    failSafe: f.failSafe,
                    message: f.error.message,
                }),
            );
            manager.events.on('cycleRecovered', (r) => recoveries.push(r));
            manager.start();
            for (let t = 0; t < 8000; t += 100) {
                if (t === 1500) fail = true;
                if (t === 6500) fail = false;
                manager.pushReading('M1', { powerW: 0, currents: [0, 0, 0] });
                clock.advance(100);
                await flush();
            }
            await manager.stop();
            // Cycles at 2000…6000 failed; the fail-safe came once they had failed for stale_after.
            assert.deepEqual(
                failures.map((f) => [f.failures, f.since, f.failSafe]),
                [
                    [1, 2000, false],
                    [2, 2000, false],
                    [3, 2000, false],
                    [4, 2000, true],
                    [5, 2000, true],
                ],
            );
            assert.ok(failures.every((f) => f.message === 'rule store unreadable'));
            assert.deepEqual(recoveries, [{ since: 2000, failures: 5 }]);
            assert.equal(manager.failing, null);
            const during = box.writes.filter((w) => w.at >= 2000 && w.at <= 6000);
            assert.deepEqual(
                during.map((w) => [w.at, w.cmd.current]),
                [[5000, 7000]],
                'nothing while failing, then the fail-safe current',
            );
            assert.equal(
                box.writes.filter((w) => w.at === 7000)[0]?.cmd.current,
                16_000,
                'back after recovery',
            );
        });

        it('runCycle rejects with the failure, and the failure is reported first', async () => {
            const clock = new ManualClock(0);
            const config = siteConfig({}, [evse('E1')]);
            const manager = new ChargingManager({
                config,
                clock,
                limits: {
                    limits: () => {
                        throw new Error('boom');
                    },
                },
            });
            const seen: string[] = [];
            manager.events.on('cycleFailed', (f) => seen.push(f.error.message));
            await assert.rejects(manager.runCycle(), /boom/);
            assert.deepEqual(seen, ['boom']);
            assert.equal(manager.failing!.failures, 1);
        });

        it('a subscriber that throws is reported, and the others still hear the event', async () => {
            const clock = new ManualClock(0);
            const manager = new ChargingManager({ config: siteConfig({}, [evse('E1')]), clock });
            const reported: string[] = [];
            let heard = 0;
            manager.events.on('listenerError', ({ event, error }) =>
                reported.push(`${event}: ${error.message}`),
            );
            manager.events.on('cycle', () => {
                throw new Error('bad subscriber');
            });
            manager.events.on('cycle', () => heard++);
            await manager.runCycle();
            assert.deepEqual(reported, ['cycle: bad subscriber']);
            assert.equal(heard, 1);
            await flush();
        });

        it('cycle_time is the measured period: an overrunning cycle shows', async () => {
            const clock = new ManualClock(0);
            let slow = false;
            const manager = new ChargingManager({
                config: siteConfig({}, [evse('E1')]),
                clock,
                limits: {
                    limits: () => {
                        if (slow) {
                            slow = false;
                            clock.advance(1500);
                        }
                        return {};
                    },
                },
            });
            const overruns: number[] = [];
            manager.events.on('overrun', (o) => overruns.push(o.cycleTimeMs));
            manager.start();
            for (let i = 0; i < 20; i++) {
                clock.advance(100);
                await flush();
            }
            assert.equal(manager.measuredCycleMs, 1000);
            slow = true;
            for (let i = 0; i < 11; i++) {
                clock.advance(100);
                await flush();
            }
            assert.deepEqual(overruns, [1500]);
            assert.equal(manager.measuredCycleMs, 1500);
            await manager.stop();
        });
    });
});
