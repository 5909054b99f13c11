// Eastron SDM120 (single phase): input registers (fc 4), IEEE 754 floats, high word first; power
// in W, energy in kWh. One current, voltage and power, on the phase the meter is wired to; the
// current is a magnitude, the power's sign gives its direction. The SDM630 and SDM72D-M are in
// eastron-sdm630.ts. Only registers of listed parameters answer in a multi-register read, so
// reads bridge no gaps.
import type { DeviceDefinition, FieldDef } from '../definition';

const f = (address: number, scale = 1): FieldDef => ({ address, type: 'float32', scale });

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
