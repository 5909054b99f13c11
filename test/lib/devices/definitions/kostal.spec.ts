// Kostal Plenticore against a fixture from Kostal's Modbus interface description, day and night.
import { PLENTICORE_FIXTURE } from '../../../../lib/sim/fixtures/kostal';
import { describeMeterFixture } from '../../../support/meter-fixture';

describe('definitions: Kostal', () => {
    // 154–173 (phase currents, powers, voltages, total power) and 320 (total yield).
    describeMeterFixture({ fixture: PLENTICORE_FIXTURE, requestsPerCycle: 2 });
});
