import { PHOENIX_FIXTURE } from '../../../../lib/sim/fixtures/phoenix';
import { describeFixture } from '../../../support/fixture-driver';

// An RS-485 controller; also behind a Modbus TCP gateway (the coil write over TCP).
describeFixture(PHOENIX_FIXTURE, { kind: 'rtu', baud: 9600 });
describeFixture(PHOENIX_FIXTURE, { kind: 'tcp' });
