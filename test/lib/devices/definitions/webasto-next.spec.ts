import { WEBASTO_NEXT_FIXTURE } from '../../../../lib/sim/fixtures/webasto-next';
import { describeFixture } from '../../../support/fixture-driver';

describeFixture(WEBASTO_NEXT_FIXTURE, { kind: 'tcp' });
