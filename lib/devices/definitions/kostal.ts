// Kostal Plenticore plus / PIKO IQ over Modbus TCP (port 1502, unit 71): floats in the inverter's
// default byte order CDAB, i.e. the low word first.
import type { DeviceDefinition, FieldDef } from '../definition';

const f = (address: number): FieldDef => ({ address, type: 'float32' });

export const KOSTAL_PLENTICORE: DeviceDefinition = {
    type: 'inverter_kostal_plenticore',
    kind: 'meter',
    title: 'Kostal Plenticore plus / PIKO IQ (Modbus TCP port 1502)',
    source: 'KOSTAL Interface description MODBUS (TCP) & SunSpec, revision 1.9 (2020-09-17)',
    fc: 3,
    unit: 71,
    wordOrder: 'little',
    // 154–173 are all defined (the phase powers sit between): one request for them.
    maxGap: 6,
    readings: {
        currentsA: [f(154), f(160), f(166)],
        voltagesV: [f(158), f(164), f(170)],
        powerW: f(172),
        importWh: f(320),
    },
};
