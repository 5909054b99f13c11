import assert from 'node:assert/strict';
import { rotateMask, rotatePhases, phaseCount } from '../../../lib/core/phases';

describe('phase rotation', () => {
    it('maps wallbox L1,L2,L3 to building L2,L3,L1 at 120°', () => {
        assert.deepEqual(rotatePhases([1, 2, 3], 120), [3, 1, 2]);
        assert.equal(rotateMask(0b001, 120), 0b010);
        assert.equal(rotateMask(0b001, 240), 0b100);
        assert.equal(rotateMask(0b111, 240), 0b111);
    });
    it('leaves phases alone at 0°', () => {
        assert.deepEqual(rotatePhases([1, 2, 3], 0), [1, 2, 3]);
        assert.equal(phaseCount(0b101), 2);
    });
});
