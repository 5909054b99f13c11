// Reliability harness, Node-RED stage: the real Node-RED runtime (a child process on loopback)
// runs a flow of evcm-manager, evcm-cnf and evcm-status that controls simulated Power Brain
// wallboxes over real Modbus TCP. This process owns the physical world: the wallboxes and their
// cars, the household load and the grid meter, which it pushes to the manager with set_ajax_meter.
// The fuse margin is computed here, from what the wire really carries (household + every car as
// it follows its wallbox), never from what the manager believes.
//
// Accelerated time: the world runs on a clock `timeScale` times faster than the wall clock, and
// every time parameter of the manager is divided by the same factor (cycle_ms 200 = one simulated
// second at 5×, min_pause_time, increase_hold_time, overdraw_penalty_time, underdraw_time,
// stale_after). Only network and Modbus latencies are not scaled: they count `timeScale` times
// more in simulated time, which makes the run harsher than reality, not kinder.
//
// Meanwhile: random household steps and cars plugging in, wallboxes whose network fails (a TCP
// proxy in front of each drops or swallows the traffic) and the grid meter going quiet, redeploys
// through the admin API (full, flows, nodes; alternating), and concurrent /cnf clients (reads,
// set_params within safe bounds, override_device, enter_rfid, and bad requests that must be
// rejected with a clear error and change nothing). A probe inside the runtime (settings.js)
// reports memory, active resources, Express routes and listeners, for leak checks across
// redeploys, and the manager's cycle timing.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rotatePhases } from '../lib/core/phases';
import type { Phases3, PhaseRotation } from '../lib/core/types';
import { seededRandom } from '../lib/devices/sim';
import { freePort, PowerBrainSim } from '../lib/sim/powerbrain-sim';

/** Cards the soak site's user holds (an unknown card is refused and counts as a failed login). */
const SOAK_CARDS = ['1000', '2345', '4711', '9999'];
const repoRoot = join(__dirname, '..', '..');

export interface NodeRedSoakOptions {
    /** Simulated minutes to run. */
    simMinutes: number;
    /** Simulated time per wall-clock time (cycle_ms 200 at 5× = a 1 s cycle). */
    timeScale: number;
    evses: number;
    seed: number;
    /** A redeploy every this many simulated seconds. */
    redeployEverySimS: number;
    /** Concurrent /cnf clients (besides the grid meter feed). */
    cnfClients: number;
    /** A device failure on average this often (simulated seconds). */
    failureEverySimS: number;
}

interface Latency {
    count: number;
    p50Ms: number;
    p95Ms: number;
    maxMs: number;
}

export interface ProbeSample {
    heapMB: number;
    rssMB: number;
    /** process.getActiveResourcesInfo(), counted by kind. */
    resources: Record<string, number>;
    /** Routes in RED.httpNode's Express router, and those serving /cnf (one, every method). */
    routes: number;
    cnfRoutes: number;
    processListeners: number;
    /** Subscribers on the running manager's event hub (the probe's own excluded). */
    managerListeners: number;
    /** Modbus buses open in the shared pool. */
    buses: number;
    nodes: number;
    cycles: { count: number; overruns: number; worstMs: number; late: number; sites: number };
}

export interface NodeRedSoakReport {
    simMinutes: number;
    timeScale: number;
    realSeconds: number;
    evses: number;
    fuseA: number;
    /** Samples of the physical grid (every 50 ms real). */
    samples: number;
    /** Lowest margin to the fuse per phase over every sample, load steps included (mA). */
    worstMarginRaw: number[];
    /** The same outside the reaction window after a load step, a car plugging in or a device
     *  coming back (mA), and of those the samples in which the manager had fresh grid data
     *  (mA; must stay ≥ 0, as the Site stage's worstMarginWithData). */
    worstMarginSettled: number[];
    worstMarginWithData: number[];
    /** Samples over the fuse outside the reaction window while a wallbox the manager reaches
     *  still charged on that phase (must be 0; the Site stage's fuseViolations), and the
     *  episodes they form. */
    fuseViolationSamples: number;
    fuseViolationEpisodes: number;
    /** Samples over the fuse outside the reaction window while the grid meter was quiet (the
     *  wallboxes at their fail-safe current), or with only unreachable wallboxes charging on
     *  that phase (the Site stage's overloadsWhileBlind and overloadsBeyondControl). */
    overloadSamplesWhileBlind: number;
    overloadSamplesBeyondControl: number;
    /** Load steps (household, plug-in, restart, device back) that overloaded a phase before the
     *  manager reacted, the samples over the fuse then, the worst overload (mA) and the longest
     *  (simulated ms from the cause). Expected: the reserve is smaller than the steps. */
    transientOverloads: number;
    transientOverloadSamples: number;
    worstTransientOverload: number;
    longestTransientSimMs: number;
    reactionWindowSimMs: number;
    /** Household steps (base drift, appliance on or off), appliances switched on, and of those
     *  the ones switched on while the cars used the budget. */
    loadSteps: number;
    appliancesOn: number;
    appliancesOnAtBudget: number;
    carsPlugged: number;
    /** Limits the operator set for 10–30 simulated s each, by kind. */
    operatorLimits: Record<string, number>;
    failuresInjected: { wallbox: number; meter: number };
    redeploys: Record<string, number>;
    /** How long the admin API took to accept a deploy, and how long /cnf was then still
     *  missing (Node-RED answers before the new nodes have started). */
    redeployMs: Latency;
    cnfGapAfterDeployMs: Latency;
    /** Manager cycles observed in the runtime, overruns (cycle longer than its period) and
     *  late cycles (more than two periods after the previous one). */
    cycles: ProbeSample['cycles'];
    cnf: {
        requests: number;
        byCommand: Record<string, Latency>;
        /** Every response that was not 200, by request kind, status and error text. */
        rejected: Record<string, number>;
        /** Good requests that failed outside a redeploy window (must be 0). */
        unexpected: Record<string, number>;
        /** Good requests refused while a redeploy swapped the flow (route briefly gone). */
        duringRedeploy: number;
        /** Bad requests accepted, or rejected without a JSON error text (must be 0). */
        badAccepted: number;
        /** A bad request's marker found in the state afterwards (must be 0). */
        partialChanges: number;
        /** Malformed JSON sent as application/json that Node-RED's editor API rejected before
         *  it reached /cnf (HTML error page), and whether that page showed a stack trace. */
        rejectedBeforeCnf: { count: number; showsStackTrace: boolean };
    };
    deviceErrors: Record<string, number>;
    nodeRedLog: Record<string, number>;
    chargedKWh: number;
    /** How hard the stage pushed the fuse (see StressReport). */
    stress: StressReport;
    leak: {
        baseline: ProbeSample;
        final: ProbeSample;
        heapGrowthMB: number;
        rssGrowthMB: number;
        /** Heap after GC at each redeploy (MB), to tell growth from noise. */
        heapAtRedeploys: number[];
        heapSlopeMBPerRedeploy: number;
        routesGrowth: number;
        listenersGrowth: number;
        resourcesGrowth: Record<string, number>;
    };
    ok: boolean;
    problems: string[];
}

const FUSE = 32_000;
const RESERVE = 3000;
const MANAGER_ID = 'soak-mgr';
const ADMIN_PASSWORD = 'soak-admin-pw';
const SAMPLE_MS = 50;
const FEED_EVERY = 2; // samples: the grid meter is pushed every 100 ms real
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const auth = (pw: string) => 'Basic ' + Buffer.from(`admin:${pw}`).toString('base64');
const kindOf = (text: string) =>
    text
        .replace(/\d+(\.\d+)?/g, 'N')
        .replace(/\s+/g, ' ')
        .slice(0, 120);
const bump = (m: Record<string, number>, k: string, n = 1) => (m[k] = (m[k] ?? 0) + n);

// ---- the network between the manager and a wallbox ----

/** A TCP proxy on loopback in front of a wallbox; its link can fail in two ways. */
class Link {
    private server: Server | null = null;
    private readonly pairs = new Set<[Socket, Socket | null]>();
    /** up: forward; refuse: reset every connection; silent: accept and swallow everything. */
    mode: 'up' | 'refuse' | 'silent' = 'up';
    port = 0;

    constructor(private readonly target: number) {}

    async start(): Promise<void> {
        this.server = createServer((client) => this.accept(client));
        await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
        const a = this.server.address();
        this.port = typeof a === 'object' && a ? a.port : 0;
    }

    private accept(client: Socket): void {
        client.on('error', () => undefined);
        if (this.mode === 'refuse') return void client.destroy();
        const upstream = this.mode === 'up' ? connect(this.target, '127.0.0.1') : null;
        const pair: [Socket, Socket | null] = [client, upstream];
        this.pairs.add(pair);
        const drop = () => {
            client.destroy();
            upstream?.destroy();
            this.pairs.delete(pair);
        };
        client.on('close', drop);
        if (upstream) {
            upstream.setNoDelay(true);
            client.setNoDelay(true);
            upstream.on('error', drop);
            upstream.on('close', drop);
            client.pipe(upstream);
            upstream.pipe(client);
        } else {
            client.resume(); // swallowed
        }
    }

    /** Changes the link; every open connection is cut, as a real outage or recovery does. */
    set(mode: Link['mode']): void {
        this.mode = mode;
        for (const [c, u] of [...this.pairs]) {
            c.destroy();
            u?.destroy();
        }
        this.pairs.clear();
    }

    async close(): Promise<void> {
        this.set('refuse');
        await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    }
}

// ---- the Node-RED runtime ----

interface Runtime {
    url: string;
    log(): string;
    stop(): Promise<void>;
}

/** settings.js with a probe behind httpNodeAuth (a middleware in front of every node route). */
function settingsJs(port: number): string {
    const settings = {
        uiHost: '127.0.0.1',
        uiPort: port,
        flowFile: 'flows.json',
        credentialSecret: false,
        nodesDir: [repoRoot],
        editorTheme: { projects: { enabled: false }, tours: false },
        diagnostics: { enabled: false },
        runtimeState: { enabled: false },
        telemetry: { enabled: false, updateNotification: false },
        logging: { console: { level: 'info', metrics: false, audit: false } },
    };
    const red = join(repoRoot, 'node_modules', 'node-red', 'lib', 'red.js');
    const pool = join(repoRoot, 'dist', 'lib', 'modbus', 'shared-pool.js');
    return `// Written by bench/soak-nodered.ts: a runtime probe for the reliability harness.
const RED = require(${JSON.stringify(red)});
const { sharedBusPool } = require(${JSON.stringify(pool)});
const cycles = { count: 0, overruns: 0, worstMs: 0, late: 0, sites: 0 };
const seen = new WeakSet();
function watch() {
    const m = RED.nodes.getNode(${JSON.stringify(MANAGER_ID)});
    const site = m && m.site;
    if (!site || seen.has(site)) return;
    seen.add(site);
    cycles.sites++;
    let last = 0;
    site.manager.events.on('cycle', (r) => {
        cycles.count++;
        cycles.worstMs = Math.max(cycles.worstMs, r.cycleTimeMs);
        const now = Date.now();
        if (last && now - last > 2 * site.manager.periodMs) cycles.late++;
        last = now;
    });
    site.manager.events.on('overrun', () => cycles.overruns++);
}
setInterval(watch, 50).unref();
function probe(req, res, next) {
    if (req.path !== '/__soak/probe') return next();
    watch();
    if (global.gc) { global.gc(); global.gc(); }
    const mem = process.memoryUsage();
    const resources = {};
    for (const k of process.getActiveResourcesInfo()) resources[k] = (resources[k] || 0) + 1;
    const stack = (RED.httpNode._router && RED.httpNode._router.stack) || [];
    const routes = stack.filter((l) => l.route);
    let listeners = 0;
    for (const e of process.eventNames()) listeners += process.listenerCount(e);
    const m = RED.nodes.getNode(${JSON.stringify(MANAGER_ID)});
    let nodes = 0;
    RED.nodes.eachNode(() => nodes++);
    res.json({
        heapMB: mem.heapUsed / 1048576,
        rssMB: mem.rss / 1048576,
        resources,
        routes: routes.length,
        cnfRoutes: routes.filter((l) =>
            l.route.path instanceof RegExp ? l.route.path.test('/cnf') : l.route.path === '/cnf',
        ).length,
        processListeners: listeners,
        managerListeners: m && m.site ? m.site.manager.events.count() - 2 : -1,
        buses: sharedBusPool().size,
        nodes,
        cycles,
    });
}
module.exports = Object.assign(${JSON.stringify(settings)}, { httpNodeAuth: probe });
`;
}

async function startRuntime(): Promise<Runtime> {
    const userDir = mkdtempSync(join(tmpdir(), 'evcm-soak-'));
    const port = await freePort();
    writeFileSync(join(userDir, 'settings.js'), settingsJs(port));
    writeFileSync(join(userDir, 'flows.json'), '[]');
    let output = '';
    const child: ChildProcess = spawn(
        process.execPath,
        ['--expose-gc', join(repoRoot, 'node_modules', 'node-red', 'red.js'), '-u', userDir],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
        rmSync(userDir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 30_000;
    while (!output.includes('Started flows') && !output.includes('Server now running')) {
        if (child.exitCode !== null || Date.now() > deadline) {
            await stop();
            throw new Error(`Node-RED did not start:\n${output}`);
        }
        await sleep(100);
    }
    while (!output.includes('Server now running')) {
        if (child.exitCode !== null || Date.now() > deadline) {
            await stop();
            throw new Error(`Node-RED did not start:\n${output}`);
        }
        await sleep(100);
    }
    return { url: `http://127.0.0.1:${port}`, log: () => output, stop };
}

// ---- HTTP ----

interface Reply {
    status: number;
    body: string;
    ms: number;
}

function call(
    agent: Agent,
    base: string,
    method: 'GET' | 'POST',
    path: string,
    opts: { body?: string; authorization?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
    const t0 = performance.now();
    return new Promise((resolve) => {
        const req = httpRequest(
            base + path,
            {
                method,
                agent,
                timeout: 10_000,
                headers: {
                    ...(opts.authorization ? { Authorization: opts.authorization } : {}),
                    ...(opts.body !== undefined
                        ? {
                              'Content-Type': 'application/json',
                              'Content-Length': Buffer.byteLength(opts.body),
                          }
                        : {}),
                    ...opts.headers,
                },
            },
            (res) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (c: string) => (body += c));
                res.on('end', () =>
                    resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 }),
                );
                res.on('error', () => resolve({ status: 0, body: 'response error', ms: 0 }));
            },
        );
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (e: NodeJS.ErrnoException) =>
            resolve({ status: 0, body: e.code ?? e.message, ms: performance.now() - t0 }),
        );
        req.end(opts.body);
    });
}

function latency(ms: number[]): Latency {
    const s = [...ms].sort((a, b) => a - b);
    const at = (q: number) =>
        Math.round((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0) * 10) / 10;
    return { count: s.length, p50Ms: at(0.5), p95Ms: at(0.95), maxMs: at(1) };
}

// ---- the flow ----

interface WallboxSetup {
    devId: string;
    rotation: PhaseRotation;
    failSafeCur: number;
}

function wallboxes(n: number): WallboxSetup[] {
    return Array.from({ length: n }, (_, i) => ({
        devId: `E${i + 1}`,
        rotation: ([0, 120, 240] as const)[i % 3]!,
        // Half of them pause while the grid meter is quiet, so that a blind site stays safe.
        failSafeCur: i % 2 === 0 ? 6000 : 0,
    }));
}

function flow(
    links: Link[],
    setup: WallboxSetup[],
    scale: number,
    revision: number,
    cnfRevision: number,
): unknown[] {
    const s = (simS: number) => Math.max(1, Math.round(simS / scale));
    const devices = [
        ...setup.map((w, i) => ({
            dev_type: 'evse_powerbrain',
            dev_id: w.devId,
            name: `Wallbox ${i + 1}`,
            address: `127.0.0.1:${links[i]!.port}`,
            id: 1,
            phase_rotation: w.rotation,
            fail_safe_cur: w.failSafeCur,
            stale_after: s(10),
        })),
        { dev_type: 'meter_ajax', dev_id: 'M1', name: 'Grid', role: 3, stale_after: s(5) },
    ];
    return [
        { id: 'soak-tab', type: 'tab', label: 'Soak' },
        {
            id: MANAGER_ID,
            type: 'evcm-manager',
            name: `soak r${revision}`,
            title: 'Soak site',
            max_total_current: String(FUSE),
            reserve_current: String(RESERVE),
            cycle_ms: String(Math.round(1000 / scale)),
            min_pause_time: String(s(120)),
            disable_policy: '0',
            devices: JSON.stringify(devices),
            // Known cards for enter_rfid, for no wallbox in particular: none needs authorisation.
            userTable: JSON.stringify([
                { id: '2167520770', name: 'Soak', rfids: SOAK_CARDS.map((id) => ({ id })) },
            ]),
            credentials: { adminPassword: ADMIN_PASSWORD },
        },
        {
            id: 'soak-cnf',
            type: 'evcm-cnf',
            z: 'soak-tab',
            name: `cnf r${cnfRevision}`,
            manager: MANAGER_ID,
            path: '/cnf',
            x: 120,
            y: 60,
            wires: [],
        },
        {
            id: 'soak-status',
            type: 'evcm-status',
            z: 'soak-tab',
            manager: MANAGER_ID,
            output: 'change',
            x: 120,
            y: 120,
            wires: [[]],
        },
    ];
}

// ---- how hard the stage pushed the fuse ----

/** Why a car that wanted more current was not given it although the budget had room. */
type UnusedCause =
    | 'override or cap'
    | 'paused by the manager (min_pause_time, turn)'
    | 'a wallbox unreachable (counted at its last draw)'
    | 'grid meter quiet'
    | 'within 30 s after a manager (re)start'
    | 'raising (hold time, ramp)';

export interface StressReport {
    /** Sum of every car's current per phase, mean over the three phases, time-weighted (A). */
    meanCarCurrentA: number;
    /** What the manager may give the cars per phase (max_total_current − reserve_current −
     *  household), mean over the three phases, time-weighted (A). */
    meanCarBudgetA: number;
    /** Share of the time a phase carried at least max_total_current − reserve_current − 2 A:
     *  the manager's budget was (nearly) used up there. */
    budgetUsedShare: number;
    /** Mean number of cars plugged in and not full. */
    meanCarsWanting: number;
    /** Shares of the time of cars that wanted current: offered their maximum (16 A), held back
     *  by the budget (less than 1 A left on one of their phases, 6 A to start), or held back
     *  with room left in the budget, and why (from get_dev_info and the harness's own state). */
    carTime: { satisfied: number; budgetBound: number; headroomUnused: number };
    headroomUnusedBecause: Partial<Record<UnusedCause, number>>;
    /** Household steps that left less than the cars' draw on a phase (the manager had to reduce),
     *  those followed by a lower setpoint on that phase within the reaction window, and the
     *  reaction time (simulated ms; from the step to the lower setpoint at the wallbox). */
    householdStepsForcingReduction: number;
    reductionsAfterStep: number;
    reductionSimMs: { count: number; p50: number; max: number };
    /** Household steps that exceeded the reserve while the cars used the budget: the grid went
     *  above the fuse until the manager reacted. */
    stepsBeyondReserve: number;
    /** From a wallbox's link coming back to the manager reading it again (get_dev_info without
     *  com_err), simulated ms; `pending`: outages still unrecovered at the end. */
    wallboxRecoverySimMs: { count: number; p50: number; max: number; pending: number };
}

/** A car as the harness sees it at one sample. */
export interface CarSample {
    wanting: boolean;
    /** mA the wallbox offers (its setpoint as the car sees it). */
    offered: number;
    maxCurrent: number;
    /** Building phases the car draws on (bit p = phase p). */
    phases: number;
    /** Best-known reason for a held-back car, checked in this order. */
    override: boolean;
    paused: boolean;
    unreachable: boolean;
}

/** mA below the manager's budget (max_total_current − reserve_current) that counts as using it. */
const NEAR_BUDGET = 2000;
const REDUCED_BY = 500; // mA: a setpoint change smaller than this is not a reaction

class StressMeter {
    private simMs = 0;
    private carCurrentMs = 0;
    private budgetMs = 0;
    private wantingMs = 0;
    private budgetUsedMs = 0;
    private readonly carMs = { satisfied: 0, budgetBound: 0, headroomUnused: 0 };
    private readonly unusedMs: Partial<Record<UnusedCause, number>> = {};
    private forcing = 0;
    private reduced = 0;
    private beyondReserve = 0;
    private readonly reactions: number[] = [];
    /** A household step the manager must answer: the phase, the setpoints then, since when. */
    private pending: { phase: number; offered: number; at: number; deadline: number } | null = null;

    sample(
        dtSimMs: number,
        simNow: number,
        household: Phases3,
        maxTotal: number,
        reserve: number,
        cars: CarSample[],
        carCurrents: Phases3,
        causes: { meterQuiet: boolean; sinceManagerStartSimMs: number },
    ): void {
        const budget = household.map((h) => maxTotal - reserve - h);
        const offeredOn = [0, 0, 0];
        for (const c of cars) {
            for (let p = 0; p < 3; p++)
                if (c.wanting && c.phases & (1 << p)) offeredOn[p]! += c.offered;
        }
        this.simMs += dtSimMs;
        this.carCurrentMs += (dtSimMs * (carCurrents[0] + carCurrents[1] + carCurrents[2])) / 3;
        this.budgetMs += (dtSimMs * (budget[0]! + budget[1]! + budget[2]!)) / 3;
        const load = Math.max(...household.map((h, p) => h + carCurrents[p]!));
        if (load >= maxTotal - reserve - NEAR_BUDGET) this.budgetUsedMs += dtSimMs;
        for (const c of cars) {
            if (!c.wanting) continue;
            this.wantingMs += dtSimMs;
            if (c.offered >= c.maxCurrent) {
                this.carMs.satisfied += dtSimMs;
                continue;
            }
            let room = Infinity;
            for (let p = 0; p < 3; p++) {
                if (c.phases & (1 << p)) room = Math.min(room, budget[p]! - offeredOn[p]!);
            }
            if (room < (c.offered > 0 ? 1000 : 6000)) {
                this.carMs.budgetBound += dtSimMs;
                continue;
            }
            this.carMs.headroomUnused += dtSimMs;
            const cause: UnusedCause = c.override
                ? 'override or cap'
                : c.unreachable
                  ? 'a wallbox unreachable (counted at its last draw)'
                  : causes.meterQuiet
                    ? 'grid meter quiet'
                    : causes.sinceManagerStartSimMs < 30_000
                      ? 'within 30 s after a manager (re)start'
                      : c.paused
                        ? 'paused by the manager (min_pause_time, turn)'
                        : 'raising (hold time, ramp)';
            this.unusedMs[cause] = (this.unusedMs[cause] ?? 0) + dtSimMs;
        }
        const p = this.pending;
        if (p) {
            if (offeredOn[p.phase]! <= p.offered - REDUCED_BY) {
                this.reduced++;
                this.reactions.push(simNow - p.at);
                this.pending = null;
            } else if (simNow > p.deadline) this.pending = null;
        }
    }

    /** A household step: does it force the manager to reduce, and will it overload the fuse? */
    step(
        simNow: number,
        windowSimMs: number,
        household: Phases3,
        fuse: number,
        maxTotal: number,
        reserve: number,
        cars: CarSample[],
        carCurrents: Phases3,
    ): void {
        let worst = -1;
        let worstExcess = 0;
        for (let p = 0; p < 3; p++) {
            const excess = household[p]! + carCurrents[p]! - (maxTotal - reserve);
            if (excess > worstExcess) {
                worstExcess = excess;
                worst = p;
            }
        }
        if (worst < 0 || carCurrents[worst]! < REDUCED_BY) return;
        this.forcing++;
        if (Math.max(...household.map((h, p) => h + carCurrents[p]!)) > fuse) this.beyondReserve++;
        let offered = 0;
        for (const c of cars) if (c.wanting && c.phases & (1 << worst)) offered += c.offered;
        this.pending = { phase: worst, offered, at: simNow, deadline: simNow + windowSimMs };
    }

    report(): StressReport {
        const a = (mAms: number) => Math.round(mAms / (this.simMs || 1) / 100) / 10;
        const share = (ms: number) => Math.round((ms / (this.wantingMs || 1)) * 1000) / 1000;
        const sorted = [...this.reactions].sort((x, y) => x - y);
        const unused: Partial<Record<UnusedCause, number>> = {};
        for (const [k, v] of Object.entries(this.unusedMs)) unused[k as UnusedCause] = share(v);
        return {
            meanCarCurrentA: a(this.carCurrentMs),
            meanCarBudgetA: a(this.budgetMs),
            budgetUsedShare: Math.round((this.budgetUsedMs / (this.simMs || 1)) * 1000) / 1000,
            meanCarsWanting: Math.round((this.wantingMs / (this.simMs || 1)) * 100) / 100,
            carTime: {
                satisfied: share(this.carMs.satisfied),
                budgetBound: share(this.carMs.budgetBound),
                headroomUnused: share(this.carMs.headroomUnused),
            },
            headroomUnusedBecause: unused,
            householdStepsForcingReduction: this.forcing,
            reductionsAfterStep: this.reduced,
            reductionSimMs: {
                count: sorted.length,
                p50: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
                max: Math.round(sorted[sorted.length - 1] ?? 0),
            },
            stepsBeyondReserve: this.beyondReserve,
            wallboxRecoverySimMs: { count: 0, p50: 0, max: 0, pending: 0 },
        };
    }
}

// ---- the run ----

export async function soakNodeRed(opts: NodeRedSoakOptions): Promise<NodeRedSoakReport> {
    const scale = opts.timeScale;
    const realMs = (simMs: number) => simMs / scale;
    let k = 0;
    const random = () => seededRandom(opts.seed * 100_003 + k++);
    const wallStart = Date.now();
    const simEpoch = Date.UTC(2026, 5, 1, 11);
    const simNow = () => simEpoch + (Date.now() - wallStart) * scale;
    const setup = wallboxes(opts.evses);
    const sims = setup.map(
        () => new PowerBrainSim({ host: '127.0.0.1', port: 0, meterPorts: false, now: simNow }),
    );
    const links: Link[] = [];
    const problems: string[] = [];
    const agents: Agent[] = [];
    const newAgent = () => {
        const a = new Agent({ keepAlive: true, maxSockets: 1 });
        agents.push(a);
        return a;
    };
    let red: Runtime | null = null;
    let running = true;
    const tasks: Promise<void>[] = [];

    const report: NodeRedSoakReport = {
        simMinutes: opts.simMinutes,
        timeScale: scale,
        realSeconds: 0,
        evses: opts.evses,
        fuseA: FUSE / 1000,
        samples: 0,
        worstMarginRaw: [Infinity, Infinity, Infinity],
        worstMarginSettled: [Infinity, Infinity, Infinity],
        worstMarginWithData: [Infinity, Infinity, Infinity],
        fuseViolationSamples: 0,
        fuseViolationEpisodes: 0,
        overloadSamplesWhileBlind: 0,
        overloadSamplesBeyondControl: 0,
        transientOverloads: 0,
        transientOverloadSamples: 0,
        worstTransientOverload: 0,
        longestTransientSimMs: 0,
        reactionWindowSimMs: 0,
        loadSteps: 0,
        appliancesOn: 0,
        appliancesOnAtBudget: 0,
        carsPlugged: 0,
        operatorLimits: {},
        failuresInjected: { wallbox: 0, meter: 0 },
        redeploys: {},
        redeployMs: latency([]),
        cnfGapAfterDeployMs: latency([]),
        cycles: { count: 0, overruns: 0, worstMs: 0, late: 0, sites: 0 },
        cnf: {
            requests: 0,
            byCommand: {},
            rejected: {},
            unexpected: {},
            duringRedeploy: 0,
            badAccepted: 0,
            partialChanges: 0,
            rejectedBeforeCnf: { count: 0, showsStackTrace: false },
        },
        deviceErrors: {},
        nodeRedLog: {},
        chargedKWh: 0,
        stress: undefined as never,
        leak: undefined as never,
        ok: false,
        problems,
    };
    const latencies = new Map<string, number[]>();
    const redeployTimes: number[] = [];
    const cnfGaps: number[] = [];
    const heapAtRedeploys: number[] = [];

    try {
        for (const sim of sims) await sim.start();
        for (const sim of sims) {
            const link = new Link(sim.ports.evse);
            await link.start();
            links.push(link);
        }
        red = await startRuntime();
        const base = red.url;
        const adminAgent = newAgent();
        const probe = async (): Promise<ProbeSample> => {
            const r = await call(adminAgent, base, 'GET', '/__soak/probe');
            if (r.status !== 200) throw new Error(`probe: ${r.status} ${r.body}`);
            return JSON.parse(r.body) as ProbeSample;
        };

        // Redeploys: the window in which /cnf may be briefly missing or serve the old site.
        let revision = 1;
        let cnfRevision = 1;
        let redeployUntil = 0; // wall ms
        let managerStartedAt = Date.now(); // wall ms
        const deploy = async (type: 'full' | 'flows' | 'nodes', what: 'manager' | 'cnf' | '') => {
            if (what === 'manager') revision++;
            if (what === 'cnf') cnfRevision++;
            redeployUntil = Infinity;
            const t0 = performance.now();
            const r = await call(adminAgent, base, 'POST', '/flows', {
                body: JSON.stringify(flow(links, setup, scale, revision, cnfRevision)),
                headers: { 'Node-RED-Deployment-Type': type },
            });
            if (r.status !== 204 && r.status !== 200) {
                throw new Error(`deploy ${type}: ${r.status} ${r.body}`);
            }
            redeployTimes.push(performance.now() - t0);
            if (what !== 'cnf') managerStartedAt = Date.now();
            // Node-RED answers the deploy before the new nodes have started: wait for /cnf.
            const t1 = performance.now();
            for (;;) {
                const g = await call(adminAgent, base, 'GET', '/cnf?cmd=get_params');
                if (g.status === 200) break;
                if (performance.now() - t1 > 10_000)
                    throw new Error(`/cnf gone after ${type} deploy`);
                await sleep(10);
            }
            cnfGaps.push(performance.now() - t1);
            // Scaled control times that the editor does not hold, through /cnf as a user would.
            const p = await call(adminAgent, base, 'POST', '/cnf?cmd=set_params', {
                authorization: auth(ADMIN_PASSWORD),
                body: JSON.stringify({
                    increase_hold_time: Math.max(1, Math.round(10 / scale)),
                    overdraw_penalty_time: Math.round(300 / scale),
                    underdraw_time: Math.round(60 / scale),
                }),
            });
            if (p.status !== 200) problems.push(`set_params after deploy: ${p.status} ${p.body}`);
            redeployUntil = Date.now() + 3 * realMs(1000);
        };
        await deploy('full', '');

        // The physical world.
        const baseLoad: [number, number, number] = [2000, 2000, 2000];
        const appliance: [number, number, number] = [0, 0, 0];
        let applianceUntil = 0; // wall ms
        const household: [number, number, number] = [...baseLoad];
        const plugged = new Set<number>();
        let lastStepAt = -Infinity; // wall ms of the last load step or plug-in
        const linkDownUntil = new Map<number, number>(); // wallbox index → wall ms
        let linkRecoveredAt = -Infinity;
        let meterDownUntil = 0;
        let meterRecoveredAt = -Infinity;
        let meterWasDown = false;
        const reaction = 3 * realMs(1000); // wall ms: one meter push, a cycle in progress, the next one
        report.reactionWindowSimMs = reaction * scale;
        // Blind: the manager may act on a meter value older than stale_after.
        const staleReal = Math.max(1, Math.round(5 / scale)) * 1000;
        /** What the cars draw on the building's phases (mA). */
        const carsDraw = (): Phases3 => {
            const g: [number, number, number] = [0, 0, 0];
            sims.forEach((sim, i) => {
                const c = rotatePhases(sim.carCurrents, setup[i]!.rotation);
                for (let p = 0; p < 3; p++) g[p]! += c[p]!;
            });
            return g;
        };
        // The manager's own view, as its get_dev_info and get_params answers show it.
        const view = {
            maxTotal: FUSE,
            reserve: 3000,
            devices: new Map<string, { override: boolean; paused: boolean; comErr: boolean }>(),
        };
        /** Wallboxes whose link came back, until the manager reads them again: dev_id → wall ms. */
        const recovering = new Map<string, number>();
        const recoveries: number[] = [];
        const learn = (kind: string, body: string) => {
            const answeredAt = Date.now();
            const o = JSON.parse(body) as {
                params?: Record<string, unknown>;
                devices?: Record<string, unknown>[];
            } & Record<string, unknown>;
            const params = kind === 'get_params' ? o : o.params;
            if (typeof params?.max_total_current === 'number')
                view.maxTotal = params.max_total_current;
            if (typeof params?.reserve_current === 'number') view.reserve = params.reserve_current;
            for (const d of o.devices ?? []) {
                if (d.is_evse !== true || typeof d.dev_id !== 'string') continue;
                view.devices.set(d.dev_id, {
                    override:
                        ((d.overrides as number) & 1) !== 0 ||
                        (d.ov_cur as number) < (d.max_charging_cur as number),
                    paused: d.paused === true,
                    comErr: d.com_err === true,
                });
                const since = recovering.get(d.dev_id);
                if (since !== undefined && d.com_err !== true && answeredAt > since) {
                    recoveries.push((answeredAt - since) * scale);
                    recovering.delete(d.dev_id);
                }
            }
        };
        const carPhases = new Map<number, 1 | 3>();
        const carSamples = (now: number): CarSample[] =>
            sims.map((sim, i) => {
                const st = sim.state;
                const ph = carPhases.get(i) ?? 3;
                const mask = rotatePhases(
                    [1, ph === 3 ? 1 : 0, ph === 3 ? 1 : 0],
                    setup[i]!.rotation,
                );
                const v = view.devices.get(setup[i]!.devId);
                return {
                    wanting: st.plugged && (st.soc ?? 1) < 1,
                    offered: st.offered,
                    maxCurrent: 16_000,
                    phases: mask[0] | (mask[1] << 1) | (mask[2] << 2),
                    override: v?.override ?? false,
                    paused: v?.paused ?? false,
                    // Any: the manager holds an unreachable wallbox at its last draw on top of the
                    // household, which also holds back the others.
                    unreachable: linkDownUntil.size > 0 || now - linkRecoveredAt < reaction,
                };
            });
        const stress = new StressMeter();
        const simAt = (wallMs: number) => simEpoch + (wallMs - wallStart) * scale;
        let lastSampleAt = Date.now();

        const feedAgent = newAgent();
        let feeding = Promise.resolve();
        const feed = (g: Phases3) => {
            feeding = call(feedAgent, base, 'POST', '/cnf?cmd=set_ajax_meter&dev_id=M1', {
                authorization: auth(ADMIN_PASSWORD),
                body: JSON.stringify({ current: g, voltage: [230, 230, 230] }),
            }).then((r) => {
                record('set_ajax_meter (feed)', r, false);
            });
        };

        // /cnf clients.
        const inRedeploy = () => Date.now() < redeployUntil;
        const record = (kind: string, r: Reply, bad: boolean, accept = [200]) => {
            report.cnf.requests++;
            const l = latencies.get(kind) ?? [];
            l.push(r.ms);
            latencies.set(kind, l);
            if (bad) {
                let text = '';
                try {
                    text = JSON.parse(r.body) as string;
                } catch {
                    /* not JSON */
                }
                if (r.status >= 200 && r.status < 300) {
                    report.cnf.badAccepted++;
                    problems.push(`bad request accepted: ${kind} → ${r.status} ${r.body}`);
                } else if (typeof text !== 'string' || !text) {
                    if (!inRedeploy()) {
                        report.cnf.badAccepted++;
                        problems.push(
                            `bad request without a clear error: ${kind} → ${r.status} ${r.body.slice(0, 80)}`,
                        );
                    } else report.cnf.duringRedeploy++;
                } else bump(report.cnf.rejected, `${kind} → ${r.status} ${kindOf(text)}`);
                return;
            }
            if (accept.includes(r.status)) return;
            if (inRedeploy()) {
                report.cnf.duringRedeploy++;
                return;
            }
            bump(report.cnf.unexpected, `${kind} → ${r.status} ${kindOf(r.body)}`);
            bump(report.cnf.rejected, `${kind} → ${r.status} ${kindOf(r.body)}`);
        };
        const checkMarkers = (kind: string, r: Reply) => {
            if (r.status !== 200) return;
            learn(kind, r.body);
            if (r.body.includes('BAD-')) {
                report.cnf.partialChanges++;
                problems.push(`${kind}: a rejected request's marker is in the state`);
            }
            if (kind === 'get_dev_info' && /"ov_cur":\s*3000\b/.test(r.body)) {
                report.cnf.partialChanges++;
                problems.push('get_dev_info: a rejected override (3000 mA) took effect');
            }
            if (kind === 'get_params') {
                const p = JSON.parse(r.body) as Record<string, unknown>;
                if (p.reserve_current === 4321 || p.max_total_current === 4321) {
                    report.cnf.partialChanges++;
                    problems.push('get_params: a rejected set_params changed a parameter');
                }
            }
        };
        const admin = auth(ADMIN_PASSWORD);
        let marker = 0;
        const pickDev = () => `E${1 + Math.floor(random() * opts.evses)}`;
        const client = async (agent: Agent) => {
            while (running) {
                const x = random();
                const path = (q: string) => `/cnf?cmd=${q}`;
                if (x < 0.25) {
                    const r = await call(agent, base, 'GET', path('get_dev_info'));
                    record('get_dev_info', r, false);
                    checkMarkers('get_dev_info', r);
                } else if (x < 0.37) {
                    const r = await call(agent, base, 'GET', path('get_params'));
                    record('get_params', r, false);
                    checkMarkers('get_params', r);
                } else if (x < 0.5) {
                    // Settings that do not limit the cars: the operator below owns the limits,
                    // so that they are rare and short-lived.
                    const patch =
                        random() < 0.5
                            ? { title: `Soak site ${Math.floor(random() * 100)}` }
                            : { desc: `written by client ${Math.floor(random() * 100)}` };
                    const r = await call(agent, base, 'POST', path('set_params'), {
                        authorization: admin,
                        body: JSON.stringify(patch),
                    });
                    record('set_params', r, false);
                } else if (x < 0.6) {
                    // Overrides that lift a limit, on a wallbox the operator does not hold.
                    const free = setup.filter((w) => w.devId !== operatorHolds);
                    const dev = free[Math.floor(random() * free.length)]!.devId;
                    const q = random() < 0.5 ? 'mamps=0' : 'flags=c';
                    const r = await call(
                        agent,
                        base,
                        'GET',
                        path(`override_device&dev_id=${dev}&${q}`),
                        { authorization: admin },
                    );
                    record('override_device', r, false);
                } else if (x < 0.65) {
                    const r = await call(
                        agent,
                        base,
                        'GET',
                        path(
                            `enter_rfid&rfid=${SOAK_CARDS[Math.floor(random() * SOAK_CARDS.length)]}&dev_id=${pickDev()}`,
                        ),
                    );
                    record('enter_rfid', r, false);
                } else {
                    // Bad requests: each must be refused with a clear error and change nothing.
                    const m = `BAD-${++marker}`;
                    const bad: [
                        string,
                        'GET' | 'POST',
                        string,
                        string | undefined,
                        string | undefined,
                    ][] = [
                        ['unknown command', 'GET', path('no_such_cmd'), undefined, undefined],
                        [
                            'set_params bad value',
                            'POST',
                            path('set_params'),
                            JSON.stringify({
                                title: m,
                                reserve_current: 4321,
                                max_total_current: 'lots',
                            }),
                            admin,
                        ],
                        [
                            'set_params without credentials',
                            'POST',
                            path('set_params'),
                            JSON.stringify({ title: m, reserve_current: 4321 }),
                            undefined,
                        ],
                        [
                            'set_params broken JSON',
                            'POST',
                            path('set_params'),
                            `{"title": "${m}", "reserve_current": 4321,`,
                            admin,
                        ],
                        [
                            'set_params broken JSON as application/json',
                            'POST',
                            path('set_params'),
                            `{"title": "${m}", "reserve_current": 4321,`,
                            admin,
                        ],
                        [
                            'override unknown device',
                            'GET',
                            path('override_device&dev_id=E99&mamps=8000'),
                            undefined,
                            admin,
                        ],
                        [
                            'override below minimum',
                            'GET',
                            path(`override_device&dev_id=${pickDev()}&mamps=3000`),
                            undefined,
                            admin,
                        ],
                        [
                            'set_ajax_meter bad body',
                            'POST',
                            path('set_ajax_meter&dev_id=M1'),
                            JSON.stringify({ model: m, current: [1, 2] }),
                            admin,
                        ],
                        [
                            'set_ajax_meter on a wallbox',
                            'POST',
                            path(`set_ajax_meter&dev_id=${pickDev()}`),
                            JSON.stringify({ model: m, current: [90_000, 90_000, 90_000] }),
                            admin,
                        ],
                        [
                            'enter_rfid bad rfid',
                            'GET',
                            path('enter_rfid&rfid=%3Cx%3E&dev_id=E1'),
                            undefined,
                            undefined,
                        ],
                    ];
                    const [kind, method, p, body, authorization] =
                        bad[Math.floor(random() * bad.length)]!;
                    const r = await call(agent, base, method, p, {
                        ...(body !== undefined ? { body } : {}),
                        ...(authorization ? { authorization } : {}),
                        ...(body !== undefined && !kind.endsWith('application/json')
                            ? { headers: { 'Content-Type': 'text/plain' } }
                            : {}),
                    });
                    if (
                        kind.endsWith('application/json') &&
                        r.status === 400 &&
                        r.body.startsWith('<')
                    ) {
                        // With httpAdminRoot and httpNodeRoot both at /, the editor's JSON
                        // parser sees the body first and answers with its own HTML error page.
                        const c = report.cnf.rejectedBeforeCnf;
                        c.count++;
                        c.showsStackTrace ||= /\bat [^<]*\(/.test(r.body);
                    } else record(kind, r, true);
                }
                await sleep(10 + random() * 40);
            }
        };
        // The operator: now and then (every 20–60 simulated s) one limit for 10–30 simulated s —
        // a current cap or charging disabled on one wallbox, or a lower max_total_current or a
        // higher reserve_current — then lifted again. The lift is retried until it lands (a
        // redeploy may swallow it).
        let operatorHolds = '';
        const operatorAgent = newAgent();
        const operate = async (kind: string, method: 'GET' | 'POST', q: string, body?: object) => {
            for (let attempt = 0; attempt < 50; attempt++) {
                const r = await call(operatorAgent, base, method, `/cnf?cmd=${q}`, {
                    authorization: admin,
                    ...(body ? { body: JSON.stringify(body) } : {}),
                });
                record(kind, r, false);
                if (r.status === 200 || !running) return;
                await sleep(100);
            }
        };
        const pause = async (simMs: number) => {
            const until = Date.now() + realMs(simMs);
            while (running && Date.now() < until) await sleep(Math.min(100, until - Date.now()));
        };
        const operator = async () => {
            while (running) {
                await pause(20_000 + random() * 40_000);
                if (!running) break;
                const x = random();
                const hold = 10_000 + random() * 20_000;
                if (x < 0.6) {
                    const dev = pickDev();
                    const cap = x < 0.45;
                    operatorHolds = dev;
                    const q = `override_device&dev_id=${dev}&`;
                    const mA = 6000 + 1000 * Math.floor(random() * 7);
                    await operate('operator limit', 'GET', q + (cap ? `mamps=${mA}` : 'flags=C'));
                    bump(report.operatorLimits, cap ? 'current cap' : 'charging disabled');
                    await pause(hold);
                    await operate('operator lift', 'GET', q + (cap ? 'mamps=0' : 'flags=c'));
                    operatorHolds = '';
                } else {
                    // Within what the physical fuse allows.
                    const lower = x < 0.8;
                    const limit = lower
                        ? { max_total_current: 26_000 + 1000 * Math.floor(random() * 6) }
                        : { reserve_current: 3500 + 500 * Math.floor(random() * 4) };
                    await operate('operator limit', 'POST', 'set_params', limit);
                    bump(
                        report.operatorLimits,
                        lower ? 'lower max_total_current' : 'higher reserve',
                    );
                    await pause(hold);
                    await operate('operator lift', 'POST', 'set_params', {
                        max_total_current: FUSE,
                        reserve_current: RESERVE,
                    });
                }
            }
        };
        // A client with a wrong password from another loopback address: it is throttled, the
        // others are not.
        const intruder = async () => {
            const agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress: '127.0.0.2' });
            agents.push(agent);
            while (running) {
                const r = await call(agent, base, 'POST', '/cnf?cmd=set_params', {
                    authorization: auth('wrong-password'),
                    body: JSON.stringify({ title: `BAD-intruder`, reserve_current: 4321 }),
                });
                record('set_params wrong password', r, true);
                await sleep(300 + random() * 300);
            }
        };

        await sleep(realMs(3000));
        const baselineHeap: ProbeSample = await probe();
        heapAtRedeploys.push(baselineHeap.heapMB);
        for (let i = 0; i < opts.cnfClients; i++) tasks.push(client(newAgent()));
        tasks.push(intruder());
        tasks.push(operator());

        // Redeploys, alternating the three deployment types and what changed.
        const variants: ['full' | 'flows' | 'nodes', 'manager' | 'cnf' | ''][] = [
            ['nodes', 'manager'],
            ['flows', 'manager'],
            ['full', ''],
            ['nodes', 'cnf'],
        ];
        let nextRedeploy = Date.now() + realMs(opts.redeployEverySimS * 1000);
        let redeployIndex = 0;
        let baseline: ProbeSample | null = null;
        let redeploying: Promise<void> | null = null;

        const endAt = Date.now() + realMs(opts.simMinutes * 60_000);
        let tick = 0;
        let inOverload = false;
        let lastTransientCause = -Infinity;
        while (Date.now() < endAt) {
            const now = Date.now();
            tick++;
            // Household: a base load that drifts now and then (1.5–4 A a phase), and appliances
            // that switch on for 8–30 simulated s (one phase +5–11 A, or all three +4–9 A), at
            // least 15 s after the previous one switched off. An appliance is larger than the
            // reserve, and it is timed against the manager: while the cars use the budget on a
            // phase (within 2 A) it comes within ~8 s and a one-phase appliance lands on that
            // phase, so that the grid goes above the fuse until the manager reduces the cars;
            // otherwise one comes about every 60 s. The household stays ≤ 15 A a phase, so that
            // one unreachable wallbox at 16 A plus the household still fits the fuse (the
            // manager can then only cut the others).
            const tickSimMs = SAMPLE_MS * scale;
            let stepped = false;
            if (random() < tickSimMs / 60_000) {
                for (let p = 0; p < 3; p++) baseLoad[p] = 1500 + Math.round(random() * 2500);
                stepped = true;
            }
            const load = carsDraw().map((c, p) => c + household[p]!);
            const tight = load.indexOf(Math.max(...load));
            const atBudget = load[tight]! >= view.maxTotal - view.reserve - NEAR_BUDGET;
            if (now >= applianceUntil && appliance.some((a) => a > 0)) {
                appliance.fill(0);
                stepped = true;
            } else if (
                now >= applianceUntil + realMs(15_000) &&
                random() < tickSimMs / (atBudget ? 8000 : 60_000)
            ) {
                if (random() < 0.5) {
                    appliance[tight] = 5000 + Math.round(random() * 6000);
                } else appliance.fill(4000 + Math.round(random() * 5000));
                applianceUntil = now + realMs(8000 + random() * 22_000);
                report.appliancesOn++;
                if (atBudget) report.appliancesOnAtBudget++;
                stepped = true;
            }
            if (stepped) {
                for (let p = 0; p < 3; p++)
                    household[p] = Math.min(15_000, baseLoad[p]! + appliance[p]!);
                lastStepAt = now;
                report.loadSteps++;
                stress.step(
                    simAt(now),
                    10_000,
                    household,
                    FUSE,
                    view.maxTotal,
                    view.reserve,
                    carSamples(now),
                    carsDraw(),
                );
            }
            // Cars arrive over the first minute, and one leaves and another comes now and then.
            if (plugged.size < opts.evses && random() < 0.03) {
                const free = sims.map((_, i) => i).filter((i) => !plugged.has(i));
                const i = free[Math.floor(random() * free.length)]!;
                const phases = i % 3 === 2 ? 1 : 3;
                sims[i]!.plug({
                    batteryWh: 60_000,
                    soc: 0.1 + random() * 0.6,
                    maxCurrent: 16_000,
                    phases,
                    followMs: 3000,
                });
                carPhases.set(i, phases);
                plugged.add(i);
                lastStepAt = now;
                report.carsPlugged++;
            } else if (plugged.size === opts.evses && random() < 0.002) {
                const i = Math.floor(random() * opts.evses);
                sims[i]!.unplug();
                plugged.delete(i);
            }
            // Failures: a wallbox's network or the grid meter goes quiet for 5–30 s.
            if (random() < (SAMPLE_MS * scale) / (opts.failureEverySimS * 1000)) {
                const pick = Math.floor(random() * (opts.evses + 1));
                const until = now + realMs(5000 + random() * 25_000);
                if (pick === opts.evses) {
                    if (now >= meterDownUntil) {
                        meterDownUntil = until;
                        report.failuresInjected.meter++;
                    }
                } else if (!linkDownUntil.has(pick)) {
                    linkDownUntil.set(pick, until);
                    links[pick]!.set(random() < 0.5 ? 'refuse' : 'silent');
                    report.failuresInjected.wallbox++;
                }
            }
            for (const [i, until] of linkDownUntil) {
                if (now >= until) {
                    links[i]!.set('up');
                    linkDownUntil.delete(i);
                    linkRecoveredAt = now;
                    recovering.set(setup[i]!.devId, now);
                }
            }
            const meterDown = now < meterDownUntil;
            if (meterWasDown && !meterDown) meterRecoveredAt = now;
            meterWasDown = meterDown;

            // The wire.
            const draw = carsDraw();
            const g: Phases3 = [
                household[0] + draw[0],
                household[1] + draw[1],
                household[2] + draw[2],
            ];
            stress.sample(
                (now - lastSampleAt) * scale,
                simAt(now),
                household,
                view.maxTotal,
                view.reserve,
                carSamples(now),
                draw,
                {
                    meterQuiet: now - meterDownUntil < staleReal + reaction,
                    sinceManagerStartSimMs: (now - managerStartedAt) * scale,
                },
            );
            lastSampleAt = now;
            if (!meterDown && tick % FEED_EVERY === 0) {
                await feeding;
                feed(g);
            }
            report.samples++;
            const transient =
                now - lastStepAt < reaction ||
                now - managerStartedAt < reaction + staleReal ||
                now - meterRecoveredAt < reaction ||
                now - linkRecoveredAt < reaction;
            const blind = meterDown || now - meterDownUntil < staleReal + reaction;
            const over = Math.max(...g) - FUSE;
            for (let p = 0; p < 3; p++) {
                report.worstMarginRaw[p] = Math.min(report.worstMarginRaw[p]!, FUSE - g[p]!);
                if (!transient) {
                    report.worstMarginSettled[p] = Math.min(
                        report.worstMarginSettled[p]!,
                        FUSE - g[p]!,
                    );
                    if (!blind) {
                        report.worstMarginWithData[p] = Math.min(
                            report.worstMarginWithData[p]!,
                            FUSE - g[p]!,
                        );
                    }
                }
            }
            if (over > 0 && transient) {
                const cause = Math.max(
                    lastStepAt,
                    managerStartedAt,
                    meterRecoveredAt,
                    linkRecoveredAt,
                );
                if (cause !== lastTransientCause) report.transientOverloads++;
                lastTransientCause = cause;
                report.transientOverloadSamples++;
                report.worstTransientOverload = Math.max(report.worstTransientOverload, over);
                report.longestTransientSimMs = Math.max(
                    report.longestTransientSimMs,
                    (now - cause) * scale,
                );
            } else if (over > 0) {
                // As the Site stage counts it: a violation is a phase above the fuse after the
                // reaction window while a wallbox the manager reaches still charges on it; the
                // same with the grid meter quiet (fail-safe currents) or with only unreachable
                // wallboxes charging on that phase is recorded apart.
                const controllable = sims.some((sim, i) => {
                    if (linkDownUntil.has(i) || now - linkRecoveredAt < reaction) return false;
                    const c = rotatePhases(sim.carCurrents, setup[i]!.rotation);
                    return [0, 1, 2].some((p) => g[p]! > FUSE && c[p]! > 0);
                });
                const kind = blind ? 'blind' : controllable ? 'violation' : 'beyondControl';
                if (kind === 'violation') {
                    report.fuseViolationSamples++;
                    if (!inOverload) report.fuseViolationEpisodes++;
                } else if (kind === 'blind') report.overloadSamplesWhileBlind++;
                else report.overloadSamplesBeyondControl++;
            }
            inOverload = over > 0 && !transient;

            // Redeploy.
            if (!redeploying && now >= nextRedeploy && endAt - now > realMs(20_000)) {
                const [type, what] = variants[redeployIndex++ % variants.length]!;
                redeploying = deploy(type, what)
                    .then(async () => {
                        bump(report.redeploys, `${type} (${what || 'no change'})`);
                        await sleep(realMs(2000));
                        const s = await probe();
                        heapAtRedeploys.push(s.heapMB);
                        baseline ??= s; // the first redeploy warms up every code path
                    })
                    .catch((e: unknown) => {
                        problems.push(`redeploy: ${(e as Error).message}`);
                    })
                    .finally(() => {
                        redeploying = null;
                        nextRedeploy = Date.now() + realMs(opts.redeployEverySimS * 1000);
                    });
            }
            await sleep(Math.max(0, SAMPLE_MS - (Date.now() - now)));
        }
        running = false;
        await redeploying;
        await Promise.all(tasks);
        await feeding;
        const final = await probe();
        report.cycles = final.cycles;
        for (const [kind, l] of latencies) report.cnf.byCommand[kind] = latency(l);
        report.redeployMs = latency(redeployTimes);
        report.cnfGapAfterDeployMs = latency(cnfGaps);
        const b = baseline ?? baselineHeap;
        const resourcesGrowth: Record<string, number> = {};
        for (const key of new Set([...Object.keys(b.resources), ...Object.keys(final.resources)])) {
            const d = (final.resources[key] ?? 0) - (b.resources[key] ?? 0);
            if (d) resourcesGrowth[key] = d;
        }
        const n = heapAtRedeploys.length;
        const mean = (xs: number[]) => xs.reduce((t, x) => t + x, 0) / (xs.length || 1);
        const xs = heapAtRedeploys.map((_, i) => i);
        const mx = mean(xs);
        const my = mean(heapAtRedeploys);
        const slope =
            n > 1
                ? xs.reduce((t, x, i) => t + (x - mx) * (heapAtRedeploys[i]! - my), 0) /
                  xs.reduce((t, x) => t + (x - mx) ** 2, 0)
                : 0;
        const r1 = (x: number) => Math.round(x * 10) / 10;
        report.leak = {
            baseline: b,
            final,
            heapGrowthMB: r1(final.heapMB - b.heapMB),
            rssGrowthMB: r1(final.rssMB - b.rssMB),
            heapAtRedeploys: heapAtRedeploys.map(r1),
            heapSlopeMBPerRedeploy: Math.round(slope * 100) / 100,
            routesGrowth: final.routes - b.routes,
            listenersGrowth:
                final.processListeners -
                b.processListeners +
                (final.managerListeners - b.managerListeners),
            resourcesGrowth,
        };
        report.stress = stress.report();
        const recovered = [...recoveries].sort((x, y) => x - y);
        report.stress.wallboxRecoverySimMs = {
            count: recovered.length,
            p50: Math.round(recovered[Math.floor(recovered.length / 2)] ?? 0),
            max: Math.round(recovered[recovered.length - 1] ?? 0),
            pending: recovering.size,
        };
        report.chargedKWh =
            Math.round(sims.reduce((t, s) => t + s.state.totalEnergyWh, 0) / 100) / 10;
        // Device errors and node errors as Node-RED logged them.
        for (const line of red.log().split('\n')) {
            const m = /\[(error|warn)\] \[([^\]]+)\] (.*)$/.exec(line);
            if (!m) continue;
            const type = m[2]!.split(':')[0]!;
            const text = kindOf(m[3]!);
            bump(report.nodeRedLog, `${m[1]} ${type}: ${text}`);
            if (type === 'evcm-manager') bump(report.deviceErrors, text.replace(/^E\S* ?/, ''));
        }
        const l = report.leak;
        if (final.cnfRoutes !== 1) problems.push(`${final.cnfRoutes} /cnf routes (expected 1)`);
        if (l.routesGrowth !== 0) problems.push(`Express routes grew by ${l.routesGrowth}`);
        if (l.listenersGrowth > 0) problems.push(`listeners grew by ${l.listenersGrowth}`);
        if (final.buses > opts.evses) problems.push(`${final.buses} Modbus buses open`);
        if ((l.resourcesGrowth.TCPServerWrap ?? 0) > 0) problems.push('TCP servers leaked');
        if (Object.keys(report.cnf.unexpected).length) problems.push('good /cnf requests failed');
    } finally {
        running = false;
        await Promise.allSettled(tasks);
        await red?.stop();
        for (const a of agents) a.destroy();
        for (const l of links) await l.close();
        for (const s of sims) await s.close();
    }
    report.realSeconds = Math.round((Date.now() - wallStart) / 1000);
    // JSON has no Infinity: a phase never sampled outside a reaction window stays null.
    if (!report.worstMarginWithData.every((m) => m >= 0)) {
        problems.push('fuse margin below 0 with fresh grid data after the reaction window');
    }
    if (report.fuseViolationSamples) problems.push('fuse violated');
    report.ok =
        problems.length === 0 && report.cnf.badAccepted === 0 && report.cnf.partialChanges === 0;
    return report;
}
