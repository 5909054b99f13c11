// A wallbox we do not ship, as a user would describe it (a device definition), and a simulated
// one that answers as such a wallbox would: for the tests of user definitions (/cnf, editor).
import { at, type DeviceFixture, stringWords } from '../../lib/sim/register-sim';

/** A wallbox we do not ship, as a user would describe it. */
export const ACME = {
    type: 'evse_user_acme',
    kind: 'evse',
    title: 'Acme Box 11',
    status: { state: { address: 10 } },
    states: [
        { when: { state: [1] }, state: 1 },
        { when: { state: [2] }, state: 2 },
        { when: { state: [3] }, state: 3 },
    ],
    readings: {
        currentsA: [
            { address: 20, scale: 0.1 },
            { address: 21, scale: 0.1 },
            { address: 22, scale: 0.1 },
        ],
        model: { address: 40, type: 'string', words: 4 },
        serial: { address: 44, type: 'string', words: 4 },
    },
    control: { current: { address: 30, scale: 0.1, max: 16 } },
};

export const ACME_BOX: DeviceFixture = {
    type: 'evse_user_acme',
    title: 'Acme Box 11',
    source: 'made up: a user-defined wallbox',
    unit: 1,
    holding: {
        10: 3,
        ...at(20, [100, 101, 99]),
        30: 0,
        31: 0,
        ...at(40, stringWords('AB11', 4)),
        ...at(44, stringWords('A-77', 4)),
    },
    writable: [30, 31],
    states: { charging: { expect: { state: 3, currentsA: [10, 10.1, 9.9] } } },
};
