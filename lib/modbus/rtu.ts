// Modbus RTU framing and line timing (Modbus over Serial Line, V1.02, sections 2.5.1 and 6.2.2):
// a frame is unit id, PDU and a CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF, low byte
// first); frames are separated by at least 3.5 character times of silence, fixed at 1.75 ms
// above 19,200 Bd. A character is 11 bits on the wire in every legal setting (start, 8 data,
// parity or a second stop bit, stop).

/** Bits per character on the wire: start + data + parity + stop bits. */
export function bitsPerChar(dataBits = 8, parity = true, stopBits = 1): number {
    return 1 + dataBits + (parity ? 1 : 0) + stopBits;
}

/** Time one character takes on the wire (ms). */
export function charTimeMs(baudRate: number, bits = 11): number {
    return (bits * 1000) / baudRate;
}

/** The silence required between two frames (ms): 3.5 characters, 1.75 ms above 19,200 Bd. */
export function interFrameGapMs(baudRate: number, bits = 11): number {
    return baudRate > 19_200 ? 1.75 : 3.5 * charTimeMs(baudRate, bits);
}

/** Time a frame of `bytes` bytes takes on the wire (ms). */
export function frameTimeMs(bytes: number, baudRate: number, bits = 11): number {
    return bytes * charTimeMs(baudRate, bits);
}

const CRC_TABLE = (() => {
    const table = new Uint16Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
        table[n] = c;
    }
    return table;
})();

/** CRC-16/MODBUS of bytes [start, end) of `buffer`. */
export function crc16(buffer: Uint8Array, start = 0, end = buffer.length): number {
    let crc = 0xffff;
    for (let i = start; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ buffer[i]!) & 0xff]!;
    return crc;
}

/** Writes the CRC of the first `length` bytes after them (low byte first); returns length + 2. */
export function appendCrc(frame: Buffer, length: number): number {
    frame.writeUInt16LE(crc16(frame, 0, length), length);
    return length + 2;
}

/** Bytes of a request frame: 8 for reads, FC 5 and FC 6, 9 + 2n for FC 16 of n registers. */
export function requestBytes(fc: number, count: number): number {
    return fc === 16 ? 9 + 2 * count : 8;
}

/** Bytes of the normal reply: 5 + 2n for reads of n registers, 8 for FC 5, 6 and 16. */
export function replyBytes(fc: number, count: number): number {
    return fc === 3 || fc === 4 ? 5 + 2 * count : 8;
}

/** An exception reply: unit, fc | 0x80, code, CRC. */
export const EXCEPTION_BYTES = 5;

/**
 * Length of the reply frame that starts at `start` of `buffer` (`available` bytes there), as far
 * as its first bytes tell: 0 when more bytes are needed to know it.
 */
export function replyLength(buffer: Uint8Array, start: number, available: number): number {
    if (available < 2) return 0;
    const fc = buffer[start + 1]!;
    if (fc & 0x80) return EXCEPTION_BYTES;
    if (fc === 3 || fc === 4) return available < 3 ? 0 : 5 + buffer[start + 2]!;
    return 8;
}
