// The /cnf context of a manager: its admin password, made once per site (the editor's users are
// the Site's own, given when the manager node made it).
import { cnfContextFor, type CnfContext, type CnfContextOptions } from '../../lib/cnf/context';
import type { Site } from '../../lib/site/site';
import type { ManagerNode } from './types';

/** `more` counts only where the context is made: the manager node makes it first. */
export function cnfContextOf(
    manager: ManagerNode,
    site: Site,
    more: Pick<CnfContextOptions, 'diagFile' | 'log' | 'sessionStorage' | 'onSessionError'> = {},
): CnfContext {
    return cnfContextFor(site, {
        adminPassword: manager.adminPassword,
        ...more,
    });
}
