// Huawei SUN2000 against a fixture from the Modbus interface definitions, day and night.
import { SUN2000_FIXTURE } from '../../../../lib/sim/fixtures/huawei';
import { describeMeterFixture } from '../../../support/meter-fixture';

describe('definitions: Huawei', () => {
    // 32069–32081 (voltages, currents, power) and 32106 (yield): 32095–32105 are not defined.
    describeMeterFixture({ fixture: SUN2000_FIXTURE, requestsPerCycle: 2 });
});
