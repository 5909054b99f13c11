import assert from 'node:assert/strict';
import { HEIDELBERG_FIXTURE } from '../../../../lib/sim/fixtures/heidelberg';
import { describeFixture, driverFor, startRig } from '../../../support/fixture-driver';

// RS-485 only: Modbus RTU over a socat pseudo-terminal pair.
describeFixture(HEIDELBERG_FIXTURE, { kind: 'rtu', baud: 19200 });

describe('evse_heidelberg: one request per poll, writes with function 6 only', function () {
    this.timeout(10000);

    it('reads state, currents, power and energy in one request; writes nothing with fc 16', async () => {
        const rig = await startRig(HEIDELBERG_FIXTURE, { kind: 'tcp' });
        const driver = driverFor(HEIDELBERG_FIXTURE, rig);
        try {
            driver.setFailSafe!({ current: 6000, timeoutMs: 60_000 });
            await driver.read();
            await driver.apply({ current: 10_000, chargingEnabled: true, released: false });
            assert.equal(driver.readPlan!.length, 1);
            const before = rig.sim.requests;
            await driver.read();
            assert.equal(rig.sim.requests - before, 1);
            assert.ok(rig.sim.writes.length >= 4);
            for (const w of rig.sim.writes) assert.equal(w.fc, 6, JSON.stringify(w));
        } finally {
            await driver.close();
            await rig.close();
        }
    });
});
