// What the flow nodes share: their editor config, the manager lookup and error translation.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { z } from 'zod';
import { problemRing } from '../../lib/nodes-support/ring';
import type { Site } from '../../lib/site/site';
import { toStatus } from './status';
import { getManager, type ManagerNode } from './types';

export interface FlowNodeDef extends NodeDef, Record<string, unknown> {
    manager: string;
}

export const DevIdSchema = (prefix: 'E' | 'M') =>
    z
        .string()
        .trim()
        .regex(
            new RegExp(`^${prefix}[1-9][0-9]{0,4}$`),
            `dev_id must be ${prefix}<n>, e.g. ${prefix}1`,
        );

/**
 * The running site of the node's manager, or null after reporting why there is none (red ring,
 * one error): the node then registers no handlers.
 */
export function siteFor(RED: NodeAPI, node: Node, type: string, managerId: unknown): Site | null {
    const manager: ManagerNode | null = getManager(RED, managerId);
    if (!manager) {
        node.error(RED._(`${type}.errors.missing-config`));
        node.status(toStatus(RED, type, problemRing('no-manager')));
        return null;
    }
    if (!manager.site) {
        node.error(RED._(`${type}.errors.manager-config`, { error: manager.configError }));
        node.status(toStatus(RED, type, problemRing('bad-config')));
        return null;
    }
    return manager.site;
}

/** Reports an invalid node configuration once: error and red ring. */
export function badConfig(RED: NodeAPI, node: Node, type: string, message: string): void {
    node.error(RED._(`${type}.errors.bad-config`, { error: message }));
    node.status(toStatus(RED, type, problemRing('bad-config')));
}

/** Errors from lib/ are Errors with a message that names the problem; anything else is wrapped. */
export function asError(e: unknown): Error {
    return e instanceof Error ? e : new Error(String(e));
}
