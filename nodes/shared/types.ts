// Types shared by the node adapters (kept apart from the node files: a node file has only its
// `export =`).
import type { Node, NodeDef } from 'node-red';
import type { Site } from '../../lib/site/site';

export interface ManagerNode extends Node {
    evcmManager: true;
    /** The running site, or null when the configuration is invalid. */
    site: Site | null;
    configError: string;
    /** Admin password for /cnf ('' = none set); a Node-RED credential. */
    adminPassword: string;
    /** Users from the editor (RFIDs, PINs, the wallboxes they may use). */
    users: readonly unknown[];
    /** Settles once the stored /cnf changes are applied and control runs; never rejects. */
    ready: Promise<void>;
    /** The last problem with the store ('' = none). */
    storeProblem: string;
}

export interface ManagerNodeDef extends NodeDef, Record<string, unknown> {
    devices?: string;
}

/** The evcm-manager config node with this id, if it exists and is one. */
export function getManager(
    RED: { nodes: { getNode(id: string): Node | null } },
    id: unknown,
): ManagerNode | null {
    if (typeof id !== 'string' || !id) return null;
    const node = RED.nodes.getNode(id) as Partial<ManagerNode> | null;
    return node?.evcmManager ? (node as ManagerNode) : null;
}
