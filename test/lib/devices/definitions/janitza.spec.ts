// Janitza UMG 96RM against a fixture from its Modbus address list.
import { UMG96RM_FIXTURE } from '../../../../lib/sim/fixtures/janitza';
import { describeMeterFixture } from '../../../support/meter-fixture';

describe('definitions: Janitza', () => {
    // 19000–19077, every register defined: one request.
    describeMeterFixture({ fixture: UMG96RM_FIXTURE, requestsPerCycle: 1 });
});
