// Huawei SUN2000 inverters (directly or through the Smart Dongle): holding registers, big-endian
// integers with the document's gains (voltage ÷10, current ÷1000, power in kW ÷1000 = W,
// accumulated yield in kWh ÷100).
import type { DeviceDefinition, FieldDef } from '../definition';

const current = (address: number): FieldDef => ({ address, type: 'int32', scale: 0.001 });
const voltage = (address: number): FieldDef => ({ address, type: 'uint16', scale: 0.1 });

export const HUAWEI_SUN2000: DeviceDefinition = {
    type: 'meter_sun2000_inverter',
    kind: 'meter',
    title: 'Huawei Sun2000 Inverter',
    source: 'Huawei Solar Inverter Modbus Interface Definitions, issue 04 (2022-03-29)',
    fc: 3,
    unit: 1,
    // 32078 (peak power of the day) sits between the currents and the power; 32095–32105 are
    // not defined, so the yield is a request of its own.
    maxGap: 2,
    readings: {
        voltagesV: [voltage(32069), voltage(32070), voltage(32071)],
        currentsA: [current(32072), current(32074), current(32076)],
        powerW: { address: 32080, type: 'int32' },
        importWh: { address: 32106, type: 'uint32', scale: 10 },
        model: { address: 30000, type: 'string', words: 15 },
        serial: { address: 30015, type: 'string', words: 10 },
    },
};
