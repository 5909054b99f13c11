// ABB B23 / B24 against a fixture from the user manual's mapping tables.
import { ABB_B23_FIXTURE } from '../../../../lib/sim/fixtures/abb';
import { describeMeterFixture } from '../../../support/meter-fixture';

describe('definitions: ABB', () => {
    // 5000h–5007h (import, export) and 5B00h–5B1Bh (voltages, currents, powers).
    describeMeterFixture({ fixture: ABB_B23_FIXTURE, requestsPerCycle: 2 });
});
