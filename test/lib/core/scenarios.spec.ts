// One table test per scenario, each with the setpoints a person would expect.
import assert from 'node:assert/strict';
import { allocate } from '../../../lib/core/allocate';
import { emptyMemory } from '../../../lib/core/defaults';
import { MeterRole } from '../../../lib/core/types';
import { evse, group, LoopSite, meter, PLAIN, siteConfig } from '../../support/site';

const grid = meter('M1', MeterRole.gridDemand);

describe('allocator scenarios', () => {
    it('three wallboxes on a 32 A fuse under a changing household load', () => {
        // 35 A fuse with a 3 A reserve: 32 A for everything, steps up to 3 A are absorbed.
        const params = { ...PLAIN, maxTotalCurrent: 35000, reserveCurrent: 3000 };
        const site = new LoopSite(siteConfig(params, [evse('E1'), evse('E2'), evse('E3')], [grid]));
        site.plug('E1').plug('E2').plug('E3');
        site.household = [5000, 5000, 5000];
        site.step();
        // 27 A left for three cars: 9 A each.
        assert.deepEqual(site.run(5000), { E1: 9000, E2: 9000, E3: 9000 });

        const steps: [number, Record<string, number>][] = [
            [8000, { E1: 8000, E2: 8000, E3: 8000 }],
            [11000, { E1: 7000, E2: 7000, E3: 7000 }],
            [14000, { E1: 6000, E2: 6000, E3: 6000 }],
            // 15 A: two cars at their minimum, the last to arrive pauses.
            [17000, { E1: 6000, E2: 6000, E3: 0 }],
        ];
        for (const [household, expected] of steps) {
            site.household = [household, household, household];
            assert.deepEqual(site.step(), expected, `down at once at ${household} mA`);
        }
        assert.equal(site.last!.setpoints.get('E3')!.state, 'paused');
        assert.equal(site.last!.site.overdraftMax, 0, 'no step exceeded the reserve');

        site.household = [2000, 2000, 2000];
        // E3 stays paused for the minimum pause; the others share the 30 A.
        assert.deepEqual(site.run(60_000), { E1: 15000, E2: 15000, E3: 0 });
        // After five minutes E3 is back and all three share equally.
        assert.deepEqual(site.run(300_000), { E1: 10000, E2: 10000, E3: 10000 });
    });

    it('a meter whose last read failed is not trusted, however recent its last value', () => {
        const config = siteConfig({ ...PLAIN, maxTotalCurrent: 32_000 }, [evse('E1')], [grid]);
        const decide = (error?: string) =>
            allocate(
                {
                    now: 10_000,
                    meters: new Map([
                        [
                            'M1',
                            {
                                reading: { powerW: 0, currents: [1000, 1000, 1000] },
                                takenAt: 9900,
                                ...(error ? { error } : {}),
                            },
                        ],
                    ]),
                    evses: new Map([['E1', { reading: { state: 2 }, takenAt: 9900 }]]),
                },
                config,
                emptyMemory(),
            );
        assert.equal(decide().site.failSafe, false);
        const failed = decide('read M1: no answer within 2000 ms');
        assert.equal(failed.site.failSafe, true);
        assert.deepEqual(failed.site.staleMeters, ['M1']);
        assert.ok(failed.setpoints.get('E1')!.current <= 6000);
    });

    it('a cut between cycles only lowers, and a car it cuts to nothing starts no pause', () => {
        // Without the overdraw penalty, which would cut both cars here.
        const params = {
            ...PLAIN,
            maxTotalCurrent: 32_000,
            increaseHoldMs: 10_000,
            overdrawPenaltyMs: 0,
        };
        const site = new LoopSite(siteConfig(params, [evse('E1'), evse('E2')], [grid]));
        site.plug('E1').plug('E2');
        site.household = [4000, 4000, 4000];
        assert.deepEqual(site.run(5000), { E1: 14_000, E2: 14_000 });
        // More room than before: a cut raises nobody.
        site.household = [0, 0, 0];
        assert.deepEqual(site.cut(), { E1: 14_000, E2: 14_000 });
        // 7 A left for two cars: one keeps charging, the other gets nothing, without a pause.
        site.household = [25_000, 25_000, 25_000];
        assert.deepEqual(site.cut(), { E1: 7000, E2: 0 });
        assert.equal(site.last!.memory.evses.get('E2')!.pausedSince, null);
        // Room again: E2 is back once the increase hold has passed, not after min_pause_time.
        site.household = [4000, 4000, 4000];
        const back = site.run(12_000);
        assert.ok(back.E2! >= 6000, JSON.stringify(back));
        // The same cut taken by a full cycle pauses E2 for the whole minimum pause.
        site.household = [25_000, 25_000, 25_000];
        assert.deepEqual(site.step(), { E1: 7000, E2: 0 });
        site.household = [4000, 4000, 4000];
        assert.equal(site.run(60_000).E2, 0);
    });

    it('an overdraw beyond the reserve cuts the available current by it for five minutes', () => {
        const params = { ...PLAIN, maxTotalCurrent: 35000, reserveCurrent: 3000 };
        const site = new LoopSite(siteConfig(params, [evse('E1'), evse('E2')], [grid]));
        site.plug('E1').plug('E2');
        site.household = [4000, 4000, 4000];
        assert.deepEqual(site.run(5000), { E1: 14000, E2: 14000 });
        // A 10 A step: the fuse sees 42 A, 7 A over its 35 A.
        site.household = [14000, 14000, 14000];
        // 32 A − 7 A penalty − 14 A household = 11 A: room for one car only.
        assert.deepEqual(site.step(), { E1: 11000, E2: 0 });
        assert.equal(site.last!.site.overdraftMax, 7000);
        assert.equal(site.last!.site.penalty, 7000);
        assert.deepEqual(site.run(200_000), { E1: 11000, E2: 0 }, 'penalty still active');
        assert.deepEqual(site.run(110_000), { E1: 9000, E2: 9000 }, 'penalty over');
        assert.equal(site.last!.site.penalty, 0);
        assert.equal(site.last!.site.overdraftMax, 7000, 'the record stays');

        // Without a penalty time an overdraw is recorded but cuts nothing.
        const free = new LoopSite(
            siteConfig({ ...params, overdrawPenaltyMs: 0 }, [evse('E1'), evse('E2')], [grid]),
        );
        free.plug('E1').plug('E2');
        free.household = [4000, 4000, 4000];
        free.run(5000);
        free.household = [14000, 14000, 14000];
        assert.deepEqual(free.step(), { E1: 9000, E2: 9000 });
        assert.equal(free.last!.site.overdraftMax, 7000);
    });

    it('a 1-phase car on L1 beside a 3-phase car', () => {
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 25000 },
                [evse('E1', { usedPhases: 0 }), evse('E2')],
                [grid],
            ),
        );
        site.plug('E1', 0b001).plug('E2', 0b111);
        site.household = [10000, 2000, 2000];
        site.step();
        // L1 has 15 A for two cars; L2 and L3 have 23 A for the 3-phase car alone.
        assert.deepEqual(site.run(5000), { E1: 7500, E2: 7500 });
        // The 1-phase car was learned as such: only L1 is counted for it.
        assert.equal(site.last!.setpoints.get('E1')!.phases, 0b001);
        assert.equal(site.last!.setpoints.get('E2')!.phases, 0b111);
    });

    it('a car whose phases are not known yet counts on all three, then on what it uses', () => {
        const site = new LoopSite(siteConfig(PLAIN, [evse('E1', { usedPhases: 0 })], [grid]));
        site.plug('E1', 0b001);
        site.step();
        assert.equal(site.last!.setpoints.get('E1')!.phases, 0b111, 'unknown: every phase');
        site.step();
        assert.equal(site.last!.setpoints.get('E1')!.phases, 0b001, 'learned from its meter');
        site.unplug('E1').step();
        site.plug('E1', 0b111).step();
        assert.equal(site.last!.setpoints.get('E1')!.phases, 0b111, 'forgotten at unplug');
        site.step();
        assert.equal(site.last!.setpoints.get('E1')!.phases, 0b111);
    });

    it('a grid meter that reports power only: a single-phase car stays within the fuse', () => {
        // The meter cannot tell phases apart. The car's own draw, known per phase, comes off the
        // meter's total and the rest is taken as balanced: nothing is left for a negative load
        // on the car's phase that would let it rise past the fuse.
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 20000 },
                [evse('E1', { usedPhases: 1, maxCurrent: 32000 })],
                [grid],
            ),
        );
        site.powerOnly.add('M1');
        site.plug('E1', 0b001);
        assert.deepEqual(site.run(30_000), { E1: 20000 });
        // 9 A of household spread over three phases: 3 A on each.
        site.household = [9000, 0, 0];
        assert.deepEqual(site.run(5000), { E1: 17000 });
    });

    it('a wallbox without a meter whose car does not charge yet is not taken off the household', () => {
        // E1 has no meter and its car waits in state B (a timer in the car): it draws nothing of
        // the 12 A it is allowed. Counting it at 12 A off the grid meter would make the household
        // look 12 A smaller and hand that to E2; the fuse would see 28 A once E1's car starts.
        const site = new LoopSite(
            siteConfig({ ...PLAIN, maxTotalCurrent: 24000 }, [evse('E1'), evse('E2')], [grid]),
        );
        site.unmetered.add('E1');
        site.plug('E1', 0b111, 0).plug('E2');
        assert.deepEqual(site.run(30_000), { E1: 12000, E2: 12000 });
        assert.equal(site.snapshot().evses.get('E1')!.reading!.state, 2, 'E1 waits in state B');
        // The car starts: the two fit the 24 A.
        site.cars.get('E1')!.draws = 16000;
        assert.deepEqual(site.run(10_000), { E1: 12000, E2: 12000 });
    });

    it('a wallbox that could not be read counts on all three phases until it shows its car again', () => {
        // L2 and L3 carry 10 A of household on a 20 A fuse. E1 charges a single-phase car on L1.
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 20000 },
                [evse('E1', { usedPhases: 0 }), evse('E2')],
                [grid],
            ),
        );
        site.household = [0, 10000, 10000];
        site.plug('E1', 0b001).plug('E2');
        assert.deepEqual(site.run(10_000), { E1: 10000, E2: 10000 });
        assert.equal(site.last!.setpoints.get('E1')!.phases, 0b001);
        // E1 stops answering; meanwhile its car leaves and a three-phase car arrives that waits
        // in state B. The manager cannot know it is another car.
        site.silent.add('E1');
        site.run(30_000);
        site.unplug('E1').plug('E1', 0b111, 0);
        site.run(30_000);
        site.silent.delete('E1');
        site.step();
        assert.equal(site.last!.setpoints.get('E1')!.phases, 0b111, 'counted on every phase');
        // Whatever it may draw once it starts fits L2's 10 A beside E2.
        const { E1, E2 } = site.currents();
        assert.ok(E1! + E2! <= 10000, `E1 ${E1} + E2 ${E2} on L2`);
    });

    it('phase rotation 120°: a 1-phase car on wallbox L1 loads building L2', () => {
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 32000 },
                [evse('E1', { usedPhases: 1, phaseRotation: 120 }), evse('E2', { usedPhases: 1 })],
                [grid],
            ),
        );
        site.plug('E1', 0b001).plug('E2', 0b001);
        site.household = [10000, 24000, 0];
        site.step();
        // E1 sits on building L2 (8 A left), E2 on L1 (22 A left, capped at 16 A).
        assert.deepEqual(site.run(3000), { E1: 8000, E2: 16000 });
        assert.equal(site.last!.setpoints.get('E1')!.phases, 0b010);
    });

    it('four wallboxes behind a 20 A sub-feeder group', () => {
        const evses = ['E2', 'E3', 'E4', 'E5'].map((id) => evse(id, { group: 'E1' }));
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 63000 },
                [...evses, evse('E6')],
                [grid],
                [group('E1', 20000)],
            ),
        );
        for (const id of ['E2', 'E3', 'E4', 'E5', 'E6']) site.plug(id);
        site.step();
        // 20 A for four cars cannot give each 6 A: three share it, one waits; E6 is outside.
        assert.deepEqual(site.run(3000), { E2: 6666, E3: 6666, E4: 6666, E5: 0, E6: 16000 });
        site.unplug('E2');
        assert.deepEqual(site.run(15_000), { E2: 0, E3: 6666, E4: 6666, E5: 6666, E6: 16000 });
    });

    it('a car that draws 8 A of the 16 A it is given: the rest goes to others', () => {
        const site = new LoopSite(
            siteConfig({ ...PLAIN, maxTotalCurrent: 24000 }, [evse('E1'), evse('E2')], [grid]),
        );
        site.plug('E1', 7, 8000).plug('E2');
        site.step();
        assert.deepEqual(site.run(5000), { E1: 12000, E2: 12000 });
        // After a minute of drawing 8 A, E1 is counted at 8 A + 2 A margin.
        assert.deepEqual(site.run(70_000), { E1: 10000, E2: 14000 });
        // The car wants more again: once it draws close to what it has, it gets its share back.
        site.cars.get('E1')!.draws = 16000;
        assert.deepEqual(site.run(30_000), { E1: 12000, E2: 12000 });
    });

    it('the grid meter goes silent: fail-safe within one cycle, no rise until it is back', () => {
        const site = new LoopSite(
            siteConfig(PLAIN, [evse('E1'), evse('E2', { failSafeCurrent: 0 })], [grid]),
        );
        site.plug('E1').plug('E2');
        site.household = [4000, 4000, 4000];
        assert.deepEqual(site.run(5000), { E1: 14000, E2: 14000 });
        site.silent.add('M1');
        // The last reading is 1 s old: still trusted; at 11 s it is stale.
        site.run(10_000);
        assert.deepEqual(site.step(), { E1: 6000, E2: 0 });
        assert.equal(site.last!.site.failSafe, true);
        assert.deepEqual(site.last!.site.staleMeters, ['M1']);
        assert.deepEqual(site.run(60_000), { E1: 6000, E2: 0 });
        site.silent.delete('M1');
        assert.deepEqual(site.run(400_000), { E1: 14000, E2: 14000 });
    });

    it('a 20 A (4.6 kVA) imbalance limit between 1-phase cars', () => {
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 63000, maxImbalance: 20000 },
                [
                    evse('E1', { usedPhases: 1, maxCurrent: 32000 }),
                    evse('E2', { usedPhases: 1, maxCurrent: 32000 }),
                    evse('E3', { usedPhases: 1, maxCurrent: 32000, phaseRotation: 120 }),
                ],
                [grid],
            ),
        );
        site.plug('E1', 1).plug('E2', 1);
        site.step();
        // Both on L1: together at most 20 A more than L2/L3 (which carry nothing).
        assert.deepEqual(site.run(3000), { E1: 10000, E2: 10000, E3: 0 });
        site.plug('E3', 1);
        // A car on L2 lifts the floor... but L3 stays empty, so L1 still cannot exceed 20 A.
        assert.deepEqual(site.run(20_000), { E1: 10000, E2: 10000, E3: 20000 });
    });

    it('a pause that rotates fairly between three cars on a short supply', () => {
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 10000, increaseHoldMs: 5000 },
                [evse('E1'), evse('E2'), evse('E3')],
                [grid],
            ),
        );
        site.plug('E1').plug('E2').plug('E3');
        const charging = () =>
            Object.entries(site.currents())
                .filter(([, c]) => c > 0)
                .map(([id]) => id)
                .join();
        site.step();
        const turns: string[] = [charging()];
        for (let i = 0; i < 6; i++) {
            site.run(300_000 + 10_000);
            turns.push(charging());
        }
        assert.deepEqual(turns, ['E1', 'E2', 'E3', 'E1', 'E2', 'E3', 'E1']);
        assert.equal(site.currents()['E1'], 10000);
    });

    it('battery save: a car that keeps drawing less than the threshold is full and stops', () => {
        // 32 A for two cars. E1 stops charging when its car, having charged, draws < 3 A.
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 32000, underdrawAfterMs: 600_000 },
                [evse('E1', { batterySaveThreshold: 3000 }), evse('E2')],
                [grid],
            ),
        );
        site.plug('E1').plug('E2');
        assert.deepEqual(site.run(70_000), { E1: 16000, E2: 16000 });
        // The battery is nearly full: the car takes only 2 A of its 16 A.
        site.cars.get('E1')!.draws = 2000;
        assert.deepEqual(site.run(29_000), { E1: 16000, E2: 16000 }, 'not after 29 s');
        assert.deepEqual(site.run(2000), { E1: 0, E2: 16000 }, 'full after 30 s below 3 A');
        assert.equal(site.last!.setpoints.get('E1')!.state, 'idle', 'not a pause for power');
        // It stays stopped, even with the power there, until the car leaves.
        site.cars.get('E1')!.draws = 16000;
        assert.deepEqual(site.run(600_000), { E1: 0, E2: 16000 });
        site.unplug('E1');
        site.step();
        site.plug('E1');
        assert.deepEqual(site.run(5000), { E1: 16000, E2: 16000 }, 'the next car charges');
    });

    it('battery save does not stop a car that the manager itself holds below the threshold', () => {
        // Threshold 10 A; the household leaves E1 only 7 A, and it draws all of it.
        const site = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 32000 },
                [evse('E1', { batterySaveThreshold: 10_000 })],
                [grid],
            ),
        );
        site.plug('E1');
        site.household = [4000, 4000, 4000];
        assert.deepEqual(site.run(70_000), { E1: 16000 });
        site.household = [25000, 25000, 25000];
        assert.deepEqual(site.run(600_000), { E1: 7000 }, 'charging on at what it gets');
        // A car that never drew the threshold in this session is not taken for full either.
        const fresh = new LoopSite(
            siteConfig(
                { ...PLAIN, maxTotalCurrent: 32000, underdrawAfterMs: 600_000 },
                [evse('E1', { batterySaveThreshold: 3000 })],
                [grid],
            ),
        );
        fresh.plug('E1', 7, 2000);
        assert.deepEqual(fresh.run(300_000), { E1: 16000 });
    });
});
