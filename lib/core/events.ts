// A small typed event hub: every subscription returns its own unsubscribe function, so nobody
// needs removeAllListeners() and a closing node removes exactly what it added.

type Listener<T> = (payload: T) => void;

export class Events<Map extends object> {
    private listeners = new Map<keyof Map, Set<Listener<never>>>();

    /** `onListenerError` hears of every subscriber that threw (the others still run). */
    constructor(private readonly onListenerError?: (event: keyof Map, error: Error) => void) {}

    on<K extends keyof Map>(event: K, listener: Listener<Map[K]>): () => void {
        let set = this.listeners.get(event);
        if (!set) this.listeners.set(event, (set = new Set()));
        set.add(listener as Listener<never>);
        return () => {
            set.delete(listener as Listener<never>);
        };
    }

    emit<K extends keyof Map>(event: K, payload: Map[K]): void {
        const set = this.listeners.get(event);
        if (!set) return;
        for (const listener of [...set]) {
            // One failing subscriber must not stop the others or the control cycle, and its
            // error is reported, not swallowed.
            try {
                (listener as Listener<Map[K]>)(payload);
            } catch (err) {
                this.reportListenerError(event, err);
            }
        }
    }

    private reportListenerError(event: keyof Map, err: unknown): void {
        const error = err instanceof Error ? err : new Error(String(err));
        try {
            this.onListenerError?.(event, error);
        } catch {
            // The error reporter itself failed: nothing is left to tell.
        }
    }

    count(event?: keyof Map): number {
        if (event) return this.listeners.get(event)?.size ?? 0;
        let n = 0;
        for (const set of this.listeners.values()) n += set.size;
        return n;
    }
}
