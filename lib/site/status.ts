// A compact state of a site for status rings, dashboards and MQTT.
import type { CycleReport } from '../core/engine';
import type { SetpointState } from '../core/types';
import { isEvse } from './schema';
import type { Site } from './site';

export interface SiteSummary {
    time: number;
    failSafe: boolean;
    /** Budget and loads per phase (mA). */
    budget: readonly number[];
    nonEvseLoad: readonly number[];
    evseLoad: readonly number[];
    overdraftMax: number;
    evses: {
        dev_id: string;
        name: string;
        state: SetpointState;
        current: number;
        phases: number;
    }[];
}

export function summarise(site: Site, report: CycleReport): SiteSummary {
    const { result } = report;
    return {
        time: report.at,
        failSafe: result.site.failSafe,
        budget: result.site.budget,
        nonEvseLoad: result.site.nonEvseLoad,
        evseLoad: result.site.evseLoad,
        overdraftMax: result.site.overdraftMax,
        evses: site.devices.filter(isEvse).map((e) => {
            const sp = result.setpoints.get(e.dev_id);
            return {
                dev_id: e.dev_id,
                name: e.name,
                state: sp?.state ?? 'idle',
                current: sp?.current ?? 0,
                phases: sp?.phases ?? 0,
            };
        }),
    };
}

export interface RingStatus {
    fill: 'green' | 'yellow' | 'red' | 'blue' | 'grey';
    shape: 'dot' | 'ring';
    text: string;
}

/** One status ring for a whole site: "2 charging 22 A, 1 paused". */
export function statusOf(s: SiteSummary): RingStatus {
    const charging = s.evses.filter((e) => e.current > 0);
    const paused = s.evses.filter((e) => e.state === 'paused').length;
    const amps = Math.round(charging.reduce((t, e) => t + e.current, 0) / 1000);
    const parts = [`${charging.length} charging ${amps} A`];
    if (paused) parts.push(`${paused} paused`);
    if (s.failSafe) return { fill: 'red', shape: 'ring', text: `fail-safe, ${parts.join(', ')}` };
    return { fill: charging.length ? 'green' : 'grey', shape: 'dot', text: parts.join(', ') };
}
