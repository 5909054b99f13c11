// Carlo Gavazzi EM24-DIN and EM340 against fixtures from their communication protocols.
import { EM24_FIXTURE, EM340_FIXTURE } from '../../../../lib/sim/fixtures/carlo-gavazzi';
import { describeMeterFixture } from '../../../support/meter-fixture';

describe('definitions: Carlo Gavazzi', () => {
    // 0000h–005Dh is one defined block: one request.
    describeMeterFixture({ fixture: EM24_FIXTURE, requestsPerCycle: 1 });
    // 0000h–004Fh.
    describeMeterFixture({ fixture: EM340_FIXTURE, requestsPerCycle: 1 });
    describeMeterFixture({ fixture: EM340_FIXTURE, requestsPerCycle: 1, rtu: true });
});
