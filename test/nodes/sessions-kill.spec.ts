// Session records survive SIGKILL. A real Node-RED in a child process manages three HTTP-input
// wallboxes whose energy counters the test drives (what the wires carried). One session ends before
// the kill; two run through it. Node-RED is killed by PID with SIGKILL, one car leaves while it is
// down, the other keeps charging; Node-RED starts again on the same user directory. The finished
// record is there exactly once, the car that stayed goes on in the same session with every Wh its
// counter counted, and the car that left is recorded as interrupted where the last checkpoint saw
// it (at most 60 s before the kill).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

const MANAGER = 'a1b2c3d4e5f60718';

const flows = [
    { id: 'tab1', type: 'tab', label: 'Site' },
    {
        id: MANAGER,
        type: 'evcm-manager',
        name: 'Site',
        max_total_current: '63000',
        cycle_ms: '300',
        devices: JSON.stringify([
            { dev_type: 'evse_ajax', dev_id: 'E1', name: 'Left', used_phases: 7 },
            { dev_type: 'evse_ajax', dev_id: 'E2', name: 'Middle', used_phases: 7 },
            { dev_type: 'evse_ajax', dev_id: 'E3', name: 'Right', used_phases: 7 },
            { dev_type: 'meter_ajax', dev_id: 'M1', name: 'Grid', role: 3 },
        ]),
    },
    { id: 'cnf1', type: 'evcm-cnf', z: 'tab1', manager: MANAGER, path: '/cnf', wires: [] },
];

type Id = 'E1' | 'E2' | 'E3';
interface Box {
    state: number;
    counterWh: number;
}
interface Rec {
    id: string;
    dev_id: string;
    start: number;
    end: number;
    energy_wh: number;
    meter_start_wh?: number;
    reason: string;
}
interface Answer {
    sessions: Rec[];
    running: (Omit<Rec, 'end' | 'reason'> & { updated: number })[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function cnf<T>(base: string, query: string): Promise<T> {
    const res = await fetch(new URL(`/cnf?${query}`, base));
    const text = await res.text();
    assert.equal(res.status, 200, `${query}: ${text}`);
    return JSON.parse(text) as T;
}

/** A push as HTTP-input devices send it; one lost while Node-RED is gone is simply not counted. */
function post(base: string, query: string, body: unknown): Promise<unknown> {
    return fetch(new URL(`/cnf?${query}`, base), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
    }).catch(() => undefined);
}

async function until<T>(
    what: string,
    probe: () => Promise<T | undefined>,
    ms = 15_000,
): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
        const v = await probe();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(100);
    }
}

describe('session records survive SIGKILL (real Node-RED)', function () {
    this.timeout(90_000);
    let userDir: string;
    let red: NodeRedProcess | undefined;
    let pushing = false;
    let pusher: Promise<void> = Promise.resolve();

    before(() => {
        userDir = mkdtempSync(join(tmpdir(), 'evcm-sessions-kill-'));
    });
    after(async () => {
        pushing = false;
        await pusher;
        if (red) await red.kill();
        rmSync(userDir, { recursive: true, force: true });
    });

    const boxes: Record<Id, Box> = {
        E1: { state: 2, counterWh: 1_000 },
        E2: { state: 2, counterWh: 50_000 },
        E3: { state: 2, counterWh: 7_000 },
    };

    /** Pushes every wallbox's state and counter every 200 ms; a charging car adds 10 Wh each time. */
    function startPushing(base: string): void {
        pushing = true;
        pusher = (async () => {
            while (pushing) {
                for (const id of ['E1', 'E2', 'E3'] as const) {
                    const b = boxes[id];
                    if (b.state === 3) b.counterWh += 10;
                    const amps = b.state === 3 ? 16_000 : 0;
                    await post(base, `cmd=set_ajax_evse&dev_id=${id}`, {
                        state: b.state,
                        total_energy: b.counterWh,
                        current: [amps, amps, amps],
                    });
                }
                await post(base, 'cmd=set_ajax_meter&dev_id=M1', { current: [0, 0, 0] });
                await sleep(200);
            }
        })();
    }
    async function stopPushing(): Promise<void> {
        pushing = false;
        await pusher;
    }

    it('keeps the finished record, continues the running session and ends the one whose car left', async () => {
        red = await startNodeRed(flows, { userDir });
        startPushing(red.url);
        const before = await until('three sessions', async () => {
            const a = await cnf<Answer>(red!.url, 'cmd=get_sessions');
            return a.running.length === 3 ? a : undefined;
        });
        const startOf = (id: Id) => before.running.find((s) => s.dev_id === id)!;
        const startCounter = {
            E1: startOf('E1').meter_start_wh!,
            E2: startOf('E2').meter_start_wh!,
            E3: startOf('E3').meter_start_wh!,
        };
        for (const id of ['E1', 'E2', 'E3'] as const) boxes[id].state = 3;
        await sleep(2_000);
        // E1's car leaves: its record is written.
        boxes.E1.state = 1;
        const e1 = await until('E1 recorded', async () => {
            const a = await cnf<Answer>(red!.url, 'cmd=get_sessions&dev_id=E1');
            return a.sessions[0];
        });
        assert.equal(e1.energy_wh, boxes.E1.counterWh - startCounter.E1);
        assert.equal(e1.reason, 'unplugged');
        await sleep(1_000);
        const e3CounterBeforeKill = boxes.E3.counterWh;

        await stopPushing();
        const killedAt = Date.now();
        await red.kill();
        red = undefined;

        // While Node-RED is down: E3's car leaves, E2's keeps charging 500 Wh.
        boxes.E3.state = 1;
        boxes.E2.counterWh += 500;

        red = await startNodeRed(undefined, { userDir });
        const restarted = red;
        await until(
            'the restored sessions logged',
            async () =>
                /2 charging session\(s\) that ran at the last stop/.test(restarted.log()) ||
                undefined,
        );
        startPushing(red.url);
        const after = await until('E3 interrupted', async () => {
            const a = await cnf<Answer>(red!.url, 'cmd=get_sessions');
            return a.sessions.some((r) => r.dev_id === 'E3') ? a : undefined;
        });
        // The finished record once; the car that left ends where the checkpoint saw it.
        assert.deepEqual(
            after.sessions.filter((r) => r.dev_id === 'E1').map((r) => r.id),
            [e1.id],
        );
        const e3 = after.sessions.find((r) => r.dev_id === 'E3')!;
        assert.equal(e3.id, startOf('E3').id);
        assert.equal(e3.reason, 'interrupted');
        assert.ok(
            e3.end >= killedAt - 60_000 && e3.end <= killedAt,
            `E3 ended ${killedAt - e3.end} ms before the kill`,
        );
        assert.ok(
            e3.energy_wh >= 0 && e3.energy_wh <= e3CounterBeforeKill + 10 - startCounter.E3,
            String(e3.energy_wh),
        );
        // The car that stayed: the same session, counting every Wh its counter shows.
        const e2 = after.running.find((s) => s.dev_id === 'E2')!;
        assert.equal(e2.id, startOf('E2').id);

        boxes.E2.state = 1;
        const e2Done = await until('E2 recorded', async () => {
            const a = await cnf<Answer>(red!.url, 'cmd=get_sessions&dev_id=E2');
            return a.sessions[0];
        });
        await stopPushing();
        assert.equal(e2Done.id, startOf('E2').id);
        assert.equal(e2Done.energy_wh, boxes.E2.counterWh - startCounter.E2);
        assert.equal(e2Done.reason, 'unplugged');

        // The log is one JSON line per record, each exactly once.
        const file = join(userDir, 'evcm-charging-manager', `${MANAGER}.sessions.jsonl`);
        const ids = readFileSync(file, 'utf8')
            .trim()
            .split('\n')
            .map((l) => (JSON.parse(l) as Rec).id);
        assert.deepEqual([...ids].sort(), [e1.id, e2Done.id, e3.id].sort());
        await red.stop();
        red = undefined;
    });
});
