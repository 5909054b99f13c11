// Read planning: the registers a device's state needs, read in as few requests as possible —
// one per contiguous block (optionally bridging small gaps the device is known to answer).
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

/** Register words read by a plan, looked up by address. */
export class RegisterImage {
    private readonly words = new Map<string, number>();

    set(fc: ReadFunction, address: number, data: readonly number[]): void {
        data.forEach((w, i) => this.words.set(`${fc}:${address + i}`, w));
    }

    /** The words at address..address+count−1; throws when the plan did not read them. */
    get(address: number, count: number, fc: ReadFunction = 3): number[] {
        const out: number[] = [];
        for (let a = address; a < address + count; a++) {
            const w = this.words.get(`${fc}:${a}`);
            if (w === undefined) {
                throw new ModbusError('MODBUS_BAD_REQUEST', '', `register ${a} was not read`);
            }
            out.push(w);
        }
        return out;
    }

    has(address: number, count = 1, fc: ReadFunction = 3): boolean {
        for (let a = address; a < address + count; a++)
            if (!this.words.has(`${fc}:${a}`)) return false;
        return true;
    }
}
