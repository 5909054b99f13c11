// Webasto Next / Ampure Next with "HEMS activated" (the TQ-DM100 register set, the vendor's
// `evse_tq_dm100`): holding registers at unit 255; the energy manager keeps writing the life
// bit, or the wallbox takes its safe current after the timeout.
import type { DeviceDefinition } from '../definition';

export const WEBASTO_NEXT: DeviceDefinition = {
    type: 'evse_tq_dm100',
    kind: 'evse',
    title: 'TQ-DM100 / Webasto',
    source: 'Webasto, Modbus Specification Webasto NEXT, register list revision 3.00',
    fc: 3,
    unit: 255,
    status: { cp: { address: 1000 }, charge: { address: 1001 }, evse: { address: 1002 } },
    states: [
        { when: { evse: [2] }, state: 5 },
        { when: { cp: [7] }, state: 5 },
        { when: { cp: [3] }, state: 3 },
        { when: { cp: [0] }, state: 1 },
        // Attached without permission, paused, reserved.
        { when: { cp: [1, 4, 8] }, state: 2 },
    ],
    readings: {
        currentsA: [
            { address: 1008, scale: 0.001 },
            { address: 1010, scale: 0.001 },
            { address: 1012, scale: 0.001 },
        ],
        powerW: { address: 1020, type: 'uint32' },
        energyWh: { address: 1036, type: 'uint32' },
    },
    control: {
        current: { address: 5004, min: 6, max: 32 },
        failSafe: { current: { address: 2000 }, timeout: { address: 2002 } },
        // The wallbox clears the life bit; it checks it every half communication timeout.
        keepAlive: { address: 6000, value: 1, everyMs: 10_000 },
    },
};
