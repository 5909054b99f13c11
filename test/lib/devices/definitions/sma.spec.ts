// SMA inverters (SMA Modbus profile) against a Sunny Tripower fixture, day and night.
import { SMA_STP_FIXTURE } from '../../../../lib/sim/fixtures/sma';
import { describeMeterFixture } from '../../../support/meter-fixture';

describe('definitions: SMA', () => {
    // 30775–30788 (power, phase powers, voltages), 30977–30982 (currents), 30529 (yield).
    describeMeterFixture({ fixture: SMA_STP_FIXTURE, requestsPerCycle: 3 });
});
