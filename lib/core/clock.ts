// Time for the engine and the simulators, injectable so that tests can step it by hand.

export type TimerHandle = unknown;

export interface Clock {
    now(): number;
    setTimeout(fn: () => void, ms: number): TimerHandle;
    clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
    now: () => Date.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** A clock that only moves when told to; due timers run in time order. */
export class ManualClock implements Clock {
    private timers = new Map<number, { at: number; fn: () => void }>();
    private nextId = 1;

    constructor(private time = 0) {}

    now(): number {
        return this.time;
    }

    setTimeout(fn: () => void, ms: number): TimerHandle {
        const id = this.nextId++;
        this.timers.set(id, { at: this.time + Math.max(0, ms), fn });
        return id;
    }

    clearTimeout(handle: TimerHandle): void {
        this.timers.delete(handle as number);
    }

    /** Moves time forward, running every timer that falls due on the way. */
    advance(ms: number): void {
        const end = this.time + ms;
        for (;;) {
            let due: [number, { at: number; fn: () => void }] | undefined;
            for (const entry of this.timers) {
                if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
            }
            if (!due) break;
            this.timers.delete(due[0]);
            this.time = Math.max(this.time, due[1].at);
            due[1].fn();
        }
        this.time = end;
    }

    get pending(): number {
        return this.timers.size;
    }
}
