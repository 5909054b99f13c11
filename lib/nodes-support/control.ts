// The control object of an HTTP-input wallbox (the set_ajax_evse response): what the flow must
// apply to the real wallbox.
import type { EvseSetpoint } from '../core/types';

export interface EvseControl {
    device_enabled: boolean;
    charging_enabled: boolean;
    paused: boolean;
    /** mA per phase the car may draw; 0 = no charging. */
    charging_current: number;
}

export function controlOf(sp: EvseSetpoint | undefined, enabled = true): EvseControl {
    if (!sp) {
        return {
            device_enabled: enabled,
            charging_enabled: false,
            paused: false,
            charging_current: 0,
        };
    }
    return {
        device_enabled: enabled && sp.state !== 'disabled',
        charging_enabled: sp.chargingEnabled && sp.current > 0,
        paused: sp.state === 'paused',
        charging_current: sp.current,
    };
}
