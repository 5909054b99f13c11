// A short run of the reliability harness (npm run soak runs 30 simulated minutes).
import assert from 'node:assert/strict';
import { soak } from '../../bench/soak';

describe('reliability harness (short soak)', function () {
    this.timeout(60_000);

    for (const [seed, evses] of [
        [1, 6],
        [3, 12],
    ] as const) {
        it(`${evses} wallboxes, 6 simulated minutes with load steps, failures and redeploys`, async () => {
            const r = await soak({ simMinutes: 6, evses, seed, redeployEveryMin: 2 });
            assert.equal(r.cycles, 360);
            assert.ok(
                r.failuresInjected > 0 && r.redeploys === 2,
                'failures and redeploys happened',
            );
            assert.ok(r.transientOverloads > 0, 'load steps really pushed the site');
            assert.equal(r.fuseViolations, 0, JSON.stringify(r));
            assert.ok(
                r.worstMarginWithData.every((m) => m >= 0),
                JSON.stringify(r.worstMarginWithData),
            );
            assert.ok(r.chargedKWh > 0, 'cars charged');
            assert.ok(r.heapGrowthMB < 50, `heap grew ${r.heapGrowthMB} MB`);
        });
    }
});
