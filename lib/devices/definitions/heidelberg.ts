// Heidelberg (Amperfied) Energy Control: Modbus RTU, input registers for its state and meter,
// holding registers (written with fc 6 only) for the current, the fail-safe and standby.
import type { DeviceDefinition } from '../definition';

export const HEIDELBERG: DeviceDefinition = {
    type: 'evse_heidelberg',
    kind: 'evse',
    title: 'Heidelberg Energy Control',
    source: 'Heidelberg Energy Control ModBus register table EC_ModBus_register_table_20210222 (layout V1.0.7)',
    fc: 4,
    unit: 1,
    // Input registers 4–18 all answer: one request reads state, currents, power and energy.
    maxGap: 5,
    status: { charging_state: { address: 5 } },
    states: [
        // A1, A2: no vehicle.
        { when: { charging_state: [2, 3] }, state: 1 },
        // B1, B2, C1: vehicle connected, not charging (C1: it asks, the wallbox does not allow).
        { when: { charging_state: [4, 5, 6] }, state: 2 },
        // C2, derating.
        { when: { charging_state: [7, 8] }, state: 3 },
        // E, F, error.
        { when: { charging_state: [9, 10, 11] }, state: 5 },
    ],
    readings: {
        currentsA: [
            { address: 6, scale: 0.1 },
            { address: 7, scale: 0.1 },
            { address: 8, scale: 0.1 },
        ],
        // L1+L2+L3 in VA: the wallbox's only power figure.
        powerW: { address: 14 },
        // Energy since installation (VAh), high word first.
        energyWh: { address: 17, type: 'uint32' },
    },
    control: {
        // 0 or 6.0–16.0 A in 0.1 A.
        current: { fc: 6, address: 261, scale: 0.1, min: 6, max: 16 },
        failSafe: {
            current: { fc: 6, address: 262, scale: 0.1 },
            // The Modbus watchdog in ms.
            timeout: { fc: 6, address: 257, scale: 0.001 },
        },
        // Standby off: in standby the wallbox stops answering Modbus while no vehicle is plugged.
        init: [{ fc: 6, address: 258, value: 4 }],
    },
};
