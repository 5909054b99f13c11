// KEBA KeContact P30 c-series / x-series on Modbus TCP: unit 255, fc 3 and 6 only, each value
// read on its own (two registers at most), currents in mA, power in mW.
import type { DeviceDefinition } from '../definition';

export const KEBA_P30: DeviceDefinition = {
    type: 'evse_keba_c_x',
    kind: 'evse',
    title: 'KEBA c-series/x-series',
    source: 'KEBA KeContact P30 Modbus TCP Programmers Guide V1.02',
    fc: 3,
    unit: 255,
    maxCount: 2,
    status: {
        charging: { address: 1000, type: 'uint32' },
        cable: { address: 1004, type: 'uint32' },
    },
    states: [
        { when: { charging: [4] }, state: 5 },
        { when: { charging: [3] }, state: 3 },
        // 0, 1, 3: no vehicle at the cable.
        { when: { cable: { max: 4 } }, state: 1 },
        // 5, 7: cable in station and vehicle.
        { when: { cable: { min: 5 } }, state: 2 },
    ],
    readings: {
        currentsA: [
            { address: 1008, type: 'uint32', scale: 0.001 },
            { address: 1010, type: 'uint32', scale: 0.001 },
            { address: 1012, type: 'uint32', scale: 0.001 },
        ],
        powerW: { address: 1020, type: 'uint32', scale: 0.001 },
        energyWh: { address: 1036, type: 'uint32' },
    },
    control: {
        // mA, 6000–63000; 0 is not accepted, so stopping is 5014 = 0.
        current: { fc: 6, address: 5004, scale: 0.001, min: 6, max: 63, zeroStops: false },
        enable: { fc: 6, address: 5014, on: 1, off: 0 },
    },
};
