// The /cnf context of a manager: its admin password and editor users, made once per site.
import { cnfContextFor, type CnfContext, type CnfContextOptions } from '../../lib/cnf/context';
import { MemoryUsers } from '../../lib/cnf/users';
import type { Site } from '../../lib/site/site';
import type { ManagerNode } from './types';

/** `more` counts only where the context is made: the manager node makes it first. */
export function cnfContextOf(
    manager: ManagerNode,
    site: Site,
    more: Pick<CnfContextOptions, 'diagFile' | 'log'> = {},
): CnfContext {
    return cnfContextFor(site, {
        adminPassword: manager.adminPassword,
        users: new MemoryUsers(manager.users),
        ...more,
    });
}
