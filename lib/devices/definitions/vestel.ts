// Vestel EVC04 (also Webasto Unite, Hager witty, …): measurements in input registers, the
// current, fail-safe and alive register in holding registers, unit 255.
import type { DeviceDefinition } from '../definition';

export const VESTEL_EVC04: DeviceDefinition = {
    type: 'evse_vestel_evc04',
    kind: 'evse',
    title: 'Vestel EVC04',
    source: 'Vestel Elektronik, EVC04 Modbus TCP/IP Specification v1.8',
    fc: 4,
    unit: 255,
    status: { cp: { address: 1000 }, charging: { address: 1001 }, equipment: { address: 1002 } },
    states: [
        { when: { equipment: [2] }, state: 5 },
        { when: { cp: [8] }, state: 5 },
        { when: { cp: [2] }, state: 3 },
        { when: { cp: [0] }, state: 1 },
        // Preparing, SuspendedEVSE, SuspendedEV, Finishing, Reserved.
        { when: { cp: [1, 3, 4, 5, 6] }, state: 2 },
    ],
    readings: {
        currentsA: [
            { address: 1008, scale: 0.001 },
            { address: 1010, scale: 0.001 },
            { address: 1012, scale: 0.001 },
        ],
        powerW: { address: 1020, type: 'uint32' },
        // Meter reading in 0.1 kWh.
        energyWh: { address: 1036, type: 'uint32', scale: 100 },
        serial: { address: 100, type: 'string', words: 25 },
        model: { address: 210, type: 'string', words: 10 },
    },
    control: {
        current: { address: 5004, min: 6, max: 32 },
        failSafe: { current: { address: 2000 }, timeout: { address: 2002 } },
        keepAlive: { address: 6000, value: 1, everyMs: 10_000 },
    },
};
