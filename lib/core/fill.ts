// Admission and water filling over the constraint tree (the site and its nested groups), per
// building phase. Works on plain arrays indexed by position so that 10,000 wallboxes stay cheap.

/** A limit node: the site (index 0) or a group. Parents come before children in the array. */
export interface FillNode {
    parent: number; // -1 for the site
    /** Headroom per building phase for the wallboxes below this node (mA; may be negative). */
    cap: [number, number, number];
}

export interface FillEvse {
    /** Index of the node the wallbox hangs from. */
    node: number;
    /** Building phases (bit0 L1 …). */
    phases: number;
    prio: number;
    min: number;
    /** What it may get at most this cycle; 0 = not a candidate. */
    demand: number;
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
    evses: readonly FillEvse[],
    order: readonly number[],
    chains: readonly (readonly number[])[],
): { admitted: Uint8Array; room: Float64Array } {
    const room = new Float64Array(nodes.length * 3);
    nodes.forEach((n, i) => {
        room[i * 3] = n.cap[0];
        room[i * 3 + 1] = n.cap[1];
        room[i * 3 + 2] = n.cap[2];
    });
    const admitted = new Uint8Array(evses.length);
    for (const i of order) {
        const e = evses[i]!;
        if (e.demand <= 0) continue;
        const chain = chains[e.node]!;
        let fits = true;
        for (let c = 0; c < chain.length && fits; c++) {
            const base = chain[c]! * 3;
            for (let p = 0; p < 3; p++) {
                if (e.phases & (1 << p) && room[base + p]! < e.min) {
                    fits = false;
                    break;
                }
            }
        }
        if (!fits) continue;
        admitted[i] = 1;
        for (const n of chain) {
            for (let p = 0; p < 3; p++) if (e.phases & (1 << p)) room[n * 3 + p]! -= e.min;
        }
    }
    return { admitted, room };
}

/**
 * Largest level λ with Σ (min(upper, max(min, λ)) − min) ≤ headroom over the members, i.e. how
 * high the water may rise above everyone's minimum. Infinity when all members reach their upper.
 */
export function waterLevel(
    members: readonly number[],
    mins: Float64Array,
    uppers: Float64Array,
    headroom: number,
): number {
    let total = 0;
    for (const i of members) total += uppers[i]! - mins[i]!;
    if (total <= headroom) return Infinity;
    // Sweep the breakpoints: slope +1 from a member's min, −1 from its upper.
    const points: number[] = [];
    for (const i of members) {
        if (uppers[i]! > mins[i]!) points.push(mins[i]! * 2 + 1, uppers[i]! * 2);
    }
    points.sort((a, b) => a - b);
    let slope = 0;
    let used = 0;
    let level = points.length ? points[0]! >> 1 : 0;
    for (const pt of points) {
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
    evses: readonly FillEvse[],
    admitted: Uint8Array,
    room: Float64Array,
    chains: readonly (readonly number[])[],
): Float64Array {
    const out = new Float64Array(evses.length);
    const mins = new Float64Array(evses.length);
    const uppers = new Float64Array(evses.length);
    const byPrio = new Map<number, number[]>();
    evses.forEach((e, i) => {
        if (!admitted[i]) return;
        out[i] = e.min;
        mins[i] = e.min;
        uppers[i] = Math.max(e.min, e.demand);
        const list = byPrio.get(e.prio);
        if (list) list.push(i);
        else byPrio.set(e.prio, [i]);
    });
    const prios = [...byPrio.keys()].sort((a, b) => b - a);
    // Nodes are ordered parents first, so walking backwards visits children before parents.
    const children: number[][] = nodes.map(() => []);
    nodes.forEach((n, i) => {
        if (n.parent >= 0) children[n.parent]!.push(i);
    });

    for (const prio of prios) {
        const cls = byPrio.get(prio)!;
        const direct: number[][] = nodes.map(() => []);
        for (const i of cls) direct[evses[i]!.node]!.push(i);
        const subtree: number[][] = nodes.map(() => []);
        for (let n = nodes.length - 1; n >= 0; n--) {
            const members = direct[n]!;
            for (const c of children[n]!) for (const i of subtree[c]!) members.push(i);
            subtree[n] = members;
            lowerToNodeLevel(n, members, evses, mins, uppers, room);
        }
        for (const i of cls) {
            const value = Math.floor(uppers[i]!);
            out[i] = value;
            const extra = value - mins[i]!;
            if (extra <= 0) continue;
            for (const n of chains[evses[i]!.node]!) {
                for (let p = 0; p < 3; p++) {
                    if (evses[i]!.phases & (1 << p)) room[n * 3 + p]! -= extra;
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
    evses: readonly FillEvse[],
    mins: Float64Array,
    uppers: Float64Array,
    room: Float64Array,
): void {
    if (!members.length) return;
    const onPhase: number[][] = [[], [], []];
    for (const i of members) {
        for (let p = 0; p < 3; p++) if (evses[i]!.phases & (1 << p)) onPhase[p]!.push(i);
    }
    const done = [false, false, false];
    for (let round = 0; round < 3; round++) {
        let best = -1;
        let bestLevel = Infinity;
        for (let p = 0; p < 3; p++) {
            if (done[p] || !onPhase[p]!.length) continue;
            const level = waterLevel(onPhase[p]!, mins, uppers, room[node * 3 + p]!);
            if (level < bestLevel) {
                bestLevel = level;
                best = p;
            }
        }
        if (best < 0 || bestLevel === Infinity) return;
        done[best] = true;
        for (const i of onPhase[best]!) {
            const capped = Math.max(mins[i]!, Math.min(uppers[i]!, bestLevel));
            uppers[i] = capped;
        }
    }
}
