// Errors of the Modbus layer: real Error objects with a code and the device they concern.
// modbus-serial rejects with plain objects for timeouts and closed ports; normalise() turns every
// failure into a ModbusError so that callers can show, count and translate it.

export type ModbusErrorCode =
    /** The device did not answer within the request timeout. */
    | 'MODBUS_TIMEOUT'
    /** The device answered with a Modbus exception (see modbusCode). */
    | 'MODBUS_EXCEPTION'
    /** The connection was lost while the request was queued or in flight. */
    | 'MODBUS_DISCONNECTED'
    /** The bus is not connected (connecting or waiting to reconnect). */
    | 'MODBUS_NOT_CONNECTED'
    /** Opening the connection failed. */
    | 'MODBUS_CONNECT_FAILED'
    /** The bus queue is full. */
    | 'MODBUS_QUEUE_FULL'
    /** The bus was closed. */
    | 'MODBUS_CLOSED'
    /** The device failed recently and is skipped until its back-off ends. */
    | 'MODBUS_BACKOFF'
    /** The reply does not have the expected shape. */
    | 'MODBUS_BAD_REPLY'
    /** An address, register or value that cannot be used. */
    | 'MODBUS_BAD_REQUEST';

/** Standard Modbus exception codes. */
const EXCEPTION_NAMES: Record<number, string> = {
    1: 'illegal function',
    2: 'illegal data address',
    3: 'illegal data value',
    4: 'server device failure',
    5: 'acknowledge',
    6: 'server device busy',
    8: 'memory parity error',
    10: 'gateway path unavailable',
    11: 'gateway target device failed to respond',
};

export class ModbusError extends Error {
    override readonly name = 'ModbusError';
    /** The device the request was for, as the caller named it. */
    readonly device: string;
    /** The Modbus exception code, for MODBUS_EXCEPTION. */
    readonly modbusCode?: number;

    constructor(
        readonly code: ModbusErrorCode,
        device: string,
        message: string,
        options?: { cause?: unknown; modbusCode?: number },
    ) {
        super(device ? `${device}: ${message}` : message, { cause: options?.cause });
        this.device = device;
        if (options?.modbusCode !== undefined) this.modbusCode = options.modbusCode;
    }
}

export function exceptionName(code: number): string {
    return EXCEPTION_NAMES[code] ?? `exception ${code}`;
}

function field(e: unknown, key: string): unknown {
    return typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[key] : undefined;
}

/** Any failure from modbus-serial or the socket below it → ModbusError naming the device. */
export function normalise(e: unknown, device: string, timeoutMs?: number): ModbusError {
    if (e instanceof ModbusError) return e;
    const modbusCode = field(e, 'modbusCode');
    if (typeof modbusCode === 'number') {
        return new ModbusError(
            'MODBUS_EXCEPTION',
            device,
            `Modbus exception ${modbusCode} (${exceptionName(modbusCode)})`,
            { cause: e, modbusCode },
        );
    }
    const errno = field(e, 'errno') ?? field(e, 'code');
    const message = field(e, 'message');
    const text = typeof message === 'string' && message ? message : String(e);
    if (errno === 'ETIMEDOUT' || field(e, 'name') === 'TransactionTimedOutError') {
        const within = timeoutMs !== undefined ? ` within ${timeoutMs} ms` : '';
        return new ModbusError('MODBUS_TIMEOUT', device, `no answer${within}`, { cause: e });
    }
    if (field(e, 'name') === 'ModbusBadReply') {
        // A garbled frame on a serial line (RTU over TCP): the device answered, the line lives.
        return new ModbusError('MODBUS_BAD_REPLY', device, text, { cause: e });
    }
    if (field(e, 'name') === 'PortNotOpenError') {
        return new ModbusError('MODBUS_NOT_CONNECTED', device, 'not connected', { cause: e });
    }
    return new ModbusError('MODBUS_DISCONNECTED', device, text, { cause: e });
}
