// A small typed event hub: every subscription returns its own unsubscribe function, so nobody
// needs removeAllListeners() and a closing node removes exactly what it added.

type Listener<T> = (payload: T) => void;

export class Events<Map extends object> {
    private listeners = new Map<keyof Map, Set<Listener<never>>>();

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
            // One failing subscriber must not stop the others or the control cycle.
            try {
                (listener as Listener<Map[K]>)(payload);
            } catch {
                /* the subscriber reports its own errors */
            }
        }
    }

    count(event?: keyof Map): number {
        if (event) return this.listeners.get(event)?.size ?? 0;
        let n = 0;
        for (const set of this.listeners.values()) n += set.size;
        return n;
    }
}
