// Carlo Gavazzi EM24-DIN and EM340: INT32 with the low word first, in the table's weights
// (V×10, A×1000, W×10, kWh×10); the whole block from 0000h is defined, so one read covers the
// phase values and the energy meters. The two differ in where the energy meters are.
import type { DeviceDefinition, FieldDef } from '../definition';

const i = (address: number, scale: number): FieldDef => ({ address, type: 'int32', scale });
const phase = (first: number, scale: number): [FieldDef, FieldDef, FieldDef] => [
    i(first, scale),
    i(first + 2, scale),
    i(first + 4, scale),
];

const common = {
    kind: 'meter',
    fc: 3,
    wordOrder: 'little',
    // Every register up to the energy meters is defined: bridging them keeps one request.
    maxGap: 60,
} as const;

export const CARLO_GAVAZZI_EM24: DeviceDefinition = {
    ...common,
    type: 'meter_carlo_gavazzi_em24',
    title: 'Carlo Gavazzi EM24-DIN',
    source: 'Carlo Gavazzi EM24-DIN Communication Protocol v3, instantaneous variables and meters',
    readings: {
        voltagesV: phase(0x0000, 0.1),
        currentsA: phase(0x000c, 0.001),
        phasePowersW: phase(0x0012, 0.1),
        powerW: i(0x0028, 0.1),
        importWh: i(0x003e, 100),
        exportWh: i(0x005c, 100),
        serial: { address: 0x1300, type: 'string', words: 7 },
    },
};

export const CARLO_GAVAZZI_EM340: DeviceDefinition = {
    ...common,
    type: 'meter_carlo_gavazzi_em340',
    title: 'Carlo Gavazzi EM340 / EM330 (EM300 series)',
    source: 'Carlo Gavazzi EM300/ET300 Series Communication Protocol v2 r17, table 2.4',
    readings: {
        voltagesV: phase(0x0000, 0.1),
        currentsA: phase(0x000c, 0.001),
        phasePowersW: phase(0x0012, 0.1),
        powerW: i(0x0028, 0.1),
        importWh: i(0x0034, 100),
        exportWh: i(0x004e, 100),
        serial: { address: 0x5000, type: 'string', words: 7 },
    },
};
