// Phoenix Contact EV Charge Control Basic (EV-CC-AC1-M3-…): Modbus RTU; charging enabled by
// coil 20000 once holding 4000 is 3, the current in whole amperes, the state as ASCII.
import type { DeviceDefinition } from '../definition';

/** Two ASCII characters as the register holds them, the first in the high byte. */
const ascii = (text: string): number => (text.charCodeAt(0) << 8) | (text.charCodeAt(1) || 0);

export const PHOENIX_CONTACT: DeviceDefinition = {
    type: 'evse_phoenix_contact',
    kind: 'evse',
    title: 'Phoenix Contact EV Charge Control Basic',
    source: 'Phoenix Contact EV Charge Control Basic, user manual 106377_en_04, table 9-2',
    fc: 3,
    unit: 1,
    status: { state: { address: 24000 } },
    states: [
        // A1, A2: no vehicle.
        { when: { state: { min: ascii('A\0'), max: ascii('A\xff') } }, state: 1 },
        // C1, D1: the vehicle asks, PWM off (not enabled).
        { when: { state: [ascii('C1'), ascii('D1')] }, state: 2 },
        // B1, B2: vehicle connected.
        { when: { state: { min: ascii('B\0'), max: ascii('B\xff') } }, state: 2 },
        // C2, D2: charging (D: with ventilation).
        { when: { state: { min: ascii('C\0'), max: ascii('D\xff') } }, state: 3 },
        // E, F: fault or not available.
        { when: { state: { min: ascii('E\0'), max: ascii('F\xff') } }, state: 5 },
    ],
    readings: {
        model: { fc: 4, address: 1000, type: 'string', words: 16 },
        serial: { fc: 4, address: 1021, type: 'string', words: 6 },
    },
    control: {
        current: { address: 22000, min: 6, max: 63, zeroStops: false },
        enable: { fc: 5, address: 20000, on: 1, off: 0 },
        // Charging enabled by coil 20000 (the factory setting takes input EN).
        init: [{ address: 4000, value: 3 }],
    },
};
