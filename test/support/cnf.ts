// A test site for the /cnf API: a simulated Power Brain on loopback Modbus TCP (its EVSE and both
// S0 meters driven over Modbus), a simulated wallbox and grid meter (register views), and HTTP
// input devices for set_ajax_meter / set_ajax_evse.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CnfContext, type CnfContextOptions } from '../../lib/cnf/context';
import { handleCnf, type CnfRequest, type CnfResponse } from '../../lib/cnf/handle';
import { BusPool } from '../../lib/modbus/pool';
import { PowerBrainSim } from '../../lib/sim/powerbrain-sim';
import { Site } from '../../lib/site/site';

export const ADMIN_PASSWORD = '1234abcd';
export const SERIAL = 'fcf5-c46d-310c';
/** Cheap scrypt for tests that check many wrong passwords. */
export const TEST_SCRYPT = { N: 1024, r: 8, p: 1 };

export function fixture<T = unknown>(name: string): T {
    return JSON.parse(
        readFileSync(join(__dirname, '..', '..', '..', 'test', 'fixtures', 'cnf', name), 'utf8'),
    ) as T;
}

export async function startPowerBrain(): Promise<PowerBrainSim> {
    const sim = new PowerBrainSim({
        host: '127.0.0.1',
        port: 0,
        serial: SERIAL,
        plugged: false,
        meter2: { phases: 1 },
    });
    await sim.start();
    return sim;
}

/** The device table: E2, M1, M2 over Modbus; E1 and M4 simulated; E3 and M3 HTTP input. */
export function testDevices(sim: PowerBrainSim | null): Record<string, unknown>[] {
    const modbus = sim
        ? [
              {
                  dev_type: 'evse_powerbrain',
                  dev_id: 'E2',
                  name: 'Power Brain',
                  address: `127.0.0.1:${sim.ports.evse}`,
                  id: 1,
              },
              {
                  dev_type: 'meter_powerbrain',
                  dev_id: 'M1',
                  name: 'S0 meter 1',
                  address: `127.0.0.1:${sim.ports.meter1}`,
                  id: 2,
              },
              {
                  dev_type: 'meter_powerbrain',
                  dev_id: 'M2',
                  name: 'S0 meter 2',
                  address: `127.0.0.1:${sim.ports.meter2}`,
                  id: 3,
              },
          ]
        : [];
    return [
        { dev_type: 'evse_sim', dev_id: 'E1', name: 'Wallbox', max_charging_cur: 16000 },
        ...modbus,
        { dev_type: 'evse_ajax', dev_id: 'E3', name: 'HTTP wallbox' },
        { dev_type: 'meter_ajax', dev_id: 'M3', name: 'HTTP meter' },
        { dev_type: 'meter_sim', dev_id: 'M4', name: 'Grid', role: 3 },
    ];
}

export interface DirectSite {
    site: Site;
    ctx: CnfContext;
    pool: BusPool;
    call(req: Partial<CnfRequest> & { query: CnfRequest['query'] }): Promise<CnfResponse>;
    stop(): Promise<void>;
}

/** A Site and its /cnf context without Node-RED (for handleCnf tests). */
export function directSite(sim: PowerBrainSim | null, options: CnfContextOptions = {}): DirectSite {
    const pool = new BusPool({ timeoutMs: 300, connectTimeoutMs: 500 });
    const site = new Site({
        params: { title: 'Test site', cycle_ms: 200 },
        devices: testDevices(sim),
        pool,
    });
    const ctx = new CnfContext(site, { scrypt: TEST_SCRYPT, ...options });
    return {
        site,
        ctx,
        pool,
        call: (req) =>
            handleCnf({ method: 'GET', remoteAddress: '127.0.0.1', ...req } as CnfRequest, ctx),
        async stop() {
            await site.stop();
            await pool.close();
        },
    };
}

export const basic = (user: string, password: string): string =>
    'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
export const ADMIN = basic('admin', ADMIN_PASSWORD);

/** A fingerprint of everything a request could change. */
export function fingerprint(d: DirectSite): string {
    const c = d.ctx;
    return JSON.stringify({
        params: d.site.params,
        devices: d.site.devices,
        overrides: [...c.overrides],
        soft: [...c.softMeters],
        ajax: [...c.ajax],
        rfids: [...c.rfids],
        regs: [...c.registerWrites].map(([k, v]) => [k, [...v]]),
        users: c.users.list(),
        vars: c.variables.list(),
        license: c.license,
        diag: c.diag.until,
        pushed: ['E3', 'M3'].map((id) => d.site.manager.deviceState(id).sample),
    });
}

/** A /cnf answer as JSON: its status and its value. */
export interface JsonAnswer {
    status: number;
    value: unknown;
}

/**
 * A request of a command test: GET, or POST with `body` as JSON; admin credentials unless
 * `authorization` says otherwise (undefined: none).
 */
export async function jsonCall(
    d: DirectSite,
    query: string,
    body?: unknown,
    authorization: string | undefined = ADMIN,
): Promise<JsonAnswer> {
    const r = await d.call({
        method: body === undefined ? 'GET' : 'POST',
        query,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(authorization === undefined ? {} : { authorization }),
    });
    return { status: r.status, value: JSON.parse(r.body) as unknown };
}

/** An admin request to a context that must succeed: its value (the error names the answer). */
export async function adminCall(ctx: CnfContext, query: string, body?: unknown): Promise<unknown> {
    const r = await handleCnf(
        {
            method: body === undefined ? 'GET' : 'POST',
            query,
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            authorization: ADMIN,
            remoteAddress: '127.0.0.1',
        },
        ctx,
    );
    if (r.status !== 200) throw new Error(`${query}: ${r.status} ${r.body}`);
    return JSON.parse(r.body) as unknown;
}

/** An admin request that must succeed: its value (the assertion names the query and answer). */
export async function adminOk(d: DirectSite, query: string, body?: unknown): Promise<unknown> {
    const r = await jsonCall(d, query, body);
    if (r.status !== 200) {
        throw new Error(`${query}: ${r.status} ${JSON.stringify(r.value)}`);
    }
    return r.value;
}

/** The site of command tests: the admin password set (hashed) and one cycle run. */
export async function adminSite(options: CnfContextOptions = {}): Promise<DirectSite> {
    const d = directSite(null, { adminPassword: ADMIN_PASSWORD, ...options });
    await d.ctx.auth.password.ready();
    await d.site.manager.runCycle();
    return d;
}
