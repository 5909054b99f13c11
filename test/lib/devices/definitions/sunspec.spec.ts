// SunSpec meters and inverters against fixtures laid out from the SunSpec information models:
// found by scanning for "SunS" at 40000, 50000 and 0, then one request per cycle for the model.
import assert from 'node:assert/strict';
import {
    SUNSPEC_INVERTER_103_FIXTURE,
    SUNSPEC_INVERTER_113_FIXTURE,
    SUNSPEC_METER_201_FIXTURE,
    SUNSPEC_METER_203_FIXTURE,
    SUNSPEC_METER_204_FIXTURE,
} from '../../../../lib/sim/fixtures/sunspec';
import { BusPool } from '../../../../lib/modbus/pool';
import { RegisterSim } from '../../../../lib/sim/register-sim';
import { describeMeterFixture, meterDriver } from '../../../support/meter-fixture';

describe('definitions: SunSpec', () => {
    describeMeterFixture({ fixture: SUNSPEC_METER_203_FIXTURE, requestsPerCycle: 1 });
    describeMeterFixture({ fixture: SUNSPEC_METER_201_FIXTURE, requestsPerCycle: 1 });
    describeMeterFixture({ fixture: SUNSPEC_METER_204_FIXTURE, requestsPerCycle: 1 });
    describeMeterFixture({ fixture: SUNSPEC_INVERTER_103_FIXTURE, requestsPerCycle: 1 });
    describeMeterFixture({ fixture: SUNSPEC_INVERTER_113_FIXTURE, requestsPerCycle: 1 });

    it('finds the model the chain says: 203 after a common block of 66, 103 after one of 65', async () => {
        const pool = new BusPool({ timeoutMs: 500 });
        const cases = [
            [SUNSPEC_METER_203_FIXTURE, 203],
            [SUNSPEC_METER_201_FIXTURE, 201],
            [SUNSPEC_METER_204_FIXTURE, 204],
            [SUNSPEC_INVERTER_103_FIXTURE, 103],
            [SUNSPEC_INVERTER_113_FIXTURE, 113],
        ] as const;
        try {
            for (const [fixture, model] of cases) {
                const sim = new RegisterSim(fixture);
                const port = await sim.listen();
                try {
                    const d = await meterDriver(
                        fixture.type,
                        `127.0.0.1:${port}`,
                        pool,
                        fixture.unit,
                    );
                    await d.read();
                    assert.equal(d.sunspecModel, model, fixture.title);
                    await d.close();
                } finally {
                    await sim.close();
                }
            }
        } finally {
            await pool.close();
        }
    });

    it('a meter definition does not take an inverter model, nor the reverse', async () => {
        const pool = new BusPool({ timeoutMs: 500 });
        const sim = new RegisterSim(SUNSPEC_INVERTER_103_FIXTURE);
        const port = await sim.listen();
        try {
            const meter = await meterDriver('meter_sunspec', `127.0.0.1:${port}`, pool, 1);
            await assert.rejects(meter.read());
            await meter.close();
        } finally {
            await sim.close();
            await pool.close();
        }
    });
});
