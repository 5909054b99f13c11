// Alfen Eve (NG9xx platform) as a Modbus TCP slave in "Socket" mode: socket 1 at unit 1,
// float32/float64 measurements, the Mode 3 state as a string, the max current valid for the
// configured validity time only.
import type { DeviceDefinition } from '../definition';

/** The first register of a string: two ASCII characters, the first in the high byte. */
const ascii = (text: string): number => (text.charCodeAt(0) << 8) | (text.charCodeAt(1) || 0);

export const ALFEN: DeviceDefinition = {
    type: 'evse_alfen_evepro',
    kind: 'evse',
    title: 'Alfen Eve Pro',
    source: 'Alfen N.V., Modbus Slave TCP/IP for Alfen NG9xx platform v2.3, section 3.4',
    fc: 3,
    unit: 1,
    // Registers 300–425 all answer (0xFFFF where a value is missing), so reads may bridge gaps.
    maxGap: 30,
    status: { mode3: { address: 1201 } },
    states: [
        { when: { mode3: [ascii('A')] }, state: 1 },
        { when: { mode3: [ascii('B1'), ascii('B2'), ascii('C1'), ascii('D1')] }, state: 2 },
        { when: { mode3: [ascii('C2'), ascii('D2')] }, state: 3 },
        { when: { mode3: [ascii('E'), ascii('F')] }, state: 5 },
    ],
    readings: {
        currentsA: [
            { address: 320, type: 'float32' },
            { address: 322, type: 'float32' },
            { address: 324, type: 'float32' },
        ],
        powerW: { address: 344, type: 'float32' },
        // Real energy delivered, sum.
        energyWh: { address: 374, type: 'float64' },
    },
    control: {
        // Modbus slave max current; both registers in one request.
        current: {
            fc: 16,
            address: 1210,
            type: 'float32',
            min: 6,
            max: 32,
            // Within the station's validity time (60 s by default), or it takes its safe current.
            rewriteMs: 30_000,
        },
        // Needs "Allow 1- and 3-phased charging" set in the service installer.
        phases: { address: 1215, one: 1, three: 3 },
    },
};
