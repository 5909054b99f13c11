// SMA inverters on the SMA Modbus profile (Sunny Tripower, Sunny Boy): unit 3, big-endian
// 32-bit values read whole. A value the inverter lacks reads its type's NaN; at night that is
// the AC power and the currents, which then mean 0.
import type { DeviceDefinition, FieldDef } from '../definition';

// S32 NaN 0x80000000, as the unsigned word pair and as the signed value it decodes to.
const S32_NAN = [0x80000000, -0x80000000];
const U32_NAN = [0xffffffff];

const s32 = (address: number, scale = 1): FieldDef => ({
    address,
    type: 'int32',
    scale,
    missing: S32_NAN,
    missingValue: 0,
});
const voltage = (address: number): FieldDef => ({
    address,
    type: 'uint32',
    scale: 0.01,
    missing: U32_NAN,
});

export const SMA_INVERTER: DeviceDefinition = {
    type: 'meter_sma_inverter',
    kind: 'meter',
    title: 'SMA Inverter (Sunny Tripower, Sunny Boy)',
    source: 'SMA Modbus interface, Modbus parameters and measured values (STP x.0-3AV-40)',
    fc: 3,
    unit: 3,
    // 30775–30788 are all defined (the phase powers sit between power and voltages).
    maxGap: 6,
    readings: {
        powerW: s32(30775),
        voltagesV: [voltage(30783), voltage(30785), voltage(30787)],
        currentsA: [s32(30977, 0.001), s32(30979, 0.001), s32(30981, 0.001)],
        importWh: { address: 30529, type: 'uint32', missing: U32_NAN },
        serial: { address: 30057, type: 'uint32' },
    },
};
