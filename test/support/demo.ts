// The `npm start` demo flow for tests: its fixed simulator ports moved to free ones, so that a
// test never depends on 14701.. being free (each simulator also serves its S0 meters on the next
// two ports).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePortBlock } from '../../lib/sim/powerbrain-sim';

export const demoFile = join(__dirname, '..', '..', '..', 'demo', 'flows.json');
/** The EVSE ports of the demo's three Power Brain simulators, as written in demo/flows.json. */
export const DEMO_PORTS = [14701, 14711, 14721] as const;

export type DemoNode = { id: string; type: string; z?: string; [k: string]: unknown };

/** Node types of FlowFuse Dashboard 2 (the demo's dashboard tab): only a real Node-RED has them. */
export const isDashboardWidget = (n: { type: string }): boolean => n.type.startsWith('ui-');

/**
 * demo/flows.json with every demo port replaced by a free one (simulators and device table).
 * Without `dashboard`, the Dashboard 2 widgets are left out (the test helper cannot load them);
 * the evcm-dashboard node stays.
 */
export async function demoFlow(
    options: { dashboard?: boolean } = {},
): Promise<{ flow: DemoNode[]; ports: number[] }> {
    const ports: number[] = [];
    for (let i = 0; i < DEMO_PORTS.length; i++) {
        let base = await freePortBlock();
        // Three separate blocks: probing does not reserve, so keep them apart.
        while (ports.some((p) => Math.abs(p - base) < 3)) base = await freePortBlock();
        ports.push(base);
    }
    const text = readFileSync(demoFile, 'utf8');
    const pattern = new RegExp(`\\b(${DEMO_PORTS.join('|')})\\b`, 'g');
    const moved = text.replace(pattern, (p) =>
        String(ports[DEMO_PORTS.indexOf(Number(p) as never)]),
    );
    const flow = JSON.parse(moved) as DemoNode[];
    return { flow: options.dashboard ? flow : flow.filter((n) => !isDashboardWidget(n)), ports };
}
