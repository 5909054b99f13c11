// cFos Power Brain wallbox (unit 1) and its S0 meter inputs (units 2 and 3) as definitions, from
// the vendor's register map (lib/modbus/powerbrain-map.ts: holding registers 8000..8120). The
// Power Brain drivers (lib/devices/powerbrain.ts) take their registers and decoding from here;
// what they do beyond a definition (vendor-id check, the attached meter only where 8112 says so,
// the card count, the fail-safe compared before it is written to flash, limit and enable in one
// write, phase switching only where 8113 permits it) stays in the drivers.
import type { DeviceDefinition, FieldDef } from '../definition';

/** The attached meter / S0 meter: currents in 0.1 A (int32), power in W (−1: none yet), energy. */
const meterReadings = {
    currentsA: [
        { address: 8064, type: 'int32', scale: 0.1 },
        { address: 8066, type: 'int32', scale: 0.1 },
        { address: 8068, type: 'int32', scale: 0.1 },
    ] as [FieldDef, FieldDef, FieldDef],
    powerW: { address: 8062, type: 'int32', missing: [-1] } as FieldDef,
} as const;

const identity = {
    model: { address: 8016, type: 'string', words: 16 } as FieldDef,
    serial: { address: 8008, type: 'string', words: 8 } as FieldDef,
} as const;

export const POWER_BRAIN_EVSE: DeviceDefinition = {
    type: 'evse_powerbrain',
    kind: 'evse',
    title: 'cFos Power Brain',
    source: 'cFos Power Brain Modbus register map (EVSE, unit 1)',
    unit: 1,
    // 8092 state … 8096 card: the registers between answer too
    maxGap: 3,
    status: { cp: { address: 8092 } },
    // charge-pilot state 0..3 = A..D; anything else is an error
    states: [
        { when: { cp: [0] }, state: 1 },
        { when: { cp: [1] }, state: 2 },
        { when: { cp: [2] }, state: 3 },
        { when: { cp: [3] }, state: 4 },
    ],
    defaultState: 5,
    readings: {
        ...meterReadings,
        energyWh: { address: 8058, type: 'int64' },
        rfid: { address: 8096, type: 'string', words: 15 },
        ...identity,
    },
    control: {
        current: { address: 8093, scale: 0.1, min: 6, max: 63, zeroStops: false },
        enable: { address: 8094, on: 1, off: 0 },
        phases: { address: 8087, one: 1, three: 0 },
        failSafe: {
            timeout: { address: 8083, type: 'uint32' },
            current: { address: 8085, scale: 0.1 },
        },
    },
};

export const POWER_BRAIN_S0: DeviceDefinition = {
    type: 'meter_powerbrain',
    kind: 'meter',
    title: 'cFos Power Brain S0',
    source: 'cFos Power Brain Modbus register map (S0 meters, units 2 and 3)',
    unit: 2,
    readings: {
        ...meterReadings,
        importWh: { address: 8058, type: 'int64' },
        // configured, not measured: the drivers read them once
        voltagesV: [{ address: 8045 }, { address: 8046 }, { address: 8047 }],
        ...identity,
    },
};
