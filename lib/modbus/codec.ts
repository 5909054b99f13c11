// Register codec: values ⇄ 16-bit register words. Multi-register values are big-endian word
// order (high word first) unless told otherwise; bytes within a word are always big-endian.
import { ModbusError } from './errors';

export type DataType =
    'uint16' | 'int16' | 'uint32' | 'int32' | 'uint64' | 'int64' | 'float32' | 'float64' | 'string';

export type WordOrder = 'big' | 'little';

/** The vendor's `cmd=modbus` suffixes: none = 16-bit, d = 32-bit, q = 64-bit, s = string. */
export type Suffix = '' | 'd' | 'q' | 's';

const WORDS: Record<Exclude<DataType, 'string'>, number> = {
    uint16: 1,
    int16: 1,
    uint32: 2,
    int32: 2,
    uint64: 4,
    int64: 4,
    float32: 2,
    float64: 4,
};

/** Registers a value of `type` takes (strings: their declared length). */
export function wordCount(type: DataType, stringWords = 1): number {
    return type === 'string' ? stringWords : WORDS[type];
}

/** Suffix → width in registers; a string's width comes from its register definition. */
export const SUFFIX_WORDS: Record<Exclude<Suffix, 's'>, number> = { '': 1, d: 2, q: 4 };

/**
 * The data type of a suffixed register. 32- and 64-bit integers are signed (the vendor's
 * `8062d` reads −1); 16-bit ones are unsigned unless the register is declared signed.
 */
export function suffixType(suffix: Suffix, signed16 = false): DataType {
    switch (suffix) {
        case '':
            return signed16 ? 'int16' : 'uint16';
        case 'd':
            return 'int32';
        case 'q':
            return 'int64';
        case 's':
            return 'string';
    }
}

export interface RegisterRef {
    address: number;
    suffix: Suffix;
}

/** Parses `8062d`, `8016s`, `8002` as the vendor writes them. */
export function parseRegisterRef(text: string): RegisterRef {
    const m = /^\s*(\d{1,5})([dqs]?)\s*$/i.exec(text);
    const address = m ? Number(m[1]) : NaN;
    if (!m || address > 65535) {
        throw new ModbusError('MODBUS_BAD_REQUEST', '', `bad modbus register "${text}"`);
    }
    return { address, suffix: m[2]!.toLowerCase() as Suffix };
}

export function formatRegisterRef(ref: RegisterRef): string {
    return `${ref.address}${ref.suffix}`;
}

function ordered(words: readonly number[], order: WordOrder): number[] {
    return order === 'big' ? [...words] : [...words].reverse();
}

/**
 * Scratch space for decoding one value (at most 4 words). Decoding is synchronous, so one
 * shared view serves every call without allocating per value.
 */
const scratch = new DataView(new ArrayBuffer(8));

/**
 * Decodes the words of one value. 64-bit integers become numbers (exact up to 2^53, which
 * covers every energy counter); strings lose their NUL padding and trailing spaces.
 */
export function decode(
    words: readonly number[],
    type: DataType,
    order: WordOrder = 'big',
): number | string {
    return decodeAt(words, 0, type, order, words.length);
}

/**
 * Decodes the value at words[offset…] without copying its words out (a register image decodes
 * every value of every poll in place). A string takes `stringWords` words.
 */
export function decodeAt(
    words: readonly number[],
    offset: number,
    type: DataType,
    order: WordOrder = 'big',
    stringWords = 1,
): number | string {
    const need = wordCount(type, stringWords);
    if (words.length - offset < need) {
        throw new ModbusError('MODBUS_BAD_REPLY', '', `${type} needs ${need} registers`);
    }
    if (type === 'string') return decodeString(words, offset, need);
    for (let i = 0; i < need; i++) {
        const w = words[offset + (order === 'big' ? i : need - 1 - i)]!;
        scratch.setUint16(i * 2, w & 0xffff);
    }
    switch (type) {
        case 'uint16':
            return scratch.getUint16(0);
        case 'int16':
            return scratch.getInt16(0);
        case 'uint32':
            return scratch.getUint32(0);
        case 'int32':
            return scratch.getInt32(0);
        // high × 2^32 + low is one correctly rounded addition: the same number as through BigInt
        case 'uint64':
            return scratch.getUint32(0) * 0x1_0000_0000 + scratch.getUint32(4);
        case 'int64':
            return scratch.getInt32(0) * 0x1_0000_0000 + scratch.getUint32(4);
        case 'float32':
            return scratch.getFloat32(0);
        case 'float64':
            return scratch.getFloat64(0);
    }
}

/** Latin-1 text, two bytes per word (high byte first), up to the first NUL; trailing spaces cut. */
function decodeString(words: readonly number[], offset: number, count: number): string {
    let text = '';
    for (let i = offset; i < offset + count; i++) {
        const word = words[i]!;
        const high = (word >>> 8) & 0xff;
        if (high === 0) break;
        text += String.fromCharCode(high);
        const low = word & 0xff;
        if (low === 0) break;
        text += String.fromCharCode(low);
    }
    return text === '' ? text : text.replace(/\s+$/, '');
}

function badValue(value: unknown, type: DataType): ModbusError {
    return new ModbusError('MODBUS_BAD_REQUEST', '', `value ${String(value)} does not fit ${type}`);
}

/** Encodes one value into `wordCount(type, stringWords)` words. */
export function encode(
    value: number | string,
    type: DataType,
    order: WordOrder = 'big',
    stringWords = 1,
): number[] {
    if (type === 'string') {
        const bytes = Buffer.alloc(stringWords * 2);
        const text = Buffer.from(String(value), 'latin1');
        if (text.length > bytes.length) throw badValue(value, type);
        text.copy(bytes);
        return Array.from({ length: stringWords }, (_, i) => bytes.readUInt16BE(i * 2));
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) throw badValue(value, type);
    const buf = Buffer.alloc(WORDS[type] * 2);
    const isInt = Number.isInteger(value);
    const range = (lo: number, hi: number): void => {
        if (!isInt || value < lo || value > hi) throw badValue(value, type);
    };
    switch (type) {
        case 'uint16':
            range(0, 0xffff);
            buf.writeUInt16BE(value, 0);
            break;
        case 'int16':
            range(-0x8000, 0x7fff);
            buf.writeInt16BE(value, 0);
            break;
        case 'uint32':
            range(0, 0xffffffff);
            buf.writeUInt32BE(value, 0);
            break;
        case 'int32':
            range(-0x80000000, 0x7fffffff);
            buf.writeInt32BE(value, 0);
            break;
        case 'uint64':
            range(0, Number.MAX_SAFE_INTEGER);
            buf.writeBigUInt64BE(BigInt(value), 0);
            break;
        case 'int64':
            range(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
            buf.writeBigInt64BE(BigInt(value), 0);
            break;
        case 'float32':
            buf.writeFloatBE(value, 0);
            break;
        case 'float64':
            buf.writeDoubleBE(value, 0);
            break;
    }
    const words = Array.from({ length: WORDS[type] }, (_, i) => buf.readUInt16BE(i * 2));
    return ordered(words, order);
}

/**
 * 16-bit writes accept the signed and the unsigned reading of a word (−1 and 65535 are the same
 * register value), as the vendor's HTTP layer does for raw register writes.
 */
export function encodeSuffixed(value: number | string, suffix: Suffix, stringWords = 1): number[] {
    if (suffix === '' && typeof value === 'number' && value < 0) return encode(value, 'int16');
    return encode(value, suffixType(suffix), 'big', stringWords);
}
