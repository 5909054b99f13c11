import assert from 'node:assert/strict';
import { DefinedEvse } from '../../../../lib/devices/defined-device';
import { ALFEN } from '../../../../lib/devices/definitions/alfen';
import { ALFEN_FIXTURE } from '../../../../lib/sim/fixtures/alfen';
import { f32 } from '../../../../lib/sim/fixtures/words';
import { describeFixture, startRig } from '../../../support/fixture-driver';

describeFixture(ALFEN_FIXTURE);

describe('evse_alfen_evepro: the max current is valid for the validity time only', function () {
    this.timeout(10000);

    it('writes an unchanged current again once 30 s have passed, and asks the engine to re-apply', async () => {
        const rig = await startRig(ALFEN_FIXTURE, { kind: 'tcp' });
        let now = 1_000_000;
        const evse = new DefinedEvse({
            id: 'E1',
            address: rig.address,
            pool: rig.pool,
            definition: ALFEN,
            now: () => now,
        });
        try {
            assert.equal(evse.keepAliveMs, 30_000);
            const sixteen = { current: 16_000, chargingEnabled: true, released: false };
            await evse.apply(sixteen);
            await evse.apply(sixteen);
            const at1210 = () => rig.sim.writes.filter((w) => w.address === 1210);
            assert.equal(at1210().length, 1, 'unchanged within the validity time: not written');
            now += 29_999;
            await evse.apply(sixteen);
            assert.equal(at1210().length, 1);
            now += 1;
            await evse.apply(sixteen);
            assert.equal(at1210().length, 2, 'written again when due');
            assert.deepEqual(at1210()[1]!.values, f32(16));
            assert.equal(at1210()[1]!.fc, 16);
        } finally {
            await evse.close();
            await rig.close();
        }
    });
});
