// The registry of Modbus device types and the factory that makes their drivers.
import assert from 'node:assert/strict';
import { DEV_TYPE_LABELS } from '../../../lib/cnf/views';
import { DefinedEvse, DefinedMeter, parseDefinition } from '../../../lib/devices/defined-device';
import { BUILT_IN_DEFINITIONS } from '../../../lib/devices/definitions';
import { POWER_BRAIN_EVSE, POWER_BRAIN_S0 } from '../../../lib/devices/definitions/powerbrain';
import { createModbusDriver, MODBUS_DEV_TYPES } from '../../../lib/devices/factory';
import { GenericModbusMeter } from '../../../lib/devices/generic-meter';
import { PowerBrainEvse, PowerBrainMeter } from '../../../lib/devices/powerbrain';
import {
    builtInDefinitions,
    findDefinition,
    isModbusDevType,
    modbusDevTypes,
    parseUserDefinitions,
} from '../../../lib/devices/registry';
import { wordCount } from '../../../lib/modbus/codec';
import { POWER_BRAIN_MAP } from '../../../lib/modbus/powerbrain-map';
import { BusPool } from '../../../lib/modbus/pool';

const USER_METER = {
    type: 'meter_user_acme',
    kind: 'meter',
    title: 'Acme meter',
    readings: { powerW: { address: 10, type: 'int32' } },
};

describe('devices/registry (Modbus device types)', () => {
    it('every built-in definition is valid, has its own type and is listed with its title', () => {
        const types = BUILT_IN_DEFINITIONS.map((d) => d.type);
        assert.equal(new Set(types).size, types.length, 'types are unique');
        assert.equal(builtInDefinitions().size, types.length);
        for (const d of BUILT_IN_DEFINITIONS) {
            parseDefinition(d);
            assert.equal(MODBUS_DEV_TYPES[d.type], d.title);
            assert.equal(DEV_TYPE_LABELS[d.type], d.title, 'get_dev_types / dev_meta');
            assert.ok(isModbusDevType(d.type));
        }
        assert.equal(MODBUS_DEV_TYPES.meter_modbus, 'Modbus meter (register map)');
        assert.equal(DEV_TYPE_LABELS.evse_ocpp, 'OCPP 1.6J / 2.0.1');
    });

    it('user definitions join the list; their types cannot take a built-in one', () => {
        const user = parseUserDefinitions([USER_METER]);
        assert.equal(modbusDevTypes(user).meter_user_acme, 'Acme meter');
        assert.ok(isModbusDevType('meter_user_acme', user));
        assert.ok(!isModbusDevType('meter_user_acme'));
        assert.equal(findDefinition('meter_user_acme', user)?.title, 'Acme meter');
        assert.throws(
            () => parseUserDefinitions([{ ...USER_METER, type: 'meter_sdm630' }]),
            /^DefinitionError: device_defs\[0\]\.type: a user definition's type starts with/,
        );
        assert.throws(
            () => parseUserDefinitions([USER_METER, USER_METER]),
            /device_defs\[1\]\.type: meter_user_acme is defined twice/,
        );
        assert.throws(
            () => parseUserDefinitions([{ ...USER_METER, kind: 'evse' }]),
            /device_defs\[0\]\.control: a wallbox needs control\.current/,
        );
        assert.throws(
            () =>
                parseUserDefinitions([
                    { ...USER_METER, readings: { powerW: { address: 10, scale: 'x' } } },
                ]),
            /device_defs\[0\]\.readings\.powerW\.scale: /,
        );
    });

    it('the Power Brain definitions name registers of its map, with their widths', () => {
        const check = (fields: unknown, unit: 'evse' | 'meter1'): void => {
            const walk = (v: unknown): void => {
                if (Array.isArray(v)) return v.forEach(walk);
                if (typeof v !== 'object' || v === null) return;
                const f = v as { address?: number; type?: string; words?: number };
                if (typeof f.address === 'number') {
                    const reg = POWER_BRAIN_MAP[unit].find((r) => r.address === f.address);
                    assert.ok(reg, `${unit} ${f.address} is in the map`);
                    assert.equal(
                        wordCount((f.type ?? 'uint16') as never, f.words ?? 1),
                        reg.words,
                        `width of ${f.address}`,
                    );
                    return;
                }
                Object.values(v).forEach(walk);
            };
            walk(fields);
        };
        const evse = parseDefinition(POWER_BRAIN_EVSE);
        check([evse.status, evse.readings, evse.control], 'evse');
        const s0 = parseDefinition(POWER_BRAIN_S0);
        check([s0.readings], 'meter1');
    });

    it('the factory makes a driver for every type: definitions, the Power Brain, the register map', async () => {
        const pool = new BusPool({});
        const ctx = { pool, definitions: [USER_METER] as never };
        const make = (dev_type: string, extra = {}) =>
            createModbusDriver(
                {
                    dev_type,
                    dev_id: dev_type.startsWith('evse') ? 'E1' : 'M1',
                    address: '127.0.0.1:1',
                    ...extra,
                },
                ctx,
            );
        try {
            for (const d of BUILT_IN_DEFINITIONS) {
                const driver = make(d.type);
                assert.equal(driver.kind, d.kind);
                await driver.close();
            }
            const pb = make('evse_powerbrain');
            assert.ok(pb instanceof PowerBrainEvse);
            const s0 = make('meter_powerbrain');
            assert.ok(s0 instanceof PowerBrainMeter);
            const sdm = make('meter_sdm630');
            assert.ok(sdm instanceof DefinedMeter);
            const user = make('meter_user_acme');
            assert.ok(user instanceof DefinedMeter);
            const map = make('meter_modbus', { registers: { powerW: { address: 1 } } });
            assert.ok(map instanceof GenericModbusMeter);
            assert.throws(() => make('meter_user_other'), /unknown Modbus device type/);
            for (const d of [pb, s0, sdm, user, map]) await d.close();
            assert.ok(!(sdm instanceof DefinedEvse));
        } finally {
            await pool.close();
        }
    });
});
