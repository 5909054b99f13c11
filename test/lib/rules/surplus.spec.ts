import assert from 'node:assert/strict';
import {
    NO_BATTERY_POLICY,
    siteSurplus,
    type StorageSample,
    type SurplusInput,
} from '../../../lib/rules/surplus';

const home = (powerW: number, soc?: number): StorageSample => ({
    role: 5,
    powerW,
    ...(soc !== undefined ? { soc } : {}),
});
const all = (powerW: number, soc?: number): StorageSample => ({
    role: 6,
    powerW,
    ...(soc !== undefined ? { soc } : {}),
});

/** A grid meter, the car's draw and the storage meters; no policy, nothing learned yet. */
function grid(gridW: number, evseW: number, storage: StorageSample[], more = {}): SurplusInput {
    return {
        gridW,
        evseW,
        productionW: 0,
        consumptionW: 0,
        storage,
        policy: NO_BATTERY_POLICY,
        chargePeakW: 0,
        ...more,
    };
}

describe('PV surplus with a home battery', () => {
    it('without storage meters: what would be fed in if no car charged', () => {
        assert.equal(siteSurplus(grid(-2000, 3000, [])).surplusW, 5000);
        assert.equal(siteSurplus(grid(4000, 3000, [])).surplusW, 0);
        const meters = siteSurplus({
            ...grid(0, 0, []),
            gridW: undefined,
            productionW: 6000,
            consumptionW: 1500,
        });
        assert.equal(meters.surplusW, 4500);
    });

    it('storage home (role 5): its discharge is never surplus', () => {
        // PV − house = 1 kW; the car draws 3 kW, the battery covers the other 2 kW: grid 0.
        const r = siteSurplus(grid(0, 3000, [home(-2000)]));
        assert.equal(r.surplusW, 1000);
        assert.equal(r.drainW, 2000, 'the car is drawing from the battery');
        assert.equal(r.storageHomeW, -2000);
    });

    it('storage all (role 6): its discharge counts, as the vendor documents', () => {
        const r = siteSurplus(grid(0, 3000, [all(-2000)]));
        assert.equal(r.surplusW, 3000);
        assert.equal(r.drainW, 0);
        assert.equal(r.storageAllW, -2000);
    });

    it('storage all below battery_buffer_soc: the car must not draw from it', () => {
        const policy = { prioritySoc: 0, bufferSoc: 20 };
        const below = siteSurplus(grid(0, 3000, [all(-2000, 15)], { policy }));
        assert.equal(below.surplusW, 1000);
        assert.equal(below.drainW, 2000);
        const above = siteSurplus(grid(0, 3000, [all(-2000, 25)], { policy }));
        assert.equal(above.surplusW, 3000);
        // A battery that does not report its SoC keeps the vendor's rule for role 6.
        assert.equal(siteSurplus(grid(0, 3000, [all(-2000)], { policy })).surplusW, 3000);
    });

    it('by default the battery charging is not consumption: the car may take that power', () => {
        // 3 kW go into the battery, nothing to the grid, no car yet.
        const r = siteSurplus(grid(0, 0, [home(3000, 40)]));
        assert.equal(r.surplusW, 3000);
        assert.equal(r.reservedW, 0);
    });

    it('battery_priority_soc: below it the battery charges first, the car gets the rest', () => {
        const policy = { prioritySoc: 50, bufferSoc: 0 };
        // 4 kW of PV over the house: 3 kW into the battery (its limit), 1 kW to the grid.
        const below = siteSurplus(grid(-1000, 0, [home(3000, 30)], { policy }));
        assert.equal(below.surplusW, 1000);
        assert.equal(below.reservedW, 3000);
        assert.equal(below.chargePeakW, 3000);
        // At or above the priority SoC the car comes first again.
        assert.equal(siteSurplus(grid(-1000, 0, [home(3000, 50)], { policy })).surplusW, 4000);
        // A battery without a SoC always charges first.
        assert.equal(siteSurplus(grid(-1000, 0, [home(3000)], { policy })).surplusW, 1000);
    });

    it('battery first holds when the inverter lets the car take the battery’s share', () => {
        const policy = { prioritySoc: 80, bufferSoc: 0 };
        // The car draws 2 kW, the battery only 1 kW of the 3 kW it has shown it can take; the
        // grid is at 0. The car must give the 2 kW back.
        const r = siteSurplus(grid(0, 2000, [home(1000, 30)], { policy, chargePeakW: 3000 }));
        assert.equal(r.surplusW, 0);
        assert.equal(r.reservedW, 3000);
    });

    it('battery first: a battery that no longer takes more (full) frees the surplus', () => {
        const policy = { prioritySoc: 80, bufferSoc: 0 };
        // It once took 3 kW; now 2 kW go to the grid while it takes nothing.
        const r = siteSurplus(grid(-2000, 0, [home(0)], { policy, chargePeakW: 3000 }));
        assert.equal(r.surplusW, 2000);
        assert.equal(r.chargePeakW, 0, 'what it can take is learned anew');
        // The car takes those 2 kW: the grid is at 0 and nothing is reserved any more.
        const next = siteSurplus(grid(0, 2000, [home(0)], { policy, chargePeakW: r.chargePeakW }));
        assert.equal(next.surplusW, 2000);
    });

    it('without a grid meter: production minus consumption, the same battery rules', () => {
        const base = {
            evseW: 0,
            productionW: 5000,
            consumptionW: 1000,
            policy: { prioritySoc: 90, bufferSoc: 0 },
            chargePeakW: 0,
        };
        // 4 kW over the house, 3 kW into the battery, 1 kW fed in.
        const r = siteSurplus({ ...base, storage: [home(3000, 40)] });
        assert.equal(r.surplusW, 1000);
        // A role-6 battery discharging at night does count; a role-5 one does not.
        const night = { ...base, productionW: 0, consumptionW: 500, policy: NO_BATTERY_POLICY };
        assert.equal(siteSurplus({ ...night, storage: [all(-500)] }).surplusW, 0);
        assert.equal(siteSurplus({ ...night, evseW: 2000, storage: [all(-2500)] }).surplusW, 2000);
        assert.equal(siteSurplus({ ...night, evseW: 2000, storage: [home(-2500)] }).surplusW, 0);
    });
});
