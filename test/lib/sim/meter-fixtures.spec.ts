// The meter and inverter fixtures on their own, before any definition reads them: each is served
// over Modbus TCP and answers the documented words, every state says what a reader must make of
// it, and each SunSpec image is a chain a reader can walk by its length registers.
import assert from 'node:assert/strict';
import { FIXTURES } from '../../../lib/sim/fixtures';
import { RegisterSim } from '../../../lib/sim/register-sim';
import { independentClient } from '../../support/modbus';

const METER_TYPES = /^(meter|inverter)_/;

describe('sim/fixtures: meters and inverters', function () {
    this.timeout(15000);
    const meters = FIXTURES.filter((f) => METER_TYPES.test(f.type));

    it('has at least eight families, each with two states that name power and energy', () => {
        assert.ok(meters.length >= 8, `${meters.length} fixtures`);
        for (const f of meters) {
            const states = Object.entries(f.states);
            assert.ok(states.length >= 2, `${f.type}: ${states.length} states`);
            assert.match(f.source, /\S{8}/);
            for (const [name, s] of states) {
                assert.equal(typeof s.expect.powerW, 'number', `${f.type} ${name}: powerW`);
                assert.ok(
                    s.expect.importWh !== undefined || s.expect.exportWh !== undefined,
                    `${f.type} ${name}: energy`,
                );
            }
        }
    });

    it('every meter has an import and an export state, every inverter a producing and a night one', () => {
        for (const f of meters) {
            const names = Object.keys(f.states);
            const powers = Object.values(f.states).map((s) => s.expect.powerW!);
            if (names.includes('producing')) {
                assert.ok(names.includes('night'), f.type);
                assert.equal(f.states.night!.expect.powerW, 0, `${f.type}: no power at night`);
                assert.ok(f.states.producing!.expect.powerW! > 0, f.type);
            } else {
                assert.deepEqual(names, ['import', 'export'], f.type);
                assert.ok(powers[0]! > 0 && powers[1]! < 0, `${f.type}: ${powers.join(', ')}`);
            }
        }
    });

    it('serves each fixture on TCP: the first register it lists answers its word', async () => {
        for (const f of meters) {
            const sim = new RegisterSim(f);
            const port = await sim.listen();
            try {
                const [state] = Object.values(f.states);
                const words = { ...f.holding, ...state!.holding };
                await independentClient(port, f.unit, async (c) => {
                    const read =
                        f.oneSpace || !f.input ? c.readHoldingRegisters : c.readInputRegisters;
                    const space = f.oneSpace || !f.input ? words : { ...f.input, ...state!.input };
                    const start = Math.min(...Object.keys(space).map(Number));
                    const got = (await read.call(c, start, 1)).data;
                    assert.deepEqual(got, [space[start]], f.type);
                });
            } finally {
                await sim.close();
            }
        }
    });

    it('SunSpec images: SunS at the base, then models chained by L up to 0xFFFF', () => {
        const bases: Record<string, number> = {};
        for (const f of meters.filter((x) => /sunspec/.test(x.type))) {
            for (const [name, s] of Object.entries(f.states)) {
                const w = s.holding!;
                const base = [0, 40000, 50000].find((b) => w[b] === 0x5375 && w[b + 1] === 0x6e53);
                assert.notEqual(base, undefined, `${f.type} ${name}: no SunS`);
                const ids: number[] = [];
                let a = base! + 2;
                while (w[a] !== 0xffff) {
                    assert.notEqual(w[a], undefined, `${f.type}: chain leaves the image at ${a}`);
                    ids.push(w[a]!);
                    const length = w[a + 1]!;
                    for (let i = 0; i < length + 2; i++) assert.notEqual(w[a + i], undefined);
                    a += 2 + length;
                }
                assert.equal(w[a + 1], 0, 'end marker length 0');
                assert.equal(ids[0], 1, 'the common model comes first');
                bases[`${f.title}`] = base!;
            }
        }
        // One image away from 40000, so that a reader must try the other bases.
        assert.ok(Object.values(bases).some((b) => b !== 40000));
    });
});
