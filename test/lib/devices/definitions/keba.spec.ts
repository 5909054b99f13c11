import assert from 'node:assert/strict';
import { KEBA_FIXTURE } from '../../../../lib/sim/fixtures/keba';
import { describeFixture, driverFor, startRig } from '../../../support/fixture-driver';

describeFixture(KEBA_FIXTURE);

describe('evse_keba_c_x: the P30 answers one value (two registers) per request', function () {
    this.timeout(10000);

    it('never asks for more than two registers at once', async () => {
        const rig = await startRig(KEBA_FIXTURE, { kind: 'tcp' });
        const driver = driverFor(KEBA_FIXTURE, rig);
        try {
            rig.sim.setState('charging');
            await driver.read();
            const plan = driver.readPlan as readonly { count: number }[];
            assert.ok(plan.length > 0);
            for (const block of plan) assert.ok(block.count <= 2, JSON.stringify(plan));
        } finally {
            await driver.close();
            await rig.close();
        }
    });
});
