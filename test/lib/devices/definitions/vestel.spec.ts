import { VESTEL_FIXTURE } from '../../../../lib/sim/fixtures/vestel';
import { describeFixture } from '../../../support/fixture-driver';

describeFixture(VESTEL_FIXTURE, { kind: 'tcp' });
