import { ABL_FIXTURE } from '../../../../lib/sim/fixtures/abl';
import { describeFixture } from '../../../support/fixture-driver';

describeFixture(ABL_FIXTURE, { kind: 'rtu', baud: 38400 });
