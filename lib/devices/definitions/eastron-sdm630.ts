// Eastron SDM630 (and SDM630MCT, SDM72D-M V2) and SDM72D-M V1: input registers (function 4),
// IEEE 754 float32, high word first. Addresses as in Eastron's "SDM630 Modbus Protocol" input
// register table (30001 = address 0): phase voltages 0/2/4, currents 6/8/10, phase powers
// 12/14/16, total power 52, import/export energy 72/74 in kWh.
import type { DeviceDefinition, FieldDef } from '../definition';

const f = (address: number, scale = 1): FieldDef => ({ address, type: 'float32', scale });

export const EASTRON_SDM630: DeviceDefinition = {
    type: 'meter_sdm630',
    kind: 'meter',
    title: 'Eastron SDM630, SDM630MCT, SDM72DM-V2',
    source: 'Eastron SDM630 Modbus Protocol, input registers',
    fc: 4,
    readings: {
        voltagesV: [f(0x0000), f(0x0002), f(0x0004)],
        currentsA: [f(0x0006), f(0x0008), f(0x000a)],
        // unsigned currents: the phase powers' signs give their direction
        phasePowersW: [f(0x000c), f(0x000e), f(0x0010)],
        powerW: f(0x0034),
        importWh: f(0x0048, 1000),
        exportWh: f(0x004a, 1000),
    },
};

/** The first SDM72D-M has totals only. */
export const EASTRON_SDM72DM: DeviceDefinition = {
    type: 'meter_sdm72dm',
    kind: 'meter',
    title: 'Eastron SDM72DM V1',
    source: 'Eastron SDM72D-M Modbus Protocol, input registers',
    fc: 4,
    readings: {
        powerW: f(0x0034),
        importWh: f(0x0048, 1000),
        exportWh: f(0x004a, 1000),
    },
};
