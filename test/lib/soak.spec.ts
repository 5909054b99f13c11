// A short run of the reliability harness (npm run soak runs 30 simulated minutes).
import assert from 'node:assert/strict';
import { soak } from '../../bench/soak';
import { soakNodeRed } from '../../bench/soak-nodered';

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

describe('reliability harness, Node-RED stage (short soak)', function () {
    this.timeout(90_000);

    it('pushes the fuse, redeploys through the admin API and serves concurrent /cnf traffic without a fuse violation or a leak', async () => {
        const r = await soakNodeRed({
            simMinutes: 2.5,
            timeScale: 5,
            evses: 4,
            seed: 2,
            redeployEverySimS: 20,
            cnfClients: 3,
            failureEverySimS: 30,
        });
        const summary = JSON.stringify({ ...r, leak: undefined, cnf: { ...r.cnf, byCommand: 0 } });
        const deploys = Object.values(r.redeploys).reduce((t, n) => t + n, 0);
        assert.ok(deploys >= 3, `only ${deploys} redeploys`);
        assert.ok(Object.keys(r.redeploys).length >= 3, 'every deployment type was used');
        assert.ok(r.cycles.sites >= 3, 'the manager was re-created by the redeploys');
        assert.ok(r.carsPlugged > 0 && r.loadSteps > 0, summary);
        for (const cmd of ['get_dev_info', 'get_params', 'set_params', 'override_device']) {
            assert.ok((r.cnf.byCommand[cmd]?.count ?? 0) > 10, `${cmd} was exercised`);
        }
        assert.ok((r.cnf.byCommand['set_ajax_meter (feed)']?.count ?? 0) > 100, summary);
        assert.ok(Object.keys(r.cnf.rejected).length >= 6, 'bad requests of many kinds');
        assert.deepEqual(r.cnf.unexpected, {}, 'good requests failed');
        assert.equal(r.cnf.badAccepted, 0, summary);
        assert.equal(r.cnf.partialChanges, 0, summary);
        // It must not pass by idling: the cars charged, and the manager's budget held them back.
        // How long a phase actually stood at the fuse (budgetUsedShare) depends on how many link
        // outages the random draws inject into a 33 s run (0 to 5): while a wallbox cannot be
        // read, it is reserved at the most it may draw on top of the grid reading, which holds
        // the others back. It is reported, not required; the full soak reports it over 30
        // simulated minutes. What is required: once a link is back, the manager reads the
        // wallbox again within a few cycles plus the bus's reconnect back-off.
        assert.ok(r.stress.meanCarCurrentA >= 5, summary);
        assert.ok(r.stress.carTime.budgetBound >= 0.05, summary);
        assert.ok(r.stress.wallboxRecoverySimMs.max <= 30_000, summary);
        assert.equal(r.fuseViolationSamples, 0, summary);
        assert.ok(
            r.worstMarginWithData.every((m) => m >= 0),
            JSON.stringify(r.worstMarginWithData),
        );
        assert.equal(r.leak.final.cnfRoutes, 1, 'one /cnf route, for every method');
        assert.equal(r.leak.routesGrowth, 0, 'Express routes after redeploys');
        assert.ok(r.leak.listenersGrowth <= 0, `listeners grew by ${r.leak.listenersGrowth}`);
        assert.ok(r.leak.final.buses <= 4, `${r.leak.final.buses} Modbus buses open`);
        assert.ok(r.leak.heapGrowthMB < 20, `heap grew ${r.leak.heapGrowthMB} MB`);
        assert.deepEqual(r.problems, []);
        assert.ok(r.ok);
    });
});
