// The /cnf compatibility API: command table, request handler, auth, views.
export {
    ADMIN_USER,
    AdminPassword,
    CnfAuth,
    isLocalAddress,
    LoginThrottle,
    parseBasic,
} from './auth';
export { COMMANDS, type CommandDef } from './commands';
export { CnfContext, cnfContextFor, type CnfContextOptions } from './context';
export { CnfError } from './errors';
export { handleCnf, handleSimPage, type CnfRequest, type CnfResponse } from './handle';
export { MAX_BODY_BYTES } from './query';
export { MemoryUsers, type User, type UserDirectory } from './users';
export { API_VERSION, devInfo, getParams } from './views';
