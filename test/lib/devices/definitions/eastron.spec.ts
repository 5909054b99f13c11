// Eastron SDM630, SDM72D-M and SDM120 against fixtures from their manuals' register tables.
import {
    SDM120_FIXTURE,
    SDM630_FIXTURE,
    SDM72DM_FIXTURE,
} from '../../../../lib/sim/fixtures/eastron';
import { describeMeterFixture } from '../../../support/meter-fixture';

describe('definitions: Eastron', () => {
    // 0x00–0x11 (phase V, I, P), 0x34 (total power), 0x48–0x4B (energies): the parameters between
    // are not all defined (0x2C, 0x36 …), so three requests.
    describeMeterFixture({ fixture: SDM630_FIXTURE, requestsPerCycle: 3 });
    // Over RTU as the meter is wired: a socat pseudo-terminal pair at 9600 Bd.
    describeMeterFixture({ fixture: SDM630_FIXTURE, requestsPerCycle: 3, rtu: true });
    // 0x34 and 0x48–0x4B.
    describeMeterFixture({ fixture: SDM72DM_FIXTURE, requestsPerCycle: 2 });
    // 0x00, 0x06, 0x0C and 0x48–0x4B: a single-phase meter has no registers between.
    describeMeterFixture({ fixture: SDM120_FIXTURE, requestsPerCycle: 4 });
});
