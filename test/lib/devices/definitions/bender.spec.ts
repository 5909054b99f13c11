import { BENDER_FIXTURE } from '../../../../lib/sim/fixtures/bender';
import { describeFixture } from '../../../support/fixture-driver';

describeFixture(BENDER_FIXTURE, { kind: 'tcp' });
