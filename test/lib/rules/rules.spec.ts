import assert from 'node:assert/strict';
import {
    ChargingRuleSchema,
    combineRuleResults,
    evaluateRules,
    localTime,
    pvSurplusW,
    type ChargingRule,
    type RuleEnvironment,
} from '../../../lib/rules/rules';

const rule = (r: Record<string, unknown>): ChargingRule => ChargingRuleSchema.parse(r);

/** Tuesday 14:30, a 16 A wallbox, 3-phase car, 6.9 kW of PV of which 4.6 kW surplus. */
const ENV: RuleEnvironment = {
    weekday: 1,
    minute: 14 * 60 + 30,
    maxCurrent: 16_000,
    minCurrent: 6000,
    phases: 3,
    voltage: 230,
    solarPowerW: 6900,
    surplusPowerW: 4600,
};

const current = (rules: ChargingRule[], env: Partial<RuleEnvironment> = {}) =>
    evaluateRules(rules, { ...ENV, ...env }, 0).current;

describe('charging rules', () => {
    it('every mode gives its current', () => {
        assert.equal(current([rule({ mode: 0, current: 10_000 })]), 10_000, 'absolute');
        assert.equal(current([rule({ mode: 1, current: 50 })]), 8000, 'relative to the maximum');
        assert.equal(current([rule({ mode: 2 })]), 10_000, 'solar current: 6.9 kW / 230 V / 3');
        assert.equal(current([rule({ mode: 3, current: 50 })]), 5000, 'share of the solar current');
        assert.equal(
            current([rule({ mode: 4, current: 3000 })]),
            7000,
            'solar current minus a value',
        );
        assert.equal(current([rule({ mode: 5 })]), 6666, 'surplus: 4.6 kW / 230 V / 3 phases');
        assert.equal(current([rule({ mode: 5 })], { phases: 1 }), 20_000, 'surplus on one phase');
        assert.equal(current([rule({ mode: 4, current: 20_000 })]), 0, 'never negative');
    });

    it('days and time windows, also across midnight', () => {
        const night = rule({ mode: 0, current: 16_000, time: 22 * 60, dur: 8 * 60 });
        assert.equal(current([night], { minute: 23 * 60 }), 16_000);
        assert.equal(current([night], { minute: 5 * 60 }), 16_000, 'after midnight');
        assert.equal(current([night], { minute: 7 * 60 }), 0, 'rules exist, none matches: 0');
        const weekend = rule({ mode: 0, current: 12_000, days: 0b1100000 });
        assert.equal(current([weekend], { weekday: 5 }), 12_000, 'Saturday');
        assert.equal(current([weekend], { weekday: 1 }), 0, 'Tuesday');
    });

    it('first match wins; no enabled rules means no limit', () => {
        const rules = [
            rule({ mode: 0, current: 8000, time: 14 * 60, dur: 60 }),
            rule({ mode: 0, current: 16_000 }),
        ];
        assert.equal(current(rules), 8000);
        assert.equal(current(rules, { minute: 16 * 60 }), 16_000);
        assert.equal(current([rule({ mode: 0, current: 8000, enabled: false })]), null);
        assert.equal(current([]), null);
        assert.equal(evaluateRules(rules, ENV, 0).matched, 0);
    });

    it('conditions: solar threshold, surplus threshold, inputs, price level, formulas', () => {
        assert.equal(
            current([rule({ mode: 0, current: 16_000, solar: 12_000 })]),
            0,
            'solar below 12 A',
        );
        assert.equal(current([rule({ mode: 0, current: 16_000, solar: 9000 })]), 16_000);
        assert.equal(current([rule({ mode: 5, solar: 6500 })]), 6666, 'surplus ≥ 6.5 A');
        assert.equal(current([rule({ mode: 5, solar: 7000 })]), 0);
        const inputs = (name: string) => ({ 'PB.input1': 1, 'PB.input2': 0 })[name];
        assert.equal(
            current([rule({ current: 9000, input: 'PB.input1' })], { resolve: inputs }),
            9000,
        );
        assert.equal(
            current([rule({ current: 9000, input: 'PB.input2' })], { resolve: inputs }),
            0,
        );
        assert.equal(
            current([rule({ current: 9000, input: 'PB.input2=0' })], { resolve: inputs }),
            9000,
        );
        assert.equal(
            current([rule({ current: 9000, input: 'PB.nothing' })], { resolve: inputs }),
            0,
        );
        assert.equal(current([rule({ current: 9000, price_level: 2 })], { priceLevel: 1 }), 9000);
        assert.equal(current([rule({ current: 9000, price_level: 2 })], { priceLevel: 3 }), 0);
        assert.equal(current([rule({ current: 9000, price_level: 2 })]), 0, 'no price known');
        const vars = (name: string) => ({ 'CM.AVAIL': 60 })[name];
        assert.equal(current([rule({ expr: '16000 * CM.AVAIL / 100' })], { resolve: vars }), 9600);
        const broken = evaluateRules(
            [rule({ expr: 'CM.missing * 2' }), rule({ current: 6000 })],
            {
                ...ENV,
                resolve: vars,
            },
            0,
        );
        assert.equal(broken.current, 6000, 'a rule whose formula fails does not match');
        assert.match(broken.errors[0]!, /CM\.missing/);
    });

    it('undercut keeps a charging car at its minimum for udur seconds, then lets it pause', () => {
        const rules = [rule({ mode: 5, udur: 300 })];
        let state = evaluateRules(rules, ENV, 0).state; // 6.6 A surplus: charging
        assert.equal(state.last, 6666);
        const cloudy = { ...ENV, surplusPowerW: 1000 };
        let r = evaluateRules(rules, cloudy, 1000, state);
        assert.equal(r.current, 6000, 'held at the minimum');
        r = evaluateRules(rules, cloudy, 250_000, r.state);
        assert.equal(r.current, 6000, 'still within 300 s');
        r = evaluateRules(rules, cloudy, 302_000, r.state);
        assert.equal(r.current, 1449, 'undercut over: below the minimum, so the car pauses');
        r = evaluateRules(rules, cloudy, 310_000, r.state);
        assert.equal(r.current, 1449, 'no second undercut while still low');
        state = evaluateRules(rules, ENV, 320_000, r.state).state;
        assert.equal(state.undercutSince, null, 'recovered');
        const neverCharged = evaluateRules(rules, cloudy, 0);
        assert.equal(neverCharged.current, 1449, 'undercut only holds a car that was charging');
    });

    it('EVSE and user rules: the smaller applies', () => {
        assert.equal(combineRuleResults(8000, 12_000), 8000);
        assert.equal(combineRuleResults(null, 12_000), 12_000);
        assert.equal(combineRuleResults(8000, null), 8000);
        assert.equal(combineRuleResults(null, null), null);
        assert.equal(combineRuleResults(0, 12_000), 0);
    });

    it('PV surplus from a grid meter or from production and consumption meters', () => {
        // Feeding in 2 kW while cars draw 3 kW: without the cars 5 kW would be fed in.
        assert.equal(pvSurplusW({ gridW: -2000, evseW: 3000 }), 5000);
        assert.equal(pvSurplusW({ gridW: 4000, evseW: 3000 }), 0);
        assert.equal(pvSurplusW({ productionW: 6000, consumptionW: 1500 }), 4500);
    });

    it('local weekday and minute', () => {
        assert.deepEqual(localTime(Date.UTC(2026, 10, 23, 19, 45), 0), {
            weekday: 0,
            minute: 1185,
        });
        assert.deepEqual(localTime(Date.UTC(2026, 10, 23, 23, 30), 60), { weekday: 1, minute: 30 });
    });

    it('rejects malformed rules with a message naming the field', () => {
        assert.throws(() => ChargingRuleSchema.parse({ mode: 9 }), /mode/);
        assert.throws(() => ChargingRuleSchema.parse({ days: 'weekends' }), /days/);
    });
});
