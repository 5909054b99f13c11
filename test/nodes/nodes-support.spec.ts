// The pure helpers behind the flow nodes: the control object, the status mapper.
import assert from 'node:assert/strict';
import { ManualClock } from '../../lib/core/clock';
import type { EvseSetpoint } from '../../lib/core/types';
import { controlOf } from '../../lib/cnf/ajax';
import { resolveTarget } from '../../lib/nodes-support/modbus-access';
import { deviceRing } from '../../lib/nodes-support/ring';
import { Site } from '../../lib/site/site';

const sp = (over: Partial<EvseSetpoint>): EvseSetpoint => ({
    current: 16000,
    chargingEnabled: true,
    released: false,
    state: 'charging',
    phases: 7,
    write: true,
    ...over,
});

describe('flow node helpers', () => {
    it('control object from a setpoint', () => {
        assert.deepEqual(controlOf(sp({})), {
            device_enabled: true,
            charging_enabled: true,
            paused: false,
            charging_current: 16000,
        });
        assert.deepEqual(controlOf(sp({ state: 'paused', current: 0, chargingEnabled: false })), {
            device_enabled: true,
            charging_enabled: false,
            paused: true,
            charging_current: 0,
        });
        assert.equal(controlOf(sp({ state: 'disabled', current: 0 })).device_enabled, false);
        assert.equal(controlOf(undefined).charging_current, 0);
    });

    it('status ring: waiting, charging 16 A, stale, offline, disabled, unknown', async () => {
        const clock = new ManualClock(1_000_000);
        const site = new Site({
            clock,
            params: { max_total_current: 32000, reserve_current: 0 },
            devices: [
                { dev_type: 'evse_ajax', dev_id: 'E1', stale_after: 5 },
                { dev_type: 'evse_ajax', dev_id: 'E2', device_enabled: false },
                { dev_type: 'meter_ajax', dev_id: 'M1', role: 3 },
            ],
        });
        assert.equal(deviceRing(site, 'E1', clock.now()).key, 'waiting');
        assert.deepEqual(deviceRing(site, 'E9', clock.now()), {
            fill: 'red',
            shape: 'ring',
            key: 'unknown',
            params: { id: 'E9' },
        });
        assert.equal(deviceRing(site, 'E2', clock.now()).key, 'disabled');
        site.push('M1', { powerW: 1000, currents: [1000, 1000, 1000] });
        site.push('E1', { state: 2 });
        await site.manager.runCycle();
        const ring = deviceRing(site, 'E1', clock.now());
        assert.equal(ring.key, 'charging');
        assert.equal(ring.fill, 'green');
        assert.deepEqual(deviceRing(site, 'M1', clock.now()), {
            fill: 'green',
            shape: 'dot',
            key: 'power',
            params: { w: 1000 },
        });
        assert.equal(deviceRing(site, 'E1', clock.now() + 6000).key, 'stale');
        site.manager.deviceState('E1').comError = true;
        assert.equal(deviceRing(site, 'E1', clock.now()).key, 'offline');
        await site.stop();
    });

    it('modbus targets: Power Brain names, dev_ids, bus addresses', async () => {
        // Loopback ports nobody listens on: the site's own drivers fail fast and are stopped.
        const site = new Site({
            devices: [
                { dev_type: 'evse_powerbrain', dev_id: 'E1', address: '127.0.0.1:1', id: 1 },
                {
                    dev_type: 'meter_sdm630',
                    dev_id: 'M1',
                    address: '/dev/ttyUSB0,9600,8,N,1',
                    id: 7,
                },
                { dev_type: 'evse_sim', dev_id: 'E2' },
            ],
        });
        assert.deepEqual(resolveTarget(site, 'meter1'), {
            bus: { kind: 'tcp', host: '127.0.0.1', port: 4702 },
            unit: 2,
            powerBrain: 'meter1',
            name: 'meter1',
        });
        assert.equal(resolveTarget(site, 'E1').powerBrain, 'evse');
        assert.equal(resolveTarget(site, 'M1').unit, 7);
        assert.equal(resolveTarget(site, 'M1').powerBrain, undefined);
        assert.deepEqual(resolveTarget(site, '192.0.2.20:502', '3').unit, 3);
        assert.throws(() => resolveTarget(site, 'E7'), /unknown device/);
        assert.throws(() => resolveTarget(site, 'E2'), /no Modbus address/);
        assert.throws(() => resolveTarget(site, 'x y'), /bad address/);
        assert.throws(() => resolveTarget(site, '192.0.2.20:502', 300), /unit must be 0..255/);
        assert.deepEqual(resolveTarget(site, '/dev/ttyUSB0,9600,8,N,1', 4).bus.kind, 'rtu');
        await site.stop();
    });
});
