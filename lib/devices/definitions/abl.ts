// ABL eMH1 (EVCC2 controller): RS-485, holding registers, writes with fc 16 only; the current
// is a PWM duty cycle in 0.1 % (0.06 A per unit) and 100 % (0x03E8) means "no charging".
import type { DeviceDefinition } from '../definition';

export const ABL_EMH1: DeviceDefinition = {
    type: 'evse_abl_emh1',
    kind: 'evse',
    title: 'ABL eMH1 (EVCC2)',
    source: 'ABL EVCC2 Modbus interface (state 0x0004, Icmax 0x0014, currents 0x0030–0x0032) as driven on real devices',
    fc: 3,
    unit: 1,
    status: { state: { address: 0x0004 } },
    states: [
        // A1 waiting for EV, A2 reserved.
        { when: { state: [0xa0, 0xa1, 0xa2] }, state: 1 },
        // B1 EV asks for charging, B2 EV may charge, B3 charging finished or paused.
        { when: { state: [0xb0, 0xb1, 0xb2, 0xb3] }, state: 2 },
        // C2 charging, C3/C4 charging with a reduced current.
        { when: { state: [0xc2, 0xc3, 0xc4] }, state: 3 },
        // F0…FF errors.
        { when: { state: { min: 0xf0, max: 0xff } }, state: 5 },
    ],
    readings: {
        // The controller lists L3, L2, L1; 0x03E8 = no sensor value.
        currentsA: [
            { address: 0x0032, scale: 0.1, missing: [0x03e8] },
            { address: 0x0031, scale: 0.1, missing: [0x03e8] },
            { address: 0x0030, scale: 0.1, missing: [0x03e8] },
        ],
    },
    control: {
        current: { fc: 16, address: 0x0014, scale: 0.06, min: 6, max: 32, stop: 0x03e8 },
    },
};
