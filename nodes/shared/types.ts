// Types shared by the node adapters (kept apart from the node files: a node file has only its
// `export =`).
import type { Node, NodeDef } from 'node-red';
import type { Events } from '../../lib/core/events';
import type { OcppFlowPayload } from '../../lib/nodes-support/ocpp';
import type { OcppCentralSystem } from '../../lib/ocpp/central-system';
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

/** The evcm-ocpp config node: the OCPP central system managers share. */
export interface OcppNode extends Node {
    evcmOcpp: true;
    /** null when the configuration is invalid. */
    central: OcppCentralSystem | null;
    /** Every OCPP message of the charge points, for evcm-ocpp-in nodes. */
    messages: Events<{ message: { identity: string; payload: OcppFlowPayload } }>;
}

/** The evcm-ocpp config node with this id, if it exists and is one. */
export function getOcpp(
    RED: { nodes: { getNode(id: string): Node | null } },
    id: unknown,
): OcppNode | null {
    if (typeof id !== 'string' || !id) return null;
    const node = RED.nodes.getNode(id) as Partial<OcppNode> | null;
    return node?.evcmOcpp ? (node as OcppNode) : null;
}
