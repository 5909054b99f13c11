// One status mapper for every flow node: a device's state → a ring. Texts are catalog keys with
// parameters; the node translates them (`<type>.status.<key>`), so lib/ stays free of Node-RED.
import type { Site } from '../site/site';

export interface Ring {
    fill: 'green' | 'yellow' | 'red' | 'blue' | 'grey';
    shape: 'dot' | 'ring';
    /** Catalog key under `<type>.status.`. */
    key: string;
    params?: Record<string, string | number>;
}

const amps = (mA: number) => Math.round(mA / 100) / 10;

/** The state of one device of a site at `now`: waiting, stale, offline, charging 16 A, paused… */
export function deviceRing(site: Site, devId: string, now: number): Ring {
    const failing = cycleFailureRing(site);
    if (failing) return failing;
    const entry = site.device(devId);
    if (!entry) return { fill: 'red', shape: 'ring', key: 'unknown', params: { id: devId } };
    const manager = site.manager;
    const cfg =
        manager.site.evses.find((e) => e.id === devId) ??
        manager.site.meters.find((m) => m.id === devId);
    if (cfg && !cfg.enabled) return { fill: 'grey', shape: 'dot', key: 'disabled' };
    const state = manager.deviceState(devId);
    if (state.comError) {
        return { fill: 'red', shape: 'ring', key: 'offline', params: { error: state.lastError } };
    }
    const takenAt = state.sample.takenAt;
    if (takenAt === undefined) return { fill: 'yellow', shape: 'ring', key: 'waiting' };
    if (cfg && now - takenAt > cfg.staleAfterMs) {
        return {
            fill: 'yellow',
            shape: 'ring',
            key: 'stale',
            params: { s: Math.round((now - takenAt) / 1000) },
        };
    }
    const sp = manager.lastCycle?.result.setpoints.get(devId);
    if (!sp) {
        const reading = state.sample.reading;
        if (reading && 'powerW' in reading && reading.powerW !== undefined) {
            return { fill: 'green', shape: 'dot', key: 'power', params: { w: reading.powerW } };
        }
        return { fill: 'green', shape: 'dot', key: 'ok' };
    }
    switch (sp.state) {
        case 'charging':
            return {
                fill: 'green',
                shape: 'dot',
                key: 'charging',
                params: { a: amps(sp.current) },
            };
        case 'paused':
            return { fill: 'yellow', shape: 'dot', key: 'paused' };
        case 'switching':
            return {
                fill: 'blue',
                shape: 'dot',
                key: 'switching',
                params: { n: sp.phaseCount ?? 3 },
            };
        case 'failsafe':
            return { fill: 'red', shape: 'dot', key: 'failsafe', params: { a: amps(sp.current) } };
        case 'disabled':
            return { fill: 'grey', shape: 'dot', key: 'disabled' };
        case 'released':
            return { fill: 'grey', shape: 'ring', key: 'released' };
        case 'observe':
            return { fill: 'grey', shape: 'ring', key: 'observe' };
        case 'unreachable':
            return { fill: 'red', shape: 'ring', key: 'offline', params: { error: '' } };
        case 'idle':
            return { fill: 'grey', shape: 'dot', key: 'idle', params: { a: amps(sp.current) } };
    }
}

/** A ring for a node that has no usable manager or configuration. */
export function problemRing(
    key: 'no-manager' | 'bad-config' | 'error',
    params?: Record<string, string>,
): Ring {
    return { fill: 'red', shape: 'ring', key, ...(params ? { params } : {}) };
}

/** Red while the manager's cycles fail: nothing it shows is current then. */
export function cycleFailureRing(site: Site): Ring | null {
    const failing = site.manager.failing;
    if (!failing) return null;
    return {
        fill: 'red',
        shape: 'ring',
        key: 'cycle-failed',
        params: { error: failing.error.message.slice(0, 40) },
    };
}
