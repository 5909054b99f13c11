// Bender CC612/CC613 charge controllers (Mennekes Amtron Professional, Webasto Live, …) with the
// Modbus TCP server's register set "Bender"/"Ebee" (not "Phoenix" or "TQ-DM100").
import type { DeviceDefinition } from '../definition';

export const BENDER: DeviceDefinition = {
    type: 'evse_mennekes_mb',
    kind: 'evse',
    title: 'Mennekes Amtron, SE Parkplatz 3, Bender Modbus',
    source: 'Bender Charge Controller Modbus TCP API (revision v0.14)',
    fc: 3,
    unit: 255,
    status: { cp: { address: 122 } },
    states: [
        { when: { cp: [1] }, state: 1 },
        { when: { cp: [2] }, state: 2 },
        { when: { cp: [3, 4] }, state: 3 },
        { when: { cp: [5] }, state: 5 },
    ],
    readings: {
        currentsA: [
            { address: 212, type: 'uint32', scale: 0.001 },
            { address: 214, type: 'uint32', scale: 0.001 },
            { address: 216, type: 'uint32', scale: 0.001 },
        ],
        energyWh: { address: 218, type: 'uint32' },
        powerW: { address: 220, type: 'uint32' },
    },
    control: {
        // HEMS current limit in A; 0 pauses.
        current: { address: 1000, min: 6, max: 32 },
        failSafe: { current: { address: 131 }, timeout: { address: 132 } },
    },
};
