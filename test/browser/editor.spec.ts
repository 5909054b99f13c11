// Node-RED's own editor in headless Chromium against a real Node-RED child process: the palette
// shows every node, each edit dialog opens and marks a bad value, every example imports and
// deploys without errors, a deploy made through the manager's dialog keeps the users and their
// cards, and every dialog is translated in English and German.
//
// Screenshots go to a temporary directory that is removed afterwards; set
// EVCM_EDITOR_SCREENSHOTS=<dir> to keep them there.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePortBlock } from '../../lib/sim/powerbrain-sim';
import { RegisterSim } from '../../lib/sim/register-sim';
import { ACME, ACME_BOX } from '../support/acme-box';
import { demoFlow, type DemoNode } from '../support/demo';
import { repoRoot, startNodeRed, type NodeRedProcess } from '../support/node-red-process';

// The editor's global in the page (the callbacks below run there, not in Node).
declare const RED: any; // eslint-disable-line @typescript-eslint/no-explicit-any

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
];
const OURS = Object.keys(
    (
        JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
            'node-red': { nodes: Record<string, string> };
        }
    )['node-red'].nodes,
);
/** The editor's flow nodes of the package (evcm-manager is a config node). */
const FLOW_NODES = OURS.filter((t) => t !== 'evcm-manager');
/** A bad value per flow-node type: the field and what to type into it. */
const BAD: Record<string, [string, string]> = {
    'evcm-meter-in': ['dev_id', 'E1'],
    'evcm-evse-in': ['dev_id', 'M1'],
    'evcm-modbus-read': ['register', 'abc'],
    'evcm-modbus-write': ['register', 'all'],
    'evcm-powerbrain-sim': ['port', '80'],
    'evcm-status': ['manager', ''],
    'evcm-override': ['flags', 'X'],
    'evcm-rfid': ['dev_id', 'M1'],
    'evcm-cnf': ['port', '70000'],
    'evcm-mqtt': ['prefix', 'cfos_mqtt/#'],
    'evcm-dashboard': ['page_size', '0'],
};
/** A catalog key shown instead of its text, with or without the module's namespace. */
const RAW_KEY = /evcm-[a-z-]+\.[a-z]|@evcm\/node-red-charging-manager/;
/** The whole raw keys in a text, for the message. */
const RAW_KEYS = /(?:@evcm\/node-red-charging-manager\/?[\w-]*:?)?evcm-[a-z-]+\.[a-z][\w.-]*/g;
const MANAGER_ID = 'evcm-demo-manager';
const ADMIN_PASSWORD = 'demo';

type Json = Record<string, unknown>;
interface DemoUser {
    id: string;
    name?: string;
    dev_ids?: string[];
    rfids?: { id: string }[];
}

let shots = '';

async function openEditor(browser: Browser, red: NodeRedProcess, locale = 'en-US') {
    const context = await browser.newContext({ locale, viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    // What the editor says about the package's node definitions as it loads them.
    const said: string[] = [];
    page.on('console', (m) => {
        if (/evcm/.test(m.text())) said.push(`${m.type()}: ${m.text()}`);
    });
    await page.goto(red.url);
    await page.waitForSelector('#red-ui-palette .red-ui-palette-node', { timeout: 30_000 });
    await page.waitForFunction(
        () => document.querySelector('#red-ui-workspace-chart svg') !== null,
    );
    return { context, page, said };
}

/** Presses Deploy (and confirms the warning about unused config nodes, if any). */
async function deploy(page: Page): Promise<void> {
    await page.click('#red-ui-header-button-deploy');
    const confirm = page.locator('#node-dialog-confirm-deploy-deploy');
    await confirm.waitFor({ timeout: 1500 }).then(
        () => confirm.click(),
        () => undefined,
    );
    await page
        .waitForSelector('.red-ui-notification:has-text("Successfully deployed")', {
            timeout: 15_000,
        })
        .catch(async (e: unknown) => {
            await page.screenshot({ path: join(shots, 'deploy-failed.png') });
            throw e;
        });
}

/** Opens the demo manager's dialog the way a user does: double-click in the config sidebar. */
async function openManagerDialog(page: Page): Promise<void> {
    await page.evaluate(() => RED.sidebar.show('config'));
    await page.dblclick('.red-ui-palette-node-config:has-text("Demo site")');
    await page.waitForSelector('#node-config-input-devices-list .evcm-dev-row');
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000) {
    const deadline = Date.now() + ms;
    for (;;) {
        const value = await probe();
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
        await new Promise((r) => setTimeout(r, 250));
    }
}

async function cnf(
    red: NodeRedProcess,
    query: string,
    options: { password?: string; body?: unknown } = {},
): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = {};
    if (options.password !== undefined) {
        headers.Authorization = `Basic ${Buffer.from(`admin:${options.password}`).toString('base64')}`;
    }
    const res = await fetch(`${red.url}cnf?${query}`, {
        method: options.body === undefined ? 'GET' : 'POST',
        headers,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    return { status: res.status, body: await res.json() };
}

async function wallbox(red: NodeRedProcess, devId: string): Promise<Json> {
    const info = (await cnf(red, 'cmd=get_dev_info')).body as { devices: Json[] };
    const found = info.devices.find((d) => d.dev_id === devId);
    assert.ok(found, `${devId} in get_dev_info`);
    return found;
}

/** Users as a comparable list: id, name, wallboxes and card ids, by id. */
function cardsOf(users: DemoUser[]) {
    return users
        .map((u) => ({
            id: u.id,
            name: u.name ?? '',
            dev_ids: u.dev_ids ?? [],
            cards: (u.rfids ?? []).map((r) => r.id),
        }))
        .sort((a, b) => a.id.localeCompare(b.id));
}

async function users(red: NodeRedProcess): Promise<DemoUser[]> {
    const res = await cnf(red, 'cmd=get_users', { password: ADMIN_PASSWORD });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as DemoUser[];
}

/** The manager as Node-RED serves the deployed flow (GET /flows) and as flows.json holds it. */
async function deployedManager(red: NodeRedProcess): Promise<{ served: Json; file: Json }> {
    const res = await fetch(`${red.url}flows`, { headers: { Accept: 'application/json' } });
    const served = (await res.json()) as Json[];
    const file = JSON.parse(readFileSync(join(red.userDir, 'flows.json'), 'utf8')) as Json[];
    const pick = (flow: Json[]) => flow.find((n) => n.id === MANAGER_ID)!;
    return { served: pick(served), file: pick(file) };
}

/** The visitors' wallbox (E3) waits for a card and gets no current while it waits. */
async function e3WaitsForCard(red: NodeRedProcess): Promise<void> {
    await until('E3 waits for a card', async () =>
        (await wallbox(red, 'E3')).needs_auth === true ? true : undefined,
    );
    // Several cycles (the demo's is 1 s): no current is offered and the car draws none.
    for (let i = 0; i < 3; i++) {
        const e3 = await wallbox(red, 'E3');
        assert.equal(e3.needs_auth, true);
        assert.equal((e3.evse as Json).current, 0, 'no current offered without the card');
        assert.deepEqual([e3.current_l1, e3.current_l2, e3.current_l3], [0, 0, 0]);
        await new Promise((r) => setTimeout(r, 1000));
    }
}

/** The demo's manager (flow as written in demo/flows.json, ports moved). */
const managerOf = (flow: DemoNode[]) => flow.find((n) => n.id === MANAGER_ID)!;

/** The demo flow as written before the user table was called `userTable`. */
function withOldUserTableName(flow: DemoNode[]): DemoNode[] {
    return flow.map((n) => {
        if (n.id !== MANAGER_ID) return n;
        const { userTable, ...rest } = n;
        return { ...rest, users: userTable };
    });
}

describe('editor in a browser', function () {
    this.timeout(120_000);
    let browser: Browser | undefined;
    let ownShots = false;

    before(async function () {
        if (!existsSync(CHROMIUM)) {
            if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing in CI`);
            console.log(
                `      SKIPPED: ${CHROMIUM} not found (install the Debian chromium package)`,
            );
            this.skip();
        }
        const keep = process.env.EVCM_EDITOR_SCREENSHOTS;
        ownShots = !keep;
        shots = keep ?? mkdtempSync(join(tmpdir(), 'evcm-editor-'));
        mkdirSync(shots, { recursive: true });
        browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    });

    after(async () => {
        await browser?.close();
        if (ownShots) rmSync(shots, { recursive: true, force: true });
    });

    describe('the demo flow', () => {
        let red: NodeRedProcess | undefined;
        let page: Page;
        let said: string[];

        before(async () => {
            red = await startNodeRed((await demoFlow()).flow);
            ({ page, said } = await openEditor(browser!, red));
        });
        after(async () => {
            await page?.context().close();
            await red?.stop();
        });

        it('the palette shows every node; the manager is a config node', async () => {
            for (const type of OURS) {
                // config nodes (the manager, the OCPP central system) are not in the palette
                if (type === 'evcm-manager' || type === 'evcm-cnf' || type === 'evcm-ocpp')
                    continue;
                const count = await page
                    .locator(`#red-ui-palette .red-ui-palette-node[data-palette-type="${type}"]`)
                    .count();
                assert.equal(count, 1, `${type} in the palette`);
            }
            const category = await page.evaluate(
                () => RED.nodes.getType('evcm-manager').category as string,
            );
            assert.equal(category, 'config');
        });

        it('the editor registers every node without a word about them', () => {
            // e.g. "registerType: evcm-manager: the property "users" is internal"
            assert.deepEqual(said, []);
        });

        it('each edit dialog opens and marks a bad value invalid', async () => {
            for (const [type, [field, bad]] of Object.entries(BAD)) {
                const id = `bt-${type}`;
                await page.evaluate(
                    ([t, i]) => {
                        RED.view.importNodes(
                            [
                                {
                                    id: i,
                                    type: t,
                                    x: 200,
                                    y: 500,
                                    z: RED.workspaces.active(),
                                    wires: [],
                                },
                            ],
                            { touchImport: true },
                        );
                        RED.editor.edit(RED.nodes.node(i));
                    },
                    [type, id],
                );
                const input = page.locator(`#node-input-${field}`);
                await input.waitFor({ state: 'attached', timeout: 10_000 });
                if (field !== 'manager') {
                    await input.fill(bad);
                    await input.dispatchEvent('change');
                }
                await page.waitForSelector(`#node-input-${field}.input-error`, {
                    state: 'attached',
                    timeout: 5000,
                });
                await page.click('#node-dialog-cancel');
                await page.waitForSelector('#node-dialog-cancel', { state: 'detached' });
                await page.evaluate((i) => {
                    RED.nodes.remove(i);
                    RED.view.redraw(true);
                }, id);
            }
        });

        it('the manager dialog shows the device table and marks bad devices as you type', async () => {
            await page.evaluate(() =>
                RED.editor.editConfig('', 'evcm-manager', 'evcm-demo-manager'),
            );
            await page.waitForSelector('#node-config-input-devices-list .evcm-dev-row');
            const rows = page.locator('#node-config-input-devices-list .evcm-dev-row');
            assert.equal(await rows.count(), 6);
            const first = rows.first();
            await first.locator('.evcm-dev-id').fill('X1');
            await page.waitForSelector('.evcm-dev-row .evcm-dev-id.input-error');
            await first.locator('.evcm-dev-id').fill('E1');
            await first.locator('[data-field="min_charging_cur"]').fill('5000');
            await page.waitForSelector('[data-field="min_charging_cur"].input-error');
            await first.locator('[data-field="min_charging_cur"]').fill('6000');
            await first.locator('[data-field="max_charging_cur"]').fill('5999');
            await page.waitForSelector('[data-field="max_charging_cur"].input-error');
            await first.locator('[data-field="max_charging_cur"]').fill('16000');
            // A new Power Brain wallbox shows its address; a bad address is marked.
            await page.click(
                '#node-config-input-devices-list + .red-ui-editableList-addButton, .red-ui-editableList-addButton',
            );
            const added = rows.last();
            assert.equal(await added.locator('.evcm-dev-id').inputValue(), 'E5');
            await added.locator('[data-field="address"]').fill('not an address!');
            await page.waitForSelector('[data-field="address"].input-error');
            // Switching the type shows that type's fields only.
            await added.locator('.evcm-dev-type').selectOption('meter_sim');
            assert.equal(await added.locator('.evcm-dev-id').inputValue(), 'M3');
            assert.equal(await added.locator('[data-field="address"]').count(), 0);
            assert.equal(await added.locator('[data-field="sim_pv_peak_w"]').count(), 1);
            await page.locator('#node-config-input-cycle_ms').fill('50');
            await page.locator('#node-config-input-cycle_ms').dispatchEvent('change');
            await page.waitForSelector('#node-config-input-cycle_ms.input-error', {
                state: 'attached',
            });
            await page.click('#node-config-dialog-cancel');
            await page.waitForSelector('#node-config-dialog-cancel', { state: 'detached' });
        });

        it('the device table saves back into the devices JSON, keeping fields it does not show', async () => {
            await page.evaluate(() =>
                RED.editor.editConfig('', 'evcm-manager', 'evcm-demo-manager'),
            );
            const first = page.locator('#node-config-input-devices-list .evcm-dev-row').first();
            await first.locator('.evcm-dev-name').fill('Garage L');
            await first.locator('[data-field="max_charging_cur"]').fill('20000');
            await page.click('#node-config-dialog-ok');
            await page.waitForSelector('#node-config-dialog-ok', { state: 'detached' });
            const devices = await page.evaluate(
                () => JSON.parse(RED.nodes.node('evcm-demo-manager').devices as string) as Json[],
            );
            assert.equal(devices.length, 6);
            assert.equal(devices[0]!.name, 'Garage L');
            assert.equal(devices[0]!.max_charging_cur, 20000);
            assert.deepEqual(
                devices[1]!.charging_rules,
                [
                    { time: 1320, dur: 480, mode: 0, current: 16000 },
                    { mode: 0, current: 10000 },
                ],
                'a field the table does not show is kept',
            );
            assert.equal(devices[3]!.dev_type, 'evse_ocpp');
            assert.equal(devices[3]!.address, 'CP-DEMO', 'the charge point identity is kept');
            assert.equal(devices[4]!.dev_type, 'meter_sim');
            assert.equal(devices[4]!.role, 3);
        });

        it('every example imports from the package and deploys without errors', async () => {
            const files = readdirSync(join(repoRoot, 'examples')).filter((f) =>
                f.endsWith('.json'),
            );
            const port = await freePortBlock(3); // a simulator serves its S0 meters on the next two
            for (const file of files) {
                const url = `${red!.url}library/examples/flows/@evcm/node-red-charging-manager/${encodeURIComponent(file.replace(/\.json$/, ''))}`;
                const text = await page.evaluate(async (u) => (await fetch(u)).text(), url);
                const flow = JSON.parse(
                    text
                        .replace(/4701/g, String(port))
                        .replace(/4702/g, String(port + 1))
                        .replace(/4703/g, String(port + 2)),
                ) as unknown[];
                assert.ok(Array.isArray(flow) && flow.length > 0, `${file} served`);
                await page.evaluate((f) => {
                    RED.view.importNodes(f, { addFlow: true, touchImport: true });
                }, flow);
            }
            const before = red!.log().length;
            await page.evaluate(() => RED.nodes.dirty(true));
            await deploy(page);
            await new Promise((r) => setTimeout(r, 3000));
            const log = red!.log().slice(before);
            const errors = log.split('\n').filter((l) => /\[error\]/.test(l));
            assert.deepEqual(errors, [], log);
            const invalid = await page.evaluate(() => {
                const bad: string[] = [];
                RED.nodes.eachNode((n: { valid: boolean; type: string; id: string }) => {
                    if (!n.valid) bad.push(`${n.type} ${n.id}`);
                });
                RED.nodes.eachConfig((n: { valid: boolean; type: string; id: string }) => {
                    if (n.valid === false) bad.push(`${n.type} ${n.id}`);
                });
                return bad;
            });
            assert.deepEqual(invalid, []);
        });

        it('saves a screenshot of the demo flow', async () => {
            await page.evaluate(() => RED.workspaces.show('evcm-demo-tab'));
            await new Promise((r) => setTimeout(r, 1500));
            const file = join(shots, 'demo-flow.png');
            await page.screenshot({ path: file });
            assert.ok(existsSync(file));
        });
    });

    describe('a user device definition from the editor', () => {
        let red: NodeRedProcess | undefined;
        let page: Page | undefined;
        let sim: RegisterSim | undefined;
        after(async () => {
            await page?.context().close();
            await red?.stop();
            await sim?.close();
        });

        it('is checked in the dialog naming the field, offered in the device table, deployed and used', async () => {
            sim = new RegisterSim(ACME_BOX);
            const port = await sim.listen();
            red = await startNodeRed((await demoFlow()).flow, {
                credentials: { [MANAGER_ID]: { adminPassword: ADMIN_PASSWORD } },
            });
            ({ page } = await openEditor(browser!, red));
            await openManagerDialog(page);
            const defs = page.locator('#node-config-input-device_defs');
            const bad = { ...ACME, control: { current: { address: -3 } } };
            await defs.fill(JSON.stringify([bad]));
            const check = page.locator('#evcm-device-defs-check');
            await check.waitFor({ state: 'visible' });
            assert.match(
                (await check.textContent()) ?? '',
                /device_defs\[0\]\.control\.current\.address/,
            );
            await defs.fill(JSON.stringify([ACME]));
            await check.waitFor({ state: 'hidden' });
            await page.click('.red-ui-editableList-addButton');
            const added = page.locator('#node-config-input-devices-list .evcm-dev-row').last();
            await added.locator('.evcm-dev-type').selectOption('evse_user_acme');
            const devId = await added.locator('.evcm-dev-id').inputValue();
            await added.locator('[data-field="address"]').fill(`127.0.0.1:${port}`);
            assert.equal(await added.locator('.input-error').count(), 0);
            await page.click('#node-config-dialog-ok');
            await page.waitForSelector('#node-config-dialog-ok', { state: 'detached' });
            await deploy(page);
            const r = red;
            const e = await until('the new wallbox is read', async () => {
                const found = (await wallbox(r, devId)) as Json;
                return found.state === 3 ? found : undefined;
            });
            assert.equal(e.dev_type, 'evse_user_acme');
            assert.equal(e.model, 'AB11,,,A-77');
            assert.equal(
                ((await cnf(r, 'cmd=get_dev_types')).body as Json).evse_user_acme,
                'Acme Box 11',
            );
            await until('the wallbox is written', async () =>
                sim!.writes.some((w) => w.address === 30) ? true : undefined,
            );
        });
    });

    describe('a deploy from the editor keeps the users', () => {
        let red: NodeRedProcess | undefined;
        let page: Page | undefined;

        async function start(flow: DemoNode[]): Promise<Page> {
            red = await startNodeRed(flow, {
                credentials: { [MANAGER_ID]: { adminPassword: ADMIN_PASSWORD } },
            });
            ({ page } = await openEditor(browser!, red));
            return page;
        }
        afterEach(async () => {
            await page?.context().close();
            await red?.stop();
            page = undefined;
            red = undefined;
        });

        it('changing only "Min. charging pause" in the manager dialog and deploying keeps every user, card and the card check', async () => {
            const { flow } = await demoFlow();
            const written = managerOf(flow);
            const demoUsers = JSON.parse(String(written.userTable)) as DemoUser[];
            assert.ok(demoUsers.some((u) => u.dev_ids?.includes('E3') && u.rfids?.length));
            const page = await start(flow);
            const r = red!;
            await e3WaitsForCard(r);
            assert.deepEqual(cardsOf(await users(r)), cardsOf(demoUsers));
            // A change made through the API, which a deploy that leaves E1 alone must keep.
            const setDevice = { devices: [{ dev_id: 'E1', max_charging_cur: 10000 }] };
            assert.equal(
                (await cnf(r, 'cmd=set_device', { password: ADMIN_PASSWORD, body: setDevice }))
                    .body,
                'ok',
            );

            const pause = Number(written.min_pause_time) + 7;
            await openManagerDialog(page);
            await page.fill('#node-config-input-min_pause_time', String(pause));
            await page.click('#node-config-dialog-ok');
            await page.waitForSelector('#node-config-dialog-ok', { state: 'detached' });
            await deploy(page);
            await until('the deployed pause is in force', async () =>
                (((await cnf(r, 'cmd=get_params')).body as Json).min_pause_time as number) === pause
                    ? true
                    : undefined,
            );

            // The users and their cards, over /cnf; and the API's change to E1.
            assert.deepEqual(cardsOf(await users(r)), cardsOf(demoUsers));
            assert.equal((await wallbox(r, 'E1')).max_charging_cur, 10000);
            // The deployed flow still carries them; only the pause changed.
            const { served, file } = await deployedManager(r);
            for (const manager of [served, file]) {
                assert.deepEqual(JSON.parse(String(manager.userTable)), demoUsers);
                assert.equal(manager.users, undefined);
                assert.equal(String(manager.min_pause_time), String(pause));
                for (const key of ['max_total_current', 'reserve_current', 'cycle_ms']) {
                    assert.equal(manager[key], written[key], key);
                }
                assert.deepEqual(
                    JSON.parse(String(manager.devices)),
                    JSON.parse(String(written.devices)),
                );
            }
            // The card check: E3 still waits and stays without current; the card opens it.
            await e3WaitsForCard(r);
            const card = demoUsers.find((u) => u.dev_ids?.includes('E3'))!.rfids![0]!.id;
            const entered = await cnf(r, `cmd=enter_rfid&rfid=${card}&dev_id=E3`);
            assert.equal(entered.body, 'ok');
            await until('the card is accepted', async () =>
                (await wallbox(r, 'E3')).needs_auth === false ? true : undefined,
            );
        });

        it('a flow with its users under the old name `users` keeps them, and what the API changed', async () => {
            const { flow } = await demoFlow();
            const demoUsers = JSON.parse(String(managerOf(flow).userTable)) as DemoUser[];
            const anna = demoUsers.find((u) => u.dev_ids?.includes('E3'))!;
            const page = await start(withOldUserTableName(flow));
            const r = red!;
            await e3WaitsForCard(r);
            assert.deepEqual(cardsOf(await users(r)), cardsOf(demoUsers));
            // Changes made through the API: a second card for Anna, and a new user.
            const annaApi = { ...anna, rfids: [...anna.rfids!, { id: '4712', name: 'spare' }] };
            const bert = { id: '31415926', name: 'Bert', dev_ids: ['E3'], rfids: [{ id: '2718' }] };
            for (const body of [annaApi, bert]) {
                const res = await cnf(r, 'cmd=set_user', { password: ADMIN_PASSWORD, body });
                assert.equal(res.body, 'ok');
            }
            const expected = cardsOf([annaApi, bert, ...demoUsers.filter((u) => u !== anna)]);
            assert.deepEqual(cardsOf(await users(r)), expected);

            // The editor took the old table over as it loaded the flow: what a deploy sends
            // carries it, whether or not the manager's dialog is opened.
            const sent = await page.evaluate(
                (id) => (RED.nodes.createCompleteNodeSet() as Json[]).find((n) => n.id === id)!,
                MANAGER_ID,
            );
            assert.equal(typeof sent.userTable, 'string', 'a deploy sends the user table');
            assert.deepEqual(JSON.parse(String(sent.userTable)), demoUsers);
            await openManagerDialog(page);
            const shown = await page.inputValue('#node-config-input-userTable');
            assert.deepEqual(JSON.parse(shown), demoUsers, 'the dialog shows the old table');
            const pause = Number(managerOf(flow).min_pause_time) + 3;
            await page.fill('#node-config-input-min_pause_time', String(pause));
            await page.click('#node-config-dialog-ok');
            await page.waitForSelector('#node-config-dialog-ok', { state: 'detached' });
            await deploy(page);
            await until('the deployed pause is in force', async () =>
                (((await cnf(r, 'cmd=get_params')).body as Json).min_pause_time as number) === pause
                    ? true
                    : undefined,
            );

            assert.deepEqual(cardsOf(await users(r)), expected);
            const { served, file } = await deployedManager(r);
            for (const manager of [served, file]) {
                assert.deepEqual(JSON.parse(String(manager.userTable)), demoUsers);
                assert.equal(manager.users, undefined, 'saved under the new name');
            }
            await e3WaitsForCard(r);
            assert.equal((await cnf(r, 'cmd=enter_rfid&rfid=4712&dev_id=E3')).body, 'ok');
            await until('the card added through the API is accepted', async () =>
                (await wallbox(r, 'E3')).needs_auth === false ? true : undefined,
            );
        });
    });

    describe('every dialog is translated', () => {
        let red: NodeRedProcess | undefined;

        before(async () => {
            red = await startNodeRed((await demoFlow()).flow);
        });
        after(async () => {
            await red?.stop();
        });

        for (const [locale, lang] of [
            ['en-US', 'en-US'],
            ['de-DE', 'de'],
        ] as const) {
            it(`in ${locale}: no dialog shows a catalog key, and each shows the ${lang} catalog`, async () => {
                const catalog = catalogOf(lang);
                const dir = join(shots, lang);
                mkdirSync(dir, { recursive: true });
                const { context, page } = await openEditor(browser!, red!, locale);
                try {
                    await page.setViewportSize({ width: 1400, height: 1400 });
                    const checked: string[] = [];
                    const check = async (name: string) => {
                        await new Promise((r) => setTimeout(r, 300));
                        await page.evaluate(() => $('.red-ui-notification').remove());
                        await page.screenshot({ path: join(dir, `${name}.png`) });
                        const seen = await dialogText(page);
                        assertTranslated(name, seen, catalog);
                        checked.push(name);
                    };

                    // Every flow node of the package.
                    for (const type of FLOW_NODES) {
                        await page.evaluate((t) => {
                            const z = RED.workspaces.active();
                            RED.view.importNodes(
                                [{ id: `i18n-${t}`, type: t, x: 300, y: 600, z, wires: [] }],
                                // as if dragged from the palette: with the defaults filled in
                                { touchImport: true, applyNodeDefaults: true },
                            );
                            RED.editor.edit(RED.nodes.node(`i18n-${t}`));
                        }, type);
                        await page.waitForSelector('#node-dialog-cancel');
                        await check(type);
                        if (type === 'evcm-cnf') {
                            // A new manager from the cnf node's dialog: a config-node dialog
                            // with one device row of every type.
                            await page.selectOption('#node-input-manager', '_ADD_');
                            await page.click('#node-input-btn-manager-add');
                            await page.waitForSelector('#node-config-input-devices-list', {
                                state: 'attached',
                            });
                            await addDeviceRows(page);
                            assert.ok(
                                (
                                    await page.$$eval('.evcm-dev-type', (s) =>
                                        s.map((e) => (e as HTMLSelectElement).value),
                                    )
                                ).length >= 10,
                            );
                            await check('evcm-manager-new');
                            await page.click('#node-config-dialog-cancel');
                            await page.waitForSelector('#node-config-dialog-cancel', {
                                state: 'detached',
                            });
                        }
                        await page.click('#node-dialog-cancel');
                        await page.waitForSelector('#node-dialog-cancel', { state: 'detached' });
                        await page.evaluate((t) => {
                            RED.nodes.remove(`i18n-${t}`);
                            RED.view.redraw(true);
                        }, type);
                    }

                    // The demo's manager, opened from the config sidebar, with its four rows.
                    await openManagerDialog(page);
                    await check('evcm-manager');
                    if (lang === 'de') {
                        await page.screenshot({ path: join(dir, 'evcm-manager-top.png') });
                    }
                    await page.click('#node-config-dialog-cancel');
                    await page.waitForSelector('#node-config-dialog-cancel', {
                        state: 'detached',
                    });
                    assert.deepEqual(checked.sort(), [...OURS, 'evcm-manager-new'].sort());

                    // Messages the validators give (shown when a value is not valid).
                    const messages = await validatorMessages(page);
                    assert.ok(messages.length >= 15, `${messages.length} validator messages`);
                    for (const m of messages) {
                        assert.doesNotMatch(m.text, RAW_KEY, `${m.type}.${m.property}`);
                        if (m.nodeRed) continue; // RED.validators.number() and the like
                        assert.ok(
                            [...catalog.values()].some((v) => v.length > 3 && m.text.includes(v)),
                            `${m.type}.${m.property}: "${m.text}" is a ${lang} catalog message`,
                        );
                    }

                    // The help in the sidebar is this language's help file.
                    await page.evaluate(() => RED.sidebar.help.show('evcm-manager'));
                    await new Promise((r) => setTimeout(r, 500));
                    await page.screenshot({ path: join(dir, 'evcm-manager-help.png') });
                    for (const type of OURS) {
                        const file = readFileSync(
                            join(repoRoot, 'nodes', 'locales', lang, `${type}.html`),
                            'utf8',
                        );
                        const same = await page.evaluate(
                            ([t, f]) => {
                                const text = (html: string) =>
                                    $('<div>').html(html).text().replace(/\s+/g, ' ').trim();
                                const inner = $(f).filter('script').html() ?? '';
                                return text(RED.nodes.getNodeHelp(t) as string) === text(inner);
                            },
                            [type, file] as const,
                        );
                        assert.ok(
                            same,
                            `the help of ${type} is nodes/locales/${lang}/${type}.html`,
                        );
                    }
                } finally {
                    await context.close();
                }
            });
        }
    });
});

/** Every message of the package's catalogs for one language, by key (`evcm-manager.label.name`). */
function catalogOf(lang: string): Map<string, string> {
    const out = new Map<string, string>();
    const walk = (prefix: string, value: unknown) => {
        if (typeof value === 'string') out.set(prefix, value);
        else if (value && typeof value === 'object') {
            for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
        }
    };
    for (const type of OURS) {
        walk(
            '',
            JSON.parse(
                readFileSync(join(repoRoot, 'nodes', 'locales', lang, `${type}.json`), 'utf8'),
            ),
        );
    }
    return out;
}

interface DialogText {
    /** All text, attribute texts (placeholder, title) included, of the open dialog. */
    text: string;
    /** Elements localised from data-i18n: the key, the target and what they show. */
    localised: { key: string; target: string; shown: string }[];
    /** Device rows: each label with the field or value it names. */
    deviceLabels: { key: string; shown: string }[];
}

/** What the topmost edit dialog shows. */
async function dialogText(page: Page): Promise<DialogText> {
    return page.evaluate(() => {
        const trays = document.querySelectorAll('.red-ui-tray');
        const tray = trays[trays.length - 1]!;
        const parts: string[] = [];
        const walker = document.createTreeWalker(tray, NodeFilter.SHOW_TEXT);
        for (let t = walker.nextNode(); t; t = walker.nextNode()) parts.push(t.nodeValue ?? '');
        tray.querySelectorAll('[placeholder], [title]').forEach((e) => {
            parts.push(e.getAttribute('placeholder') ?? '', e.getAttribute('title') ?? '');
        });
        const localised: DialogText['localised'] = [];
        tray.querySelectorAll('[data-i18n]').forEach((e) => {
            for (const part of (e.getAttribute('data-i18n') ?? '').split(';')) {
                const m = /^(?:\[(\w+)\])?(?:.*:)?(evcm-[^:]+)$/.exec(part);
                if (!m) continue;
                const target = m[1] ?? 'text';
                const shown =
                    target === 'text' || target === 'html'
                        ? (e.textContent ?? '')
                        : (e.getAttribute(target) ?? '');
                localised.push({ key: m[2]!, target, shown });
            }
        });
        const deviceLabels: DialogText['deviceLabels'] = [];
        tray.querySelectorAll('.evcm-dev-row').forEach((row) => {
            row.querySelectorAll('.evcm-dev-type option').forEach((o) => {
                const type = (o as HTMLOptionElement).value;
                const shown = o.textContent ?? '';
                // A device definition's product name is shown as it is, with its type.
                if (shown.endsWith(` (${type})`) && shown.length > type.length + 3) return;
                deviceLabels.push({ key: `types.${type}`, shown });
            });
            row.querySelectorAll('.evcm-dev-field').forEach((f) => {
                const input = f.querySelector('[data-field]')!;
                const field = input.getAttribute('data-field')!;
                deviceLabels.push({
                    key: `device.${field}`,
                    shown: f.firstElementChild!.textContent ?? '',
                });
                if (field === 'role') {
                    input.querySelectorAll('option').forEach((o) =>
                        deviceLabels.push({
                            key: `roles.${o.value}`,
                            shown: o.textContent ?? '',
                        }),
                    );
                }
            });
            deviceLabels.push({
                key: 'device.name',
                shown: row.querySelector('.evcm-dev-name')!.getAttribute('placeholder') ?? '',
            });
            deviceLabels.push({
                key: 'device.device_enabled',
                shown: row.querySelector('.evcm-dev-enabled')!.parentElement!.textContent ?? '',
            });
        });
        const add = tray.querySelector('.red-ui-editableList-addButton');
        if (add) deviceLabels.push({ key: 'device.add', shown: add.textContent ?? '' });
        return { text: parts.join('\n'), localised, deviceLabels };
    });
}

function assertTranslated(name: string, seen: DialogText, catalog: Map<string, string>): void {
    assert.ok(
        !RAW_KEY.test(seen.text),
        `${name}: catalog keys shown instead of text: ${[...new Set(seen.text.match(RAW_KEYS))].join(', ')}`,
    );
    assert.ok(seen.localised.length > 0, `${name}: labels from the catalog`);
    const strip = (s: string) =>
        s
            .replace(/<[^>]+>/g, '')
            .replace(/\s+/g, ' ')
            .trim();
    for (const { key, target, shown } of seen.localised) {
        const expected = catalog.get(key);
        assert.ok(expected !== undefined, `${name}: ${key} is in the catalog`);
        assert.equal(strip(shown), strip(expected), `${name}: ${target} of ${key}`);
    }
    for (const { key, shown } of seen.deviceLabels) {
        const expected = catalog.get(`evcm-manager.${key}`);
        assert.ok(expected !== undefined, `${name}: evcm-manager.${key} is in the catalog`);
        assert.equal(strip(shown), strip(expected), `${name}: device table ${key}`);
    }
}

/** Adds one row of every device type to the open manager dialog. */
async function addDeviceRows(page: Page): Promise<void> {
    const add = page.locator('.red-ui-editableList-addButton').last();
    await add.click();
    const rows = page.locator('#node-config-input-devices-list .evcm-dev-row');
    const values = await rows
        .last()
        .locator('.evcm-dev-type option')
        .evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    for (let i = 1; i < values.length; i++) await add.click();
    const count = await rows.count();
    for (let i = 0; i < values.length; i++) {
        await rows
            .nth(count - values.length + i)
            .locator('.evcm-dev-type')
            .selectOption(values[i]!);
    }
}

/** Every message the package's validators give for values that are not valid. */
async function validatorMessages(
    page: Page,
): Promise<{ type: string; property: string; text: string; nodeRed: boolean }[]> {
    return page.evaluate((types) => {
        // Node-RED's own validator messages, in the editor's language.
        const nodeRed = Object.values(
            (window as unknown as { i18next: { t(k: string, o: object): object } }).i18next.t(
                'editor:validator.errors',
                { returnObjects: true },
            ),
        );
        const bad = ['#', 'X!', '99999999', '-1', '{', '[{"dev_type":"evse_sim","dev_id":"X1"}]'];
        const out: { type: string; property: string; text: string; nodeRed: boolean }[] = [];
        for (const type of types) {
            const def = RED.nodes.getType(type);
            const node = { type, _def: def, _: def._ };
            for (const [property, spec] of Object.entries(
                def.defaults as Record<string, { validate?: (v: unknown, o: object) => unknown }>,
            )) {
                if (!spec.validate) continue;
                for (const value of bad) {
                    const result = spec.validate.call(node, value, {});
                    if (typeof result !== 'string') continue;
                    out.push({ type, property, text: result, nodeRed: nodeRed.includes(result) });
                }
            }
        }
        return out;
    }, OURS);
}
