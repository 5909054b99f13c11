// Janitza UMG 96RM: the "frequently required readings" from 19000 on, floats (high word first)
// in V, A, W and Wh; every register of the block is defined, so it is read in one request.
import type { DeviceDefinition, FieldDef } from '../definition';

const f = (address: number): FieldDef => ({ address, type: 'float32' });

export const JANITZA_UMG96RM: DeviceDefinition = {
    type: 'meter_janitza_umg96rm',
    kind: 'meter',
    title: 'Janitza UMG 96RM',
    source: 'Janitza UMG 96 RM Modbus-address list and Formulary (Dok. Nr. 1.040.034.b)',
    fc: 3,
    maxGap: 50,
    readings: {
        voltagesV: [f(19000), f(19002), f(19004)],
        currentsA: [f(19012), f(19014), f(19016)],
        phasePowersW: [f(19020), f(19022), f(19024)],
        powerW: f(19026),
        importWh: f(19068),
        exportWh: f(19076),
    },
};
