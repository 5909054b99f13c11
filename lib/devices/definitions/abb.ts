// ABB B23 / B24: holding registers, big-endian; energies uint64 in 0.01 kWh, voltages uint32 in
// 0.1 V, currents uint32 in 0.01 A (magnitudes), active power int32 in 0.01 W (signed).
import type { DeviceDefinition, FieldDef } from '../definition';

const u32 = (address: number, scale: number): FieldDef => ({ address, type: 'uint32', scale });
const i32 = (address: number, scale: number): FieldDef => ({ address, type: 'int32', scale });

export const ABB_B23_B24: DeviceDefinition = {
    type: 'meter_abb_b23_b24',
    kind: 'meter',
    title: 'ABB B23 / B24',
    source: 'ABB B23/B24 User Manual 2CMC485003M0201, 9.4 mapping tables',
    fc: 3,
    readings: {
        voltagesV: [u32(0x5b00, 0.1), u32(0x5b02, 0.1), u32(0x5b04, 0.1)],
        currentsA: [u32(0x5b0c, 0.01), u32(0x5b0e, 0.01), u32(0x5b10, 0.01)],
        powerW: i32(0x5b14, 0.01),
        phasePowersW: [i32(0x5b16, 0.01), i32(0x5b18, 0.01), i32(0x5b1a, 0.01)],
        importWh: { address: 0x5000, type: 'uint64', scale: 10 },
        exportWh: { address: 0x5004, type: 'uint64', scale: 10 },
        serial: { address: 0x8900, type: 'uint32' },
    },
    // Voltages, currents (with N) and powers are one contiguous block.
    maxGap: 8,
};
