import assert from 'node:assert/strict';
import { BUILT_IN_DEFINITIONS } from '../../../lib/devices/definitions';
import { FIXTURES, fixtureFor } from '../../../lib/sim/fixtures';
import { f32, f64, u32 } from '../../../lib/sim/fixtures/words';
import { RegisterSim } from '../../../lib/sim/register-sim';
import { independentClient } from '../../support/modbus';

const wallboxes = FIXTURES.filter((f) => f.type.startsWith('evse_'));

describe('device fixtures', function () {
    this.timeout(10000);

    it('hand encodings: high word first, IEEE 754 in network byte order', () => {
        assert.deepEqual(u32(101_234), [1, 35_698]);
        assert.deepEqual(f32(16), [0x4180, 0]);
        assert.deepEqual(f32(10.5), [0x4128, 0]);
        assert.deepEqual(f64(1_234_567), [0x4132, 0xd687, 0, 0]);
    });

    it('one fixture per wallbox type, each with a built-in definition and a named document', () => {
        // Wallboxes have one fixture each; a meter type may have several (SunSpec models).
        assert.equal(new Set(wallboxes.map((f) => f.type)).size, wallboxes.length);
        for (const f of FIXTURES) {
            assert.ok(f.source.length > 20, `${f.type}: source names the document`);
            assert.ok(
                BUILT_IN_DEFINITIONS.some((d) => d.type === f.type),
                `${f.type}: a definition of that type`,
            );
            assert.equal(fixtureFor(f.type)?.type, f.type);
        }
        assert.ok(wallboxes.length >= 8, 'at least eight wallbox families');
    });

    for (const f of wallboxes) {
        it(`${f.type}: idle, plugged, charging and error states; writes only to writable registers`, () => {
            const states = new Set(Object.values(f.states).map((s) => s.expect.state));
            for (const s of [1, 2, 3, 5]) assert.ok(states.has(s), `${f.type}: a state ${s}`);
            assert.equal(Object.values(f.states)[0]!.expect.state, 1, 'starts idle');
            const writable = new Set(f.writable ?? []);
            const kinds = new Set<string>();
            for (const w of f.writes ?? []) {
                kinds.add(Object.keys(w.request)[0]!);
                for (const [a, words] of Object.entries(w.registers)) {
                    words.forEach((_, i) => {
                        const address = Number(a) + i;
                        const ok =
                            w.fc === 5 ? f.coils?.[address] !== undefined : writable.has(address);
                        assert.ok(ok, `${f.type} "${w.what}": ${address} is writable`);
                    });
                }
            }
            assert.ok(kinds.has('current'), `${f.type}: a current write`);
            assert.ok(kinds.has('enable'), `${f.type}: a stop`);
            // A state changes words of registers the device has in every state, adds none.
            for (const [name, s] of Object.entries(f.states)) {
                for (const [space, base] of [
                    [s.holding, f.holding],
                    [s.input, f.input],
                ] as const) {
                    for (const a of Object.keys(space ?? {})) {
                        assert.ok(base?.[Number(a)] !== undefined, `${f.type} ${name}: ${a}`);
                    }
                }
            }
        });
    }

    it('every fixture is served as written, state by state', async () => {
        for (const f of FIXTURES) {
            const sim = new RegisterSim(f);
            const port = await sim.listen();
            try {
                for (const [name, s] of Object.entries(f.states)) {
                    sim.setState(name);
                    const holding = { ...f.holding, ...s.holding };
                    const input = { ...f.input, ...s.input };
                    await independentClient(port, f.unit, async (c) => {
                        for (const [a, w] of Object.entries(holding).slice(0, 40)) {
                            assert.deepEqual((await c.readHoldingRegisters(Number(a), 1)).data, [
                                w,
                            ]);
                        }
                        for (const [a, w] of Object.entries(input).slice(0, 40)) {
                            assert.deepEqual((await c.readInputRegisters(Number(a), 1)).data, [w]);
                        }
                    });
                }
            } finally {
                await sim.close();
            }
        }
    });
});
