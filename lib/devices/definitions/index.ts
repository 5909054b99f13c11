// The built-in device definitions: one entry per family, each in its own file beside this one.
// The registry (lib/devices/registry.ts) and the README's table of supported devices read this list.
import type { DeviceDefinition } from '../definition';
import { ABB_B23_B24 } from './abb';
import { ABL_EMH1 } from './abl';
import { ALFEN } from './alfen';
import { BENDER } from './bender';
import { CARLO_GAVAZZI_EM24, CARLO_GAVAZZI_EM340 } from './carlo-gavazzi';
import { EASTRON_SDM120 } from './eastron';
import { EASTRON_SDM630, EASTRON_SDM72DM } from './eastron-sdm630';
import { HEIDELBERG } from './heidelberg';
import { HUAWEI_SUN2000 } from './huawei';
import { JANITZA_UMG96RM } from './janitza';
import { KEBA_P30 } from './keba';
import { KOSTAL_PLENTICORE } from './kostal';
import { PHOENIX_CONTACT } from './phoenix';
import { POWER_BRAIN_EVSE, POWER_BRAIN_S0 } from './powerbrain';
import { SMA_INVERTER } from './sma';
import { SUNSPEC_INVERTER, SUNSPEC_INVERTER_FLOAT, SUNSPEC_METER } from './sunspec';
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
    EASTRON_SDM120,
    SUNSPEC_METER,
    SUNSPEC_INVERTER,
    SUNSPEC_INVERTER_FLOAT,
    CARLO_GAVAZZI_EM24,
    CARLO_GAVAZZI_EM340,
    ABB_B23_B24,
    JANITZA_UMG96RM,
    SMA_INVERTER,
    HUAWEI_SUN2000,
    KOSTAL_PLENTICORE,
];
