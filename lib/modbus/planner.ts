// Read planning: the registers a device's state needs, read in as few requests as possible —
// one per contiguous block (optionally bridging small gaps the device is known to answer).
import { type DataType, decode, decodeAt, type WordOrder, wordCount } from './codec';
import { ModbusError } from './errors';

export type ReadFunction = 3 | 4;

export interface RegisterSpan {
    address: number;
    count: number;
    /** 3 = holding registers (default), 4 = input registers. */
    fc?: ReadFunction;
}

export interface ReadBlock {
    fc: ReadFunction;
    address: number;
    count: number;
}

export interface PlanOptions {
    /** Largest registers per request: 125 is the Modbus limit for FC 3/4. */
    maxCount?: number;
    /** Unrequested registers a block may bridge; only for devices that answer them. */
    maxGap?: number;
}

/** Merges spans into the fewest blocks (same function code, contiguous or within maxGap). */
export function planReads(spans: readonly RegisterSpan[], options: PlanOptions = {}): ReadBlock[] {
    const maxCount = options.maxCount ?? 125;
    const maxGap = options.maxGap ?? 0;
    const blocks: ReadBlock[] = [];
    for (const fc of [3, 4] as const) {
        const sorted = spans
            .filter((s) => (s.fc ?? 3) === fc)
            .map((s) => {
                if (!(Number.isInteger(s.address) && Number.isInteger(s.count) && s.count > 0)) {
                    throw new ModbusError(
                        'MODBUS_BAD_REQUEST',
                        '',
                        `bad register span ${s.address}+${s.count}`,
                    );
                }
                if (s.count > maxCount) {
                    throw new ModbusError(
                        'MODBUS_BAD_REQUEST',
                        '',
                        `span of ${s.count} registers exceeds ${maxCount}`,
                    );
                }
                return { address: s.address, end: s.address + s.count };
            })
            .sort((a, b) => a.address - b.address || a.end - b.end);
        let current: { address: number; end: number } | undefined;
        for (const s of sorted) {
            if (
                current &&
                s.address <= current.end + maxGap &&
                Math.max(current.end, s.end) - current.address <= maxCount
            ) {
                current.end = Math.max(current.end, s.end);
                continue;
            }
            if (current)
                blocks.push({ fc, address: current.address, count: current.end - current.address });
            current = { ...s };
        }
        if (current)
            blocks.push({ fc, address: current.address, count: current.end - current.address });
    }
    return blocks;
}

/** Words read in one request. A class: see Job in bus.ts on literals and the old generation. */
class ReadWords {
    constructor(
        readonly fc: ReadFunction,
        readonly address: number,
        readonly data: readonly number[],
    ) {}
}

/** Register words read by a plan, looked up by address. */
export class RegisterImage {
    // The blocks as read, latest last: a few per device, so a scan is cheaper than a map of
    // every word (which cost a key string and an entry per register on every poll). The list is
    // sized up front: a first push onto an empty array reserves room for 17.
    private readonly blocks: ReadWords[];
    private count = 0;

    /** `expectedBlocks`: how many blocks will be set (more are taken too). */
    constructor(expectedBlocks = 2) {
        this.blocks = new Array<ReadWords>(expectedBlocks);
    }

    set(fc: ReadFunction, address: number, data: readonly number[]): void {
        this.blocks[this.count++] = new ReadWords(fc, address, data);
    }

    /** The words at address..address+count−1; throws when the plan did not read them. */
    get(address: number, count: number, fc: ReadFunction = 3): number[] {
        const out: number[] = [];
        for (let a = address; a < address + count; a++) {
            const w = this.word(fc, a);
            if (w === undefined) {
                throw new ModbusError('MODBUS_BAD_REQUEST', '', `register ${a} was not read`);
            }
            out.push(w);
        }
        return out;
    }

    /**
     * The value of `type` at `address`, decoded where it was read rather than from a copy of
     * its words: a driver decodes every value of every poll.
     */
    decode(
        address: number,
        type: DataType,
        fc: ReadFunction = 3,
        order: WordOrder = 'big',
        stringWords = 1,
    ): number | string {
        const count = wordCount(type, stringWords);
        const block = this.blockHolding(fc, address, count);
        return block
            ? decodeAt(block.data, address - block.address, type, order, count)
            : decode(this.get(address, count, fc), type, order);
    }

    has(address: number, count = 1, fc: ReadFunction = 3): boolean {
        for (let a = address; a < address + count; a++)
            if (this.word(fc, a) === undefined) return false;
        return true;
    }

    /**
     * The block read last that overlaps address..address+count−1, if it holds that range whole
     * (it is then the latest for every word of it); otherwise undefined.
     */
    private blockHolding(fc: ReadFunction, address: number, count: number): ReadWords | undefined {
        for (let i = this.count - 1; i >= 0; i--) {
            const b = this.blocks[i]!;
            const end = b.address + b.data.length;
            if (b.fc !== fc || address + count <= b.address || address >= end) continue;
            return address >= b.address && address + count <= end ? b : undefined;
        }
        return undefined;
    }

    /** The word at `address`, from the block read last that holds it. */
    private word(fc: ReadFunction, address: number): number | undefined {
        for (let i = this.count - 1; i >= 0; i--) {
            const b = this.blocks[i]!;
            const offset = address - b.address;
            if (b.fc === fc && offset >= 0 && offset < b.data.length) return b.data[offset];
        }
        return undefined;
    }
}
