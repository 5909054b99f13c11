// Errors of the /cnf layer: a vendor-style short message and the HTTP status it is sent with.
// Every failure a handler can meet is turned into one of these; nothing else reaches a client.
import { ModbusError } from '../modbus/errors';
import { FormulaError, VariableError } from '../rules/errors';
import { SiteConfigError } from '../site/site';
import { StoreError } from '../store/errors';
import { UserError } from '../users/directory';

export class CnfError extends Error {
    override readonly name = 'CnfError';

    constructor(
        readonly status: number,
        message: string,
        /** Extra response headers (WWW-Authenticate, Retry-After). */
        readonly headers: Readonly<Record<string, string>> = {},
    ) {
        super(message);
    }
}

export const badRequest = (message: string): CnfError => new CnfError(400, message);
export const notFound = (message: string): CnfError => new CnfError(404, message);
export const unknownDevice = (): CnfError => new CnfError(404, 'unknown device');

/**
 * A change that is in effect but not on disk: the store refused it or its write failed. The
 * reason is short and names no path (the client learns nothing about the host's files).
 */
export function notSaved(err: unknown): CnfError {
    const code = err instanceof StoreError ? err.code : undefined;
    // errno of the failed file operation: the StoreError's cause, or the error itself
    const errno = ((code ? (err as Error).cause : err) as NodeJS.ErrnoException | undefined)?.code;
    const reason =
        code === 'STORE_CLOSED'
            ? 'the manager is stopping'
            : code === 'STORE_INVALID'
              ? 'the store refused it'
              : `the store cannot be written${typeof errno === 'string' ? ` (${errno})` : ''}`;
    return new CnfError(503, `change not saved: ${reason}`);
}

/** A Modbus failure as the client sees it: the vendor's words for bad requests, 502/504 for silence. */
export function fromModbusError(err: ModbusError): CnfError {
    switch (err.code) {
        case 'MODBUS_TIMEOUT':
            return new CnfError(504, 'device not responding');
        case 'MODBUS_EXCEPTION':
            if (err.modbusCode === 2) return badRequest('bad modbus register');
            if (err.modbusCode === 3) return badRequest('bad modbus value');
            return new CnfError(502, `device error: ${err.message}`);
        case 'MODBUS_BAD_REQUEST':
            return badRequest(
                /bad modbus register( size)?$/.test(err.message)
                    ? err.message.replace(/^.*(bad modbus register( size)?)$/, '$1')
                    : err.message,
            );
        case 'MODBUS_QUEUE_FULL':
            return new CnfError(503, 'device busy');
        default:
            return new CnfError(502, 'device not reachable');
    }
}

/** Validation messages in plain words: "dev_id is required", "prio must be a number (got string)". */
export function tidy(message: string): string {
    return message
        .replace(/: Invalid input: expected \w+, received undefined/g, ' is required')
        .replace(/Invalid input: expected (\w+), received (\w+)/g, 'must be a $1 (got $2)')
        .replace(/unknown dev_type undefined/g, 'dev_type is required')
        .slice(0, 240);
}

/** Any thrown value → CnfError; unexpected ones become a bare 500 without details. */
export function toCnfError(err: unknown): CnfError {
    if (err instanceof CnfError)
        return err.status === 400 ? new CnfError(400, tidy(err.message), err.headers) : err;
    if (err instanceof ModbusError) return fromModbusError(err);
    if (err instanceof SiteConfigError || err instanceof UserError) {
        return badRequest(tidy(err.message));
    }
    if (err instanceof VariableError || err instanceof FormulaError) {
        return badRequest(tidy(err.message));
    }
    return new CnfError(500, 'internal error');
}
