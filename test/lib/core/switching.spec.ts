// 1p/3p phase switching in the allocator: thresholds, hold times, the interval between switches,
// the cap per session, switching under a fuse limit, and the stop → switch → settle → resume
// sequence, with a contactor that asserts it is never switched while the car draws.
import assert from 'node:assert/strict';
import { allocate } from '../../../lib/core/allocate';
import { DEFAULT_PARAMS, emptyMemory } from '../../../lib/core/defaults';
import { onPhases, rotatePhases } from '../../../lib/core/phases';
import {
    MeterRole,
    type AllocationResult,
    type EvseConfig,
    type EvseReading,
    type EvseSetpoint,
    type PhaseSwitchReport,
    type Phases3,
    type SiteParams,
} from '../../../lib/core/types';
import { evse, meter, PLAIN, siteConfig } from '../../support/site';

const V = 230;

/** One wallbox with a switching contactor, its car and a grid meter, cycle by cycle. */
class SwitchLoop {
    now = 1_000_000;
    memory = emptyMemory();
    last?: AllocationResult;
    /** Where the contactor stands: 1 connects the wallbox's L1 only. */
    contactor: 1 | 3 = 3;
    /** Wallbox phases the car can charge on. */
    carPhases = 7;
    plugged = true;
    metered = true;
    /** The car keeps drawing its last current this long after a stop (ms). */
    followMs = 0;
    /** PV surplus (W): caps the car as a surplus rule would, per phase count. */
    surplusW: number | undefined;
    household: Phases3 = [0, 0, 0];
    /** The wallbox refuses to switch. */
    refuse = false;
    choice: 1 | 3 | undefined;
    report: PhaseSwitchReport | undefined;
    readonly switched: { at: number; to: 1 | 3 }[] = [];
    private draw: Phases3 = [0, 0, 0];
    private stoppedAt = -Infinity;

    constructor(
        readonly cfg: EvseConfig,
        readonly params: Partial<SiteParams>,
    ) {}

    get sp(): EvseSetpoint {
        return this.last!.setpoints.get(this.cfg.id)!;
    }

    private carDraw(): Phases3 {
        if (!this.plugged) return [0, 0, 0];
        const given = this.last?.setpoints.get(this.cfg.id);
        const limit = given?.chargingEnabled ? given.current : 0;
        const mask = this.carPhases & (this.contactor === 1 ? 0b001 : 0b111);
        const previous = Math.max(...this.draw);
        // A slow car goes on drawing what it had for a while after a stop.
        const amps = limit === 0 && this.now - this.stoppedAt < this.followMs ? previous : limit;
        return onPhases(mask, amps);
    }

    step(dt = 1000): EvseSetpoint {
        this.now += dt;
        this.draw = this.carDraw();
        const b = rotatePhases(this.draw, this.cfg.phaseRotation);
        const grid: Phases3 = [
            this.household[0] + b[0],
            this.household[1] + b[1],
            this.household[2] + b[2],
        ];
        const state: EvseReading['state'] = !this.plugged
            ? 1
            : this.draw.some((d) => d > 0)
              ? 3
              : 2;
        const config = siteConfig(
            { ...PLAIN, maxTotalCurrent: 32_000, ...this.params },
            [this.cfg],
            [meter('M1', MeterRole.gridDemand)],
        );
        const id = this.cfg.id;
        const snapshot = {
            now: this.now,
            evses: new Map([
                [
                    id,
                    {
                        reading: this.metered ? { state, currents: this.draw } : { state },
                        takenAt: this.now,
                    },
                ],
            ]),
            meters: new Map([
                [
                    'M1',
                    {
                        reading: { currents: grid, powerW: 0 },
                        takenAt: this.now,
                    },
                ],
            ]),
            ...(this.surplusW !== undefined
                ? {
                      phaseLimits: new Map([
                          [
                              id,
                              {
                                  one: Math.floor((this.surplusW / V) * 1000),
                                  three: Math.floor((this.surplusW / V / 3) * 1000),
                              },
                          ],
                      ]),
                  }
                : {}),
            ...(this.choice ? { phaseChoice: new Map([[id, this.choice]]) } : {}),
            ...(this.report ? { phaseSwitches: new Map([[id, this.report]]) } : {}),
        };
        const before = this.last?.setpoints.get(id)?.current ?? 0;
        this.last = allocate(snapshot, config, this.memory);
        this.memory = this.last.memory;
        const sp = this.sp;
        if (sp.current === 0 && before > 0) this.stoppedAt = this.now;
        if (sp.switching === 'switch') {
            // The engine's step: the contactor moves only with the car stopped.
            assert.ok(
                Math.max(...this.draw) < 1000,
                `switched under load: ${this.draw.join('/')} mA at t=${this.now}`,
            );
            const to = sp.phaseCount!;
            if (this.refuse) this.report = { phases: to, at: this.now, error: 'refused' };
            else {
                this.contactor = to;
                this.report = { phases: to, at: this.now };
                this.switched.push({ at: this.now, to });
            }
        }
        return sp;
    }

    /** Runs for `ms` in 1 s cycles; returns the last setpoint. */
    run(ms: number): EvseSetpoint {
        let sp = this.last ? this.sp : this.step();
        for (let t = 0; t < ms; t += 1000) sp = this.step();
        return sp;
    }

    /** Runs until the next switch has been carried out (or `ms` passed); returns its time. */
    untilSwitched(ms: number): number | undefined {
        const n = this.switched.length;
        for (let t = 0; t < ms; t += 1000) {
            this.step();
            if (this.switched.length > n) return this.switched[n]!.at;
        }
        return undefined;
    }
}

const switching = (over: Partial<EvseConfig> = {}) =>
    evse('E1', { usedPhases: 0, maxCurrent: 16_000, phaseSwitch: {}, ...over });

describe('phase switching (allocator)', () => {
    const p = DEFAULT_PARAMS;

    it('PV: below 3 × 6 A of surplus one phase after the down delay, three again above 3 × (6 A + threshold) after the up delay', () => {
        const loop = new SwitchLoop(switching(), {});
        loop.surplusW = 8000; // 11.6 A per phase on three
        assert.equal(loop.run(30_000).current, 11_594);
        assert.equal(loop.sp.phaseCount, 3);

        loop.surplusW = 3000; // 4.3 A on three, 13 A on one
        const t0 = loop.now;
        const at = loop.untilSwitched(200_000)!;
        assert.ok(at !== undefined, 'switched to one phase');
        // The wish held for the down delay, then the car stopped before the contactor moved.
        assert.ok(at - t0 >= p.phaseDownDelayMs, `after ${at - t0} ms`);
        assert.equal(loop.switched[0]!.to, 1);
        // Settling: no current for phaseSettleMs, then one phase at the surplus (13 A).
        assert.equal(loop.step().current, 0);
        assert.equal(loop.sp.state, 'switching');
        loop.run(p.phaseSettleMs);
        const sp = loop.run(30_000);
        assert.equal(sp.current, 13_043);
        assert.equal(sp.phases, 0b001, 'counted on L1 alone once confirmed');
        assert.equal(sp.state, 'charging');

        // 4.6 kW is 6.67 A on three phases: not 6 A + the 1 A threshold. It stays on one.
        loop.surplusW = 4600;
        loop.run(p.phaseSwitchIntervalMs + p.phaseUpDelayMs + 10_000);
        assert.equal(loop.switched.length, 1);
        assert.equal(loop.sp.phaseCount, 1);
        // 5 kW is 7.2 A on three: up after the up delay.
        loop.surplusW = 5000;
        const t1 = loop.now;
        const up = loop.untilSwitched(p.phaseUpDelayMs + 60_000)!;
        assert.ok(up - t1 >= p.phaseUpDelayMs && up - t1 < p.phaseUpDelayMs + 30_000);
        assert.equal(loop.switched[1]!.to, 3);
        loop.run(p.phaseSettleMs + 10_000);
        assert.equal(loop.sp.current, 7246);
        assert.equal(loop.sp.phases, 0b111);
    });

    it('hold time: a dip shorter than the delay switches nothing', () => {
        const loop = new SwitchLoop(switching(), {});
        loop.surplusW = 8000;
        loop.run(10_000);
        loop.surplusW = 3000;
        loop.run(p.phaseDownDelayMs - 5000);
        loop.surplusW = 8000;
        loop.run(5000);
        loop.surplusW = 3000;
        loop.run(p.phaseDownDelayMs - 5000);
        assert.equal(loop.switched.length, 0, 'each dip starts the hold anew');
        assert.equal(loop.untilSwitched(20_000) !== undefined, true);
    });

    it('interval: the next automatic switch waits for the interval since the last', () => {
        const loop = new SwitchLoop(switching(), {});
        loop.surplusW = 3000;
        loop.untilSwitched(200_000);
        const first = loop.switched[0]!.at;
        loop.surplusW = 9000; // three phases would be better at once
        loop.untilSwitched(p.phaseSwitchIntervalMs + 120_000);
        const gap = loop.switched[1]!.at - first;
        assert.ok(gap >= p.phaseSwitchIntervalMs, `second switch after ${gap} ms`);
    });

    it('cap: no more automatic switches in a session than allowed; a new car starts again', () => {
        const loop = new SwitchLoop(switching(), {
            phaseSwitchMaxPerSession: 2,
            phaseSwitchIntervalMs: 60_000,
            phaseUpDelayMs: 30_000,
            phaseDownDelayMs: 30_000,
        });
        for (let k = 0; k < 8; k++) {
            loop.surplusW = k % 2 ? 9000 : 3000;
            loop.run(240_000);
        }
        assert.equal(loop.switched.length, 2);
        loop.plugged = false;
        loop.run(5000);
        loop.plugged = true;
        loop.surplusW = loop.contactor === 1 ? 9000 : 3000;
        assert.ok(loop.untilSwitched(240_000) !== undefined, 'a new session may switch again');
    });

    it('fuse: a car without 6 A on three phases charges on one, through its rotation', () => {
        // 20 A per phase; L2 and L3 carry 16 A of household: 4 A left there, 20 A on L1.
        const loop = new SwitchLoop(switching(), { maxTotalCurrent: 20_000 });
        loop.household = [0, 16_000, 16_000];
        assert.equal(loop.run(5000).current, 0);
        assert.equal(loop.sp.state, 'paused');
        const at = loop.untilSwitched(400_000)!;
        assert.ok(at !== undefined);
        assert.equal(loop.switched[0]!.to, 1);
        // After the pause it charges on L1 with all of L1's room.
        loop.run(p.minPauseTimeMs);
        assert.equal(loop.sp.current, 16_000);
        assert.equal(loop.sp.phases, 0b001);

        // The same with the wallbox's L1 on building L2 (120°): one phase would not fit either.
        const turned = new SwitchLoop(switching({ phaseRotation: 120 }), {
            maxTotalCurrent: 20_000,
        });
        turned.household = [0, 16_000, 16_000];
        turned.run(600_000);
        assert.equal(turned.switched.length, 0);
        assert.equal(turned.sp.current, 0);
    });

    it('during a switch the wallbox is counted on the phases of both phase counts until confirmed', () => {
        const loop = new SwitchLoop(switching({ usedPhases: 0 }), {});
        loop.surplusW = 3000;
        loop.untilSwitched(200_000);
        loop.run(p.phaseSettleMs + 5000);
        assert.equal(loop.sp.phases, 0b001);
        loop.surplusW = 9000;
        const seen: EvseSetpoint[] = [];
        for (let t = 0; t < p.phaseSwitchIntervalMs + p.phaseUpDelayMs; t += 1000) {
            seen.push(loop.step());
            if (loop.switched.length === 2) break;
        }
        const stages = seen.filter((s) => s.switching && s.switching !== 'settling');
        assert.ok(stages.length > 0);
        for (const s of stages) {
            assert.equal(s.phases, 0b111, `stage ${s.switching}`);
            assert.equal(s.current, 0);
        }
    });

    it('never under load: a car that keeps drawing past the stop wait keeps its phases', () => {
        const loop = new SwitchLoop(switching(), { phaseStopWaitMs: 10_000 });
        loop.surplusW = 8000;
        loop.run(10_000);
        loop.followMs = Infinity; // a car that ignores the stop
        loop.surplusW = 3000;
        loop.run(p.phaseDownDelayMs + 60_000);
        assert.equal(loop.switched.length, 0, 'the contactor never moved');
        assert.equal(loop.contactor, 3);
    });

    it('a slow car: the switch waits until it has stopped drawing', () => {
        const loop = new SwitchLoop(switching(), {});
        loop.surplusW = 8000;
        loop.run(10_000);
        loop.followMs = 5000;
        loop.surplusW = 3000;
        const at = loop.untilSwitched(200_000);
        assert.ok(at !== undefined, 'switched once the car had stopped');
    });

    it('without a meter: the bounded wait, then the switch', () => {
        const loop = new SwitchLoop(switching({ usedPhases: 7 }), {});
        loop.metered = false;
        loop.surplusW = 3000;
        loop.run(5000);
        const at = loop.untilSwitched(200_000);
        assert.ok(at !== undefined);
    });

    it('a wallbox that refuses: no more tries in the session, counted on all phases', () => {
        const loop = new SwitchLoop(switching(), {});
        loop.refuse = true;
        loop.surplusW = 3000;
        loop.run(p.phaseDownDelayMs + 30_000);
        assert.equal(loop.memory.evses.get('E1')!.switchRefused, true);
        loop.run(p.phaseSwitchIntervalMs + 120_000);
        assert.equal(loop.sp.phaseCount, 3);
        assert.equal(loop.sp.phases, 0b111);
        assert.equal(loop.sp.state, 'idle');
    });

    it('manual choice: per session at once; fixed per wallbox', () => {
        const loop = new SwitchLoop(switching(), {});
        loop.surplusW = 20_000;
        loop.run(10_000);
        loop.choice = 1;
        assert.ok(loop.untilSwitched(30_000)! - loop.now < 30_000);
        assert.equal(loop.contactor, 1);
        loop.run(p.phaseSettleMs + 5000);
        assert.equal(loop.sp.current, 16_000);
        loop.run(p.phaseUpDelayMs + p.phaseSwitchIntervalMs);
        assert.equal(loop.switched.length, 1, 'the choice holds against the surplus');

        const fixed = new SwitchLoop(switching({ phaseSwitch: { fixed: 3 } }), {});
        fixed.contactor = 1;
        fixed.surplusW = 3000;
        fixed.run(300_000);
        assert.deepEqual(
            fixed.switched.map((s) => s.to),
            [3],
            'switched to its fixed three phases once, whatever the surplus',
        );
    });

    it('a wallbox that does not switch is never asked to', () => {
        const loop = new SwitchLoop(evse('E1', { usedPhases: 0 }), {});
        loop.surplusW = 3000;
        loop.run(900_000);
        assert.equal(loop.switched.length, 0);
        assert.equal(loop.sp.phaseCount, undefined);
    });
});
