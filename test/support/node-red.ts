// Helpers for flow tests with node-red-node-test-helper.
import helper from 'node-red-node-test-helper';

export type Flow = Parameters<typeof helper.load>[1];
export type HelperNode = ReturnType<typeof helper.getNode> & NodeJS.EventEmitter;

/** Every node module of the package, for helper.load. */
export function allNodes(): Parameters<typeof helper.load>[0] {
    return [
        require('../../nodes/evcm-manager'),
        require('../../nodes/evcm-status'),
        require('../../nodes/evcm-meter-in'),
        require('../../nodes/evcm-evse-in'),
        require('../../nodes/evcm-modbus-read'),
        require('../../nodes/evcm-modbus-write'),
        require('../../nodes/evcm-powerbrain-sim'),
        require('../../nodes/evcm-override'),
        require('../../nodes/evcm-rfid'),
        require('../../nodes/evcm-cnf'),
        require('../../nodes/evcm-ocpp'),
        require('../../nodes/evcm-ocpp-in'),
        require('../../nodes/evcm-price'),
        require('../../nodes/evcm-sessions'),
        require('../../nodes/evcm-mqtt'),
        require('../../nodes/evcm-dashboard'),
    ] as Parameters<typeof helper.load>[0];
}

/** The next message a helper node receives. */
export function nextMessage<T = Record<string, unknown>>(
    node: HelperNode,
    timeoutMs = 5000,
    accept: (msg: T) => boolean = () => true,
): Promise<T> {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            node.removeListener('input', on);
            reject(new Error(`no message within ${timeoutMs} ms`));
        }, timeoutMs);
        const on = (msg: T) => {
            if (!accept(msg)) return;
            clearTimeout(timer);
            node.removeListener('input', on);
            resolve(msg);
        };
        node.on('input', on);
    });
}

/** The next call of a node's spy (`call:error`, `call:status`) that matches. */
export function nextCall(
    node: HelperNode,
    spy: 'error' | 'status' | 'warn',
    accept: (args: unknown[]) => boolean = () => true,
    timeoutMs = 5000,
): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            node.removeListener(`call:${spy}`, on);
            reject(new Error(`no matching ${spy} within ${timeoutMs} ms`));
        }, timeoutMs);
        const on = (call: { args: unknown[] }) => {
            if (!accept(call.args)) return;
            clearTimeout(timer);
            node.removeListener(`call:${spy}`, on);
            resolve(call.args);
        };
        node.on(`call:${spy}`, on);
    });
}

/** Statuses a node has shown so far. */
export function statuses(node: HelperNode): { fill?: string; shape?: string; text?: string }[] {
    // The helper's spies sit on the shared prototype: keep this node's calls only.
    const spy = node.status as unknown as {
        getCalls(): { thisValue: unknown; args: [{ fill?: string; text?: string }] }[];
    };
    return spy
        .getCalls()
        .filter((c) => c.thisValue === node)
        .map((c) => c.args[0]);
}

export function manager(id: string, devices: unknown[], extra: Record<string, unknown> = {}) {
    return {
        id,
        type: 'evcm-manager',
        max_total_current: '32000',
        reserve_current: '0',
        cycle_ms: '200',
        min_pause_time: '0',
        devices: JSON.stringify(devices),
        ...extra,
    };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Errors a node reported so far (node.error or done(err)), as text. */
export function errors(node: HelperNode): string[] {
    return logged(node, 'error');
}

/** What a node passed to one of its log functions so far, as text (catalog keys in the helper). */
export function logged(node: HelperNode, level: 'error' | 'warn' | 'log'): string[] {
    const spy = (node as unknown as Record<string, unknown>)[level] as {
        getCalls(): { thisValue: unknown; args: unknown[] }[];
    };
    return spy
        .getCalls()
        .filter((c) => c.thisValue === node)
        .map((c) => String((c.args[0] as Error)?.message ?? c.args[0]));
}
