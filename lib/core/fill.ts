// Admission and water filling over the constraint tree (the site and its nested groups), per
// building phase. Works on plain arrays indexed by position so that 10,000 wallboxes stay cheap,
// with index loops: this runs once or twice a cycle, and until V8 has optimised it a for-of makes
// garbage on every step.

/** A limit node: the site (index 0) or a group. Parents come before children in the array. */
export interface FillNode {
    parent: number; // -1 for the site
    /** Headroom per building phase for the wallboxes below this node (mA; may be negative). */
    cap: [number, number, number];
}

/** The wallboxes of one decision as parallel arrays (no object per wallbox on the hot path). */
export interface FillEvses {
    readonly size: number;
    /** Index of the node each wallbox hangs from. */
    readonly node: Int32Array;
    /** Building phases (bit0 L1 …). */
    readonly phases: Uint8Array;
    readonly prio: Float64Array;
    readonly min: Float64Array;
    /** What each may get at most this cycle; 0 = not a candidate. */
    readonly demand: Float64Array;
}

export function fillEvses(size: number): FillEvses {
    return {
        size,
        node: new Int32Array(size),
        phases: new Uint8Array(size),
        prio: new Float64Array(size),
        min: new Float64Array(size),
        demand: new Float64Array(size),
    };
}

/** The same wallboxes with other demands. */
export function withDemand(evses: FillEvses, demand: Float64Array): FillEvses {
    return { ...evses, demand };
}

/** Node indices from a node up to the site, inclusive. */
export function ancestry(nodes: readonly { parent: number }[], node: number): number[] {
    const chain: number[] = [];
    for (let n = node; n >= 0; n = nodes[n]!.parent) chain.push(n);
    return chain;
}

/**
 * Decides which candidates get at least their minimum, in the given order: a candidate is admitted
 * when its minimum still fits on every phase of every node above it. Returns the admitted flags and
 * what remains of each node's headroom per phase.
 */
export function admit(
    nodes: readonly FillNode[],
    evses: FillEvses,
    order: readonly number[],
    chains: readonly (readonly number[])[],
): { admitted: Uint8Array; room: Float64Array } {
    const room = new Float64Array(nodes.length * 3);
    nodes.forEach((n, i) => {
        room[i * 3] = n.cap[0];
        room[i * 3 + 1] = n.cap[1];
        room[i * 3 + 2] = n.cap[2];
    });
    const admitted = new Uint8Array(evses.size);
    for (let k = 0; k < order.length; k++) {
        const i = order[k]!;
        if (evses.demand[i]! <= 0) continue;
        const min = evses.min[i]!;
        const phases = evses.phases[i]!;
        const chain = chains[evses.node[i]!]!;
        let fits = true;
        for (let c = 0; c < chain.length && fits; c++) {
            const base = chain[c]! * 3;
            for (let p = 0; p < 3; p++) {
                if (phases & (1 << p) && room[base + p]! < min) {
                    fits = false;
                    break;
                }
            }
        }
        if (!fits) continue;
        admitted[i] = 1;
        for (let c = 0; c < chain.length; c++) {
            const base = chain[c]! * 3;
            for (let p = 0; p < 3; p++) if (phases & (1 << p)) room[base + p]! -= min;
        }
    }
    return { admitted, room };
}

/**
 * Largest level λ with Σ (min(upper, max(min, λ)) − min) ≤ headroom over the members on a phase
 * (`phase` is its bit), i.e. how high the water may rise above everyone's minimum. Infinity when
 * all of them reach their upper.
 */
export function waterLevel(
    members: readonly number[],
    phase: number,
    phases: Uint8Array,
    mins: Float64Array,
    uppers: Float64Array,
    headroom: number,
): number {
    let total = 0;
    let rising = 0;
    for (let k = 0; k < members.length; k++) {
        const i = members[k]!;
        if (!(phases[i]! & phase)) continue;
        total += uppers[i]! - mins[i]!;
        if (uppers[i]! > mins[i]!) rising++;
    }
    if (total <= headroom) return Infinity;
    // Sweep the breakpoints: slope +1 from a member's min, −1 from its upper. A typed array sorts
    // numerically without a comparator.
    const points = new Float64Array(rising * 2);
    let count = 0;
    for (let k = 0; k < members.length; k++) {
        const i = members[k]!;
        if (!(phases[i]! & phase) || !(uppers[i]! > mins[i]!)) continue;
        points[count++] = mins[i]! * 2 + 1;
        points[count++] = uppers[i]! * 2;
    }
    points.sort();
    let slope = 0;
    let used = 0;
    let level = points.length ? points[0]! >> 1 : 0;
    for (let k = 0; k < points.length; k++) {
        const pt = points[k]!;
        const at = pt >> 1;
        const next = used + slope * (at - level);
        if (next > headroom) break;
        used = next;
        level = at;
        slope += pt & 1 ? 1 : -1;
    }
    if (slope <= 0) return level;
    return Math.floor(level + (headroom - used) / slope);
}

/**
 * Gives admitted wallboxes their minimum, then raises them: higher priority classes first, equal
 * share (water filling) within a class, every node's headroom respected on every phase.
 */
export function fill(
    nodes: readonly FillNode[],
    evses: FillEvses,
    admitted: Uint8Array,
    room: Float64Array,
    chains: readonly (readonly number[])[],
): Float64Array {
    const out = new Float64Array(evses.size);
    const mins = evses.min; // only admitted wallboxes are looked at below
    const uppers = new Float64Array(evses.size);
    const byPrio = new Map<number, number[]>();
    for (let i = 0; i < evses.size; i++) {
        if (!admitted[i]) continue;
        out[i] = evses.min[i]!;
        uppers[i] = Math.max(evses.min[i]!, evses.demand[i]!);
        const list = byPrio.get(evses.prio[i]!);
        if (list) list.push(i);
        else byPrio.set(evses.prio[i]!, [i]);
    }
    const prios = [...byPrio.keys()].sort((a, b) => b - a);
    // Nodes are ordered parents first, so walking backwards visits children before parents.
    const children: number[][] = nodes.map(() => []);
    nodes.forEach((n, i) => {
        if (n.parent >= 0) children[n.parent]!.push(i);
    });

    for (const prio of prios) {
        const cls = byPrio.get(prio)!;
        const direct: number[][] = nodes.map(() => []);
        for (let k = 0; k < cls.length; k++) direct[evses.node[cls[k]!]!]!.push(cls[k]!);
        const subtree: number[][] = nodes.map(() => []);
        for (let n = nodes.length - 1; n >= 0; n--) {
            const members = direct[n]!;
            for (const c of children[n]!) {
                const below = subtree[c]!;
                for (let k = 0; k < below.length; k++) members.push(below[k]!);
            }
            subtree[n] = members;
            lowerToNodeLevel(n, members, evses, mins, uppers, room);
        }
        for (let k = 0; k < cls.length; k++) {
            const i = cls[k]!;
            const value = Math.floor(uppers[i]!);
            out[i] = value;
            const extra = value - mins[i]!;
            if (extra <= 0) continue;
            const chain = chains[evses.node[i]!]!;
            for (let c = 0; c < chain.length; c++) {
                const base = chain[c]! * 3;
                for (let p = 0; p < 3; p++) {
                    if (evses.phases[i]! & (1 << p)) room[base + p]! -= extra;
                }
            }
        }
    }
    return out;
}

/**
 * Lowers members' uppers so that the node's headroom holds on each phase. The phase that binds
 * lowest goes first: a multi-phase wallbox capped there takes less on its other phases, which
 * leaves more for the rest on those.
 */
function lowerToNodeLevel(
    node: number,
    members: readonly number[],
    evses: FillEvses,
    mins: Float64Array,
    uppers: Float64Array,
    room: Float64Array,
): void {
    // Phases that some member uses and that have not been levelled yet (bit0 L1 …).
    let open = 0;
    for (let k = 0; k < members.length; k++) open |= evses.phases[members[k]!]!;
    for (let round = 0; round < 3; round++) {
        let best = -1;
        let bestLevel = Infinity;
        for (let p = 0; p < 3; p++) {
            if (!(open & (1 << p))) continue;
            const level = waterLevel(
                members,
                1 << p,
                evses.phases,
                mins,
                uppers,
                room[node * 3 + p]!,
            );
            if (level < bestLevel) {
                bestLevel = level;
                best = p;
            }
        }
        if (best < 0 || bestLevel === Infinity) return;
        open &= ~(1 << best);
        for (let k = 0; k < members.length; k++) {
            const i = members[k]!;
            if (!(evses.phases[i]! & (1 << best))) continue;
            uppers[i] = Math.max(mins[i]!, Math.min(uppers[i]!, bestLevel));
        }
    }
}
