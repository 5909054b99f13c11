// Eastron SDM630 / SDM72D-M / SDM120: input registers (fc 4), IEEE 754 floats, high word first;
// power in W, energy in kWh. The currents are magnitudes: the signed phase powers give their
// direction. The meters answer at most 80 registers per request (SDM72D-M: 60) and only
// registers of listed parameters in a multi-register read, so reads bridge no gaps.
import type { DeviceDefinition, FieldDef } from '../definition';

const f = (address: number, scale = 1): FieldDef => ({ address, type: 'float32', scale });

export const EASTRON_SDM630: DeviceDefinition = {
    type: 'meter_sdm630',
    kind: 'meter',
    title: 'Eastron SDM630 / SDM630MCT / SDM72D-M V2',
    source: 'Eastron SDM630Modbus V2 user manual, 1.2.1 input registers',
    fc: 4,
    maxCount: 80,
    readings: {
        voltagesV: [f(0x0000), f(0x0002), f(0x0004)],
        currentsA: [f(0x0006), f(0x0008), f(0x000a)],
        phasePowersW: [f(0x000c), f(0x000e), f(0x0010)],
        powerW: f(0x0034),
        importWh: f(0x0048, 1000),
        exportWh: f(0x004a, 1000),
    },
};

/** SDM72D-M V1: totals only. */
export const EASTRON_SDM72DM: DeviceDefinition = {
    type: 'meter_sdm72dm',
    kind: 'meter',
    title: 'Eastron SDM72D-M V1',
    source: 'Eastron SDM72D-M user manual V1.5, part 3 input registers',
    fc: 4,
    maxCount: 60,
    readings: {
        powerW: f(0x0034),
        importWh: f(0x0048, 1000),
        exportWh: f(0x004a, 1000),
    },
};

/** Single phase: one current, voltage and power. */
export const EASTRON_SDM120: DeviceDefinition = {
    type: 'meter_sdm120',
    kind: 'meter',
    title: 'Eastron SDM120',
    source: 'Eastron SDM120-Modbus user manual, input registers',
    fc: 4,
    maxCount: 80,
    readings: {
        voltagesV: [f(0x0000)],
        currentsA: [f(0x0006)],
        phasePowersW: [f(0x000c)],
        powerW: f(0x000c),
        importWh: f(0x0048, 1000),
        exportWh: f(0x004a, 1000),
    },
};
