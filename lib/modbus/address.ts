// Bus addresses as the vendor writes them: `host:port`, `COM1,9600,8,N,1`,
// `/dev/ttyUSB0,19200,8,E,1`, and the Power Brain's own names `evse`, `meter1`, `meter2`; and for
// serial gateways that pass RTU frames over a socket unchanged ("RTU over TCP", transparent
// mode), `host:port,rtu` or `host:port,rtu,19200` (the baud rate of the gateway's RS-485 side,
// which sets the pause between frames): the vendor's comma style, with the protocol where a
// serial port has its line settings.
import { ModbusError } from './errors';

export interface TcpAddress {
    kind: 'tcp';
    host: string;
    port: number;
    /** `rtu`: RTU frames (with CRC) over the socket instead of Modbus TCP (MBAP). */
    framing?: 'rtu';
    /** RTU over TCP: baud rate of the gateway's serial side, for the pause between frames. */
    baudRate?: number;
}

export type Parity = 'none' | 'even' | 'odd' | 'mark' | 'space';

export interface SerialAddress {
    kind: 'rtu';
    path: string;
    baudRate: number;
    dataBits: 5 | 6 | 7 | 8;
    parity: Parity;
    stopBits: 1 | 2;
}

export type BusAddress = TcpAddress | SerialAddress;

/** A device: the bus it is on and its unit id there. */
export interface DeviceAddress {
    bus: BusAddress;
    unit: number;
}

export const MODBUS_TCP_PORT = 502;

/** Power Brain names → unit id and the TCP port the Power Brain serves that unit on. */
export const POWER_BRAIN_UNITS = {
    evse: { unit: 1, port: 4701 },
    meter1: { unit: 2, port: 4702 },
    meter2: { unit: 3, port: 4703 },
} as const;
export type PowerBrainName = keyof typeof POWER_BRAIN_UNITS;

export function isPowerBrainName(s: string): s is PowerBrainName {
    return Object.prototype.hasOwnProperty.call(POWER_BRAIN_UNITS, s.toLowerCase());
}

const PARITY: Record<string, Parity> = { n: 'none', e: 'even', o: 'odd', m: 'mark', s: 'space' };

function bad(address: string, why: string): ModbusError {
    return new ModbusError('MODBUS_BAD_REQUEST', '', `bad address "${address}": ${why}`);
}

function parsePort(text: string, address: string): number {
    const port = Number(text);
    if (!/^\d+$/.test(text) || port < 1 || port > 65535)
        throw bad(address, 'port must be 1..65535');
    return port;
}

function parseBaud(text: string, address: string): number {
    const baudRate = Number(text);
    if (!/^\d+$/.test(text) || baudRate < 50 || baudRate > 4_000_000) {
        throw bad(address, 'bad baud rate');
    }
    return baudRate;
}

/** Parses a bus address; throws a ModbusError (MODBUS_BAD_REQUEST) when it cannot be used. */
export function parseBusAddress(address: string): BusAddress {
    const text = address.trim();
    if (!text) throw bad(address, 'empty');
    const rtu = /^(.*?),\s*rtu\s*(?:,\s*([^,]*))?$/i.exec(text);
    if (rtu) {
        const host = parseBusAddress(rtu[1]!);
        if (host.kind !== 'tcp') throw bad(address, 'RTU over TCP needs host:port before ",rtu"');
        const tcp: TcpAddress = { ...host, framing: 'rtu' };
        if (rtu[2] !== undefined) tcp.baudRate = parseBaud(rtu[2].trim(), address);
        return tcp;
    }
    if (text.includes(',') || /^(COM\d+|\/dev\/)/i.test(text)) {
        const [path = '', baud = '9600', bits = '8', parity = 'N', stop = '1', ...rest] = text
            .split(',')
            .map((s) => s.trim());
        if (rest.length) throw bad(address, 'too many fields');
        if (!path) throw bad(address, 'no serial port');
        const baudRate = parseBaud(baud, address);
        if (!['5', '6', '7', '8'].includes(bits)) throw bad(address, 'data bits must be 5..8');
        const p = PARITY[parity.toLowerCase()];
        if (!p) throw bad(address, 'parity must be N, E, O, M or S');
        if (stop !== '1' && stop !== '2') throw bad(address, 'stop bits must be 1 or 2');
        return {
            kind: 'rtu',
            path,
            baudRate,
            dataBits: Number(bits) as 5 | 6 | 7 | 8,
            parity: p,
            stopBits: Number(stop) as 1 | 2,
        };
    }
    // [v6]:port, host:port or a bare host
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
    if (v6) {
        return {
            kind: 'tcp',
            host: v6[1]!,
            port: v6[2] ? parsePort(v6[2], address) : MODBUS_TCP_PORT,
        };
    }
    const colon = text.lastIndexOf(':');
    if (colon > 0 && text.indexOf(':') === colon) {
        return {
            kind: 'tcp',
            host: text.slice(0, colon),
            port: parsePort(text.slice(colon + 1), address),
        };
    }
    if (/\s|\//.test(text)) throw bad(address, 'not a host name');
    return { kind: 'tcp', host: text, port: MODBUS_TCP_PORT };
}

/**
 * Resolves a device's `address` and `id` from the device table. The Power Brain names refer to
 * the Power Brain at `powerBrainHost` (its ports 4701..4703) and fix the unit id.
 */
export function resolveDevice(
    address: string,
    id: number | undefined,
    powerBrainHost = '127.0.0.1',
): DeviceAddress {
    const name = address.trim().toLowerCase();
    if (isPowerBrainName(name)) {
        const pb = POWER_BRAIN_UNITS[name];
        return { bus: { kind: 'tcp', host: powerBrainHost, port: pb.port }, unit: pb.unit };
    }
    const unit = id ?? 1;
    if (!Number.isInteger(unit) || unit < 0 || unit > 255) {
        throw bad(address, `unit id ${String(id)} is not 0..255`);
    }
    return { bus: parseBusAddress(address), unit };
}

/** One key per physical connection: a serial path, or host:port (case-insensitive host). */
export function busKey(bus: BusAddress): string {
    if (bus.kind === 'tcp') {
        const host = bus.host.toLowerCase();
        return host.includes(':') ? `tcp:[${host}]:${bus.port}` : `tcp:${host}:${bus.port}`;
    }
    // COM ports are case-insensitive on Windows; device paths are not.
    const path = /^com\d+$/i.test(bus.path) ? bus.path.toUpperCase() : bus.path;
    return `rtu:${path}`;
}

export function formatBusAddress(bus: BusAddress): string {
    if (bus.kind === 'tcp') {
        const hostPort = bus.host.includes(':')
            ? `[${bus.host}]:${bus.port}`
            : `${bus.host}:${bus.port}`;
        if (bus.framing !== 'rtu') return hostPort;
        return bus.baudRate ? `${hostPort},rtu,${bus.baudRate}` : `${hostPort},rtu`;
    }
    const parity = bus.parity[0]!.toUpperCase();
    return `${bus.path},${bus.baudRate},${bus.dataBits},${parity},${bus.stopBits}`;
}
