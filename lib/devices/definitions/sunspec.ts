// SunSpec meters (models 201–204) and inverters (101–103 with scale factors, 111–113 float),
// found by scanning for "SunS". Offsets count from the model's ID register. Points a device does
// not implement read 0x8000 (int16) or 0xFFFF (uint16): a single-phase meter's phases B and C
// then carry 0 A and 0 W. Manufacturer, model and serial come from the common model.
import type { DeviceDefinition, FieldDef } from '../definition';

const NI16 = [0x8000, -0x8000];
const NU16 = [0xffff];

const int = (address: number, sf: number, zeroIfMissing = false): FieldDef => ({
    address,
    type: 'int16',
    scaleFactor: { address: sf },
    missing: NI16,
    ...(zeroIfMissing ? { missingValue: 0 } : {}),
});

/** Models 201 (single phase), 202 (split phase), 203 (wye), 204 (delta): one layout. */
export const SUNSPEC_METER: DeviceDefinition = {
    type: 'meter_sunspec',
    kind: 'meter',
    title: 'SunSpec Meter (models 201–204)',
    source: 'SunSpec Information Model Reference, models 1 and 201–204',
    fc: 3,
    sunspec: { models: [201, 202, 203, 204], bases: [40000, 50000, 0] },
    // A SunSpec device answers every register of a model: the points between are bridged.
    maxGap: 20,
    readings: {
        currentsA: [int(3, 6, true), int(4, 6, true), int(5, 6, true)],
        voltagesV: [int(8, 15), int(9, 15), int(10, 15)],
        powerW: int(18, 22),
        phasePowersW: [int(19, 22, true), int(20, 22, true), int(21, 22, true)],
        exportWh: { address: 38, type: 'uint32', scaleFactor: { address: 54 } },
        importWh: { address: 46, type: 'uint32', scaleFactor: { address: 54 } },
    },
};

const uint = (address: number, sf: number): FieldDef => ({
    address,
    type: 'uint16',
    scaleFactor: { address: sf },
    missing: NU16,
});

/** Models 101 (single phase), 102 (split phase), 103 (three phase): integers + scale factors. */
export const SUNSPEC_INVERTER: DeviceDefinition = {
    type: 'inverter_sunspec',
    kind: 'meter',
    title: 'SunSpec Inverter (models 101–103)',
    source: 'SunSpec Information Model Reference, models 1 and 101–103',
    fc: 3,
    sunspec: { models: [101, 102, 103], bases: [40000, 50000, 0] },
    maxGap: 20,
    readings: {
        currentsA: [
            { ...uint(3, 6), missingValue: 0 },
            { ...uint(4, 6), missingValue: 0 },
            { ...uint(5, 6), missingValue: 0 },
        ],
        voltagesV: [uint(10, 13), uint(11, 13), uint(12, 13)],
        powerW: int(14, 15),
        importWh: { address: 24, type: 'uint32', scaleFactor: { address: 26 } },
    },
};

const float = (address: number): FieldDef => ({ address, type: 'float32' });

/** Models 111, 112, 113: the same points as 101–103 as float32. */
export const SUNSPEC_INVERTER_FLOAT: DeviceDefinition = {
    type: 'inverter_sunspec_float',
    kind: 'meter',
    title: 'SunSpec Inverter, float (models 111–113)',
    source: 'SunSpec Information Model Reference, models 1 and 111–113',
    fc: 3,
    sunspec: { models: [111, 112, 113], bases: [40000, 50000, 0] },
    maxGap: 20,
    readings: {
        currentsA: [float(4), float(6), float(8)],
        voltagesV: [float(16), float(18), float(20)],
        powerW: float(22),
        importWh: float(32),
    },
};
