// Status rings for flow nodes: the one mapper in lib/nodes-support/ring.ts, translated here.
import type { Node, NodeAPI, NodeStatus } from 'node-red';
import { cycleFailureRing, deviceRing, type Ring } from '../../lib/nodes-support/ring';
import type { Site } from '../../lib/site/site';

export function toStatus(RED: NodeAPI, type: string, ring: Ring): NodeStatus {
    // The catalogs keep every status text short (Node-RED asks for under about 20 characters).
    return {
        fill: ring.fill,
        shape: ring.shape,
        text: RED._(`${type}.status.${ring.key}`, ring.params),
    };
}

export interface DeviceWatch {
    /** A problem of the node's own input (red ring) until cleared with null. */
    problem(message: string | null): void;
    off(): void;
}

/**
 * Keeps a node's ring showing one device's state, refreshed after every cycle (only sent when it
 * changes), or the node's own input problem while there is one.
 */
export function watchDevice(
    RED: NodeAPI,
    node: Node,
    type: string,
    site: Site,
    devId: () => string,
): DeviceWatch {
    let last = '';
    let problem: string | null = null;
    const update = () => {
        const ring: Ring =
            problem === null
                ? deviceRing(site, devId(), Date.now())
                : { fill: 'red', shape: 'ring', key: 'bad-input', params: { error: problem } };
        const status = toStatus(RED, type, ring);
        const key = JSON.stringify(status);
        if (key === last) return;
        last = key;
        node.status(status);
    };
    update();
    const offs = [
        site.manager.events.on('cycle', update),
        site.manager.events.on('cycleFailed', update),
    ];
    return {
        problem(message) {
            problem = message === null ? null : message.slice(0, 40);
            update();
        },
        off: () => offs.forEach((off) => off()),
    };
}

/**
 * A red ring while the manager's cycles fail, for nodes whose own status does not follow the
 * cycle; `restore` puts the node's own status back when a cycle succeeds again. Returns the
 * unsubscribe function.
 */
export function showCycleFailures(
    RED: NodeAPI,
    node: Node,
    type: string,
    site: Site,
    restore: () => void,
): () => void {
    let shown = '';
    const offFailed = site.manager.events.on('cycleFailed', () => {
        const ring = cycleFailureRing(site);
        if (!ring) return;
        const status = toStatus(RED, type, ring);
        const key = JSON.stringify(status);
        if (key === shown) return;
        shown = key;
        node.status(status);
    });
    const offRecovered = site.manager.events.on('cycleRecovered', () => {
        shown = '';
        restore();
    });
    return () => {
        offFailed();
        offRecovered();
    };
}
