// The /cnf context of a manager: its admin password and editor users, made once per site.
import { cnfContextFor, type CnfContext } from '../../lib/cnf/context';
import { MemoryUsers } from '../../lib/cnf/users';
import type { Site } from '../../lib/site/site';
import type { ManagerNode } from './types';

export function cnfContextOf(manager: ManagerNode, site: Site): CnfContext {
    return cnfContextFor(site, {
        adminPassword: manager.adminPassword,
        users: new MemoryUsers(manager.users),
    });
}
