// Price lists in the shapes the tariff nodes send: Tibber, aWATTar, start/end/price, priceData;
// units, levels, and refusals that name what is wrong.
import assert from 'node:assert/strict';
import {
    levelOf,
    parsePriceList,
    PriceListError,
    PriceSource,
    slotAt,
} from '../../../lib/prices/price-list';

const H = 3_600_000;
const T0 = Date.parse('2026-12-03T00:00:00+01:00');
const iso = (h: number) => new Date(T0 + h * H).toISOString();

describe('price lists', () => {
    it('Tibber entries: total per kWh, the level named, each lasting until the next', () => {
        const slots = parsePriceList([
            { startsAt: iso(1), total: 0.31, level: 'EXPENSIVE', energy: 0.2, tax: 0.11 },
            { startsAt: iso(0), total: 0.21, level: 'CHEAP' },
            { startsAt: iso(2), total: 0.12, level: 'VERY_CHEAP' },
        ]);
        assert.deepEqual(slots, [
            { start: T0, end: T0 + H, price: 0.21, level: 2 },
            { start: T0 + H, end: T0 + 2 * H, price: 0.31, level: 4 },
            { start: T0 + 2 * H, end: T0 + 3 * H, price: 0.12, level: 1 },
        ]);
    });

    it('Tibber quarter hours last a quarter hour, also the last one', () => {
        const q = 15 * 60_000;
        const slots = parsePriceList(
            [0, 1, 2].map((i) => ({ startsAt: new Date(T0 + i * q).toISOString(), total: 0.2 })),
        );
        assert.deepEqual(
            slots.map((s) => s.end - s.start),
            [q, q, q],
        );
    });

    it("the tibber-query node's answer: today and tomorrow, home or homes[0]", () => {
        const info = {
            today: [{ startsAt: iso(0), total: 0.2, level: 'NORMAL' }],
            tomorrow: [{ startsAt: iso(24), total: 0.1, level: 'CHEAP' }],
        };
        const home = { viewer: { home: { currentSubscription: { priceInfo: info } } } };
        const homes = { viewer: { homes: [{ currentSubscription: { priceInfo: info } }] } };
        for (const payload of [home, homes, info, { priceInfo: info }]) {
            const slots = parsePriceList(payload);
            assert.deepEqual(
                slots.map((s) => [s.start, s.price, s.level]),
                [
                    [T0, 0.2, 3],
                    [T0 + 24 * H, 0.1, 2],
                ],
            );
        }
        // tomorrow not published yet
        assert.equal(parsePriceList({ today: info.today, tomorrow: [] }).length, 1);
    });

    it("aWATTar's API: marketprice in Eur/MWh, times in ms", () => {
        const slots = parsePriceList({
            object: 'list',
            data: [
                { start_timestamp: T0, end_timestamp: T0 + H, marketprice: 85.96, unit: 'Eur/MWh' },
                { start_timestamp: T0 + H, end_timestamp: T0 + 2 * H, marketprice: -5.12 },
            ],
            url: '/at/v1/marketdata',
        });
        assert.deepEqual(
            slots.map((s) => [s.start, s.end, s.price]),
            [
                [T0, T0 + H, 0.08596],
                [T0 + H, T0 + 2 * H, -0.00512],
            ],
        );
    });

    it('{start, end, price}: €/MWh unless the entry, the payload or the caller says otherwise', () => {
        const entry = (price: number, unit?: string) => ({
            start: iso(0),
            end: iso(1),
            price,
            ...(unit ? { unit } : {}),
        });
        assert.equal(parsePriceList([entry(120)])[0]!.price, 0.12);
        assert.equal(parsePriceList([entry(0.3, 'EUR/kWh')])[0]!.price, 0.3);
        assert.equal(parsePriceList([entry(30, 'ct/kWh')])[0]!.price, 0.3);
        assert.equal(parsePriceList([entry(30)], 'ct/kWh')[0]!.price, 0.3);
        assert.equal(parsePriceList({ unit: 'EUR/kWh', prices: [entry(0.3)] })[0]!.price, 0.3);
        // Unix seconds as well as ms
        assert.equal(
            parsePriceList([{ start: T0 / 1000, end: T0 / 1000 + 3600, price: 100 }])[0]!.start,
            T0,
        );
    });

    it("power-saver's priceData: {start, value} per kWh", () => {
        const slots = parsePriceList({
            priceData: [
                { start: iso(0), value: 0.4 },
                { start: iso(1), value: 0.2 },
            ],
        });
        assert.deepEqual(
            slots.map((s) => [s.price, s.end - s.start]),
            [
                [0.4, H],
                [0.2, H],
            ],
        );
    });

    it('levels without a source level: against the average, as Tibber defines them', () => {
        assert.equal(levelOf(0.6, 1), 1);
        assert.equal(levelOf(0.61, 1), 2);
        assert.equal(levelOf(0.9, 1), 2);
        assert.equal(levelOf(1, 1), 3);
        assert.equal(levelOf(1.15, 1), 4);
        assert.equal(levelOf(1.4, 1), 5);
        assert.equal(levelOf(-0.1, 1), 1, 'a negative price is very cheap');
        assert.equal(levelOf(-1, -0.5), 1);
        assert.equal(levelOf(0.1, -0.5), 5);
        // average of 50, 100, 150 MWh = 100
        const slots = parsePriceList(
            [50, 100, 150].map((p, i) => ({ start: iso(i), end: iso(i + 1), price: p })),
        );
        assert.deepEqual(
            slots.map((s) => s.level),
            [1, 3, 5],
        );
    });

    it('refuses a list whole, naming the entry and the field', () => {
        const refuses = (payload: unknown, re: RegExp) =>
            assert.throws(
                () => parsePriceList(payload),
                (err: unknown) => err instanceof PriceListError && re.test(err.message),
                JSON.stringify(payload),
            );
        const good = { startsAt: iso(0), total: 0.2 };
        refuses([good, { startsAt: iso(1), total: 'x' }], /^payload\[1\]\.total: /);
        refuses([good, { startsAt: 'soon', total: 0.2 }], /^payload\[1\]\.startsAt: not a time/);
        refuses([good, { startsAt: iso(1), total: 0.2, level: 'CHEAPISH' }], /payload\[1\]\.level/);
        refuses(
            { data: [{ start_timestamp: T0, end_timestamp: T0 + H }] },
            /payload\.data\[0\]\.marketprice/,
        );
        refuses([good, { foo: 1 }], /^payload\[1\]: not a price entry/);
        refuses([], /^payload: no prices/);
        refuses({ today: [], tomorrow: [] }, /no prices/);
        refuses('0.25', /^payload: a price list/);
        refuses({ price: 1 }, /^payload: no price list found/);
        refuses([good, { startsAt: iso(0), total: 0.3 }], /two prices for/);
        refuses(
            [
                { start: iso(0), end: iso(2), price: 1 },
                { start: iso(1), end: iso(3), price: 1 },
            ],
            /overlaps the next one/,
        );
        refuses([{ start: iso(1), end: iso(0), price: 1 }], /ends before it starts/);
        refuses(
            [{ start: iso(0), end: iso(1), price: 1, unit: 'Eur/l' }],
            /payload\[0\]\.unit: unknown unit/,
        );
        refuses(
            Array.from({ length: 1001 }, (_, i) => ({ startsAt: iso(i), total: 1 })),
            /at most 1000/,
        );
    });

    it('slotAt finds the slot that covers a time; gaps and the outside have none', () => {
        const slots = parsePriceList([
            { start: iso(0), end: iso(1), price: 1 },
            { start: iso(2), end: iso(3), price: 2 },
            { start: iso(3), end: iso(4), price: 3 },
        ]);
        assert.equal(slotAt(slots, T0 - 1), undefined);
        assert.equal(slotAt(slots, T0)!.price, 0.001);
        assert.equal(slotAt(slots, T0 + H), undefined, 'gap');
        assert.equal(slotAt(slots, T0 + 3 * H)!.price, 0.003);
        assert.equal(slotAt(slots, T0 + 4 * H), undefined);
    });

    it("the source: the vendor's variables win over the list; none without either", () => {
        const source = new PriceSource();
        assert.deepEqual(source.at(T0), { price: undefined, level: undefined, source: 'none' });
        source.set(parsePriceList([{ startsAt: iso(0), total: 0.3, level: 'EXPENSIVE' }]));
        assert.deepEqual(source.at(T0 + 1), { price: 0.3, level: 4, source: 'list' });
        assert.deepEqual(source.at(T0 + 1, { level: 1 }), {
            price: 0.3,
            level: 1,
            source: 'variables',
        });
        assert.deepEqual(source.at(T0 + 1, { price: 0.1 }), {
            price: 0.1,
            level: 4,
            source: 'variables',
        });
        assert.equal(source.at(T0 + 2 * H).source, 'none', 'after the list');
    });
});
