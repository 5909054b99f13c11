// The built-in device definitions: one entry per family, each in its own file beside this one.
// The registry (lib/devices/registry.ts) and the README's table of supported devices read this list.
import type { DeviceDefinition } from '../definition';
import { ABL_EMH1 } from './abl';
import { ALFEN } from './alfen';
import { BENDER } from './bender';
import { EASTRON_SDM630, EASTRON_SDM72DM } from './eastron-sdm630';
import { HEIDELBERG } from './heidelberg';
import { KEBA_P30 } from './keba';
import { PHOENIX_CONTACT } from './phoenix';
import { POWER_BRAIN_EVSE, POWER_BRAIN_S0 } from './powerbrain';
import { VESTEL_EVC04 } from './vestel';
import { WEBASTO_NEXT } from './webasto-next';

export const BUILT_IN_DEFINITIONS: readonly DeviceDefinition[] = [
    POWER_BRAIN_EVSE,
    POWER_BRAIN_S0,
    EASTRON_SDM630,
    EASTRON_SDM72DM,
    HEIDELBERG,
    ABL_EMH1,
    PHOENIX_CONTACT,
    ALFEN,
    BENDER,
    WEBASTO_NEXT,
    VESTEL_EVC04,
    KEBA_P30,
];
