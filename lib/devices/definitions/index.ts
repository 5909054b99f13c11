// The built-in device definitions: one entry per family, each in its own file beside this one.
// The registry (lib/devices/registry.ts) and the README's table of supported devices read this list.
import type { DeviceDefinition } from '../definition';
import { EASTRON_SDM630, EASTRON_SDM72DM } from './eastron-sdm630';
import { POWER_BRAIN_EVSE, POWER_BRAIN_S0 } from './powerbrain';

export const BUILT_IN_DEFINITIONS: readonly DeviceDefinition[] = [
    POWER_BRAIN_EVSE,
    POWER_BRAIN_S0,
    EASTRON_SDM630,
    EASTRON_SDM72DM,
];
