// Status rings for flow nodes: the one mapper in lib/nodes-support/ring.ts, translated here.
import type { Node, NodeAPI, NodeStatus } from 'node-red';
import { deviceRing, type Ring } from '../../lib/nodes-support/ring';
import type { Site } from '../../lib/site/site';

export function toStatus(RED: NodeAPI, type: string, ring: Ring): NodeStatus {
    // The catalogs keep every status text short (Node-RED asks for under about 20 characters).
    return {
        fill: ring.fill,
        shape: ring.shape,
        text: RED._(`${type}.status.${ring.key}`, ring.params),
    };
}

/**
 * Keeps a node's ring showing one device's state, refreshed after every cycle (only sent when it
 * changes). Returns the unsubscribe function.
 */
export function watchDevice(
    RED: NodeAPI,
    node: Node,
    type: string,
    site: Site,
    devId: () => string,
): () => void {
    let last = '';
    const update = () => {
        const status = toStatus(RED, type, deviceRing(site, devId(), Date.now()));
        const key = JSON.stringify(status);
        if (key === last) return;
        last = key;
        node.status(status);
    };
    update();
    return site.manager.events.on('cycle', update);
}
