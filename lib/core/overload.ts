// Whether a reading pushed between cycles must be acted on at once: a meter that shows a phase
// above the limit of what it measures (the site's budget, or its group's fuse). Everything else
// waits for the next scheduled decision.
import { MeterRole, type AllocationResult, type MeterReading, type SiteConfig } from './types';

/** The highest phase current (mA) a meter reading shows; a power-only meter counts as balanced. */
function highestPhase(reading: MeterReading, voltage: number): number {
    if (reading.currents)
        return Math.max(reading.currents[0], reading.currents[1], reading.currents[2]);
    return Math.round((reading.powerW * 1000) / voltage / 3);
}

/**
 * Whether `reading` of meter `meterId` shows a phase above its limit: for a group's meter the
 * group's maximum, for the site's grid meter the budget of the last decision (max_total_current
 * less the reserve and any overdraw penalty), or the configured one before the first decision.
 */
export function pushedOverload(
    config: SiteConfig,
    last: AllocationResult | undefined,
    meterId: string,
    reading: MeterReading,
): boolean {
    const meter = config.meters.find((m) => m.id === meterId);
    if (!meter?.enabled) return false;
    const highest = highestPhase(reading, config.params.voltage);
    const group = config.groups.find((g) => g.meter === meterId);
    if (group) return highest > group.maxCurrent;
    if (meter.role !== MeterRole.gridDemand) return false;
    const p = config.params;
    const limit = last
        ? Math.min(...last.site.budget)
        : Math.floor((p.maxTotalCurrent * p.maxTotalCurPrc) / 100) - p.reserveCurrent;
    return highest > limit;
}
