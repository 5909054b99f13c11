// Node-RED's own editor in headless Chromium: the palette shows every node, each edit dialog
// opens and marks a bad value, every example imports and deploys without errors, and a
// screenshot of the demo flow is saved.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePortBlock } from '../../lib/sim/powerbrain-sim';
import { demoFlow } from '../support/demo';
import { repoRoot, startNodeRed, type NodeRedProcess } from '../support/node-red-process';

const CHROMIUM = '/usr/bin/chromium';
const OURS = Object.keys(
    (
        JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
            'node-red': { nodes: Record<string, string> };
        }
    )['node-red'].nodes,
);
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
};

describe('editor in a browser', function () {
    this.timeout(90_000);
    let red: NodeRedProcess | undefined;
    let browser: Browser | undefined;
    let page: Page;

    before(async function () {
        if (!existsSync(CHROMIUM)) {
            if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing in CI`);
            console.log(
                `      SKIPPED: ${CHROMIUM} not found (install the Debian chromium package)`,
            );
            this.skip();
        }
        red = await startNodeRed((await demoFlow()).flow);
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            args: [
                '--headless',
                '--no-sandbox',
                '--disable-gpu',
                '--disable-quic',
                '--no-first-run',
                '--disable-background-networking',
                '--disable-component-update',
                '--disable-sync',
            ],
        });
        page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        await page.goto(red.url);
        await page.waitForSelector('#red-ui-palette .red-ui-palette-node', { timeout: 30_000 });
        await page.waitForFunction(
            () => document.querySelector('#red-ui-workspace-chart svg') !== null,
        );
    });

    after(async () => {
        await browser?.close();
        await red?.stop();
    });

    it('the palette shows every node; the manager is a config node', async () => {
        for (const type of OURS) {
            if (type === 'evcm-manager' || type === 'evcm-cnf') continue;
            const count = await page
                .locator(`#red-ui-palette .red-ui-palette-node[data-palette-type="${type}"]`)
                .count();
            assert.equal(count, 1, `${type} in the palette`);
        }
        const category = await page.evaluate(
            () =>
                (
                    window as unknown as {
                        RED: { nodes: { getType(t: string): { category: string } } };
                    }
                ).RED.nodes.getType('evcm-manager').category,
        );
        assert.equal(category, 'config');
    });

    it('each edit dialog opens and marks a bad value invalid', async () => {
        for (const [type, [field, bad]] of Object.entries(BAD)) {
            const id = `bt-${type}`;
            await page.evaluate(
                ([t, i]) => {
                    const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
                    RED.view.importNodes(
                        [{ id: i, type: t, x: 200, y: 500, z: RED.workspaces.active(), wires: [] }],
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
                const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
                RED.nodes.remove(i);
                RED.view.redraw(true);
            }, id);
        }
    });

    it('the manager dialog shows the device table and marks bad devices as you type', async () => {
        await page.evaluate(() => {
            const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
            RED.editor.editConfig('', 'evcm-manager', 'evcm-demo-manager');
        });
        await page.waitForSelector('#node-config-input-devices-list .evcm-dev-row');
        const rows = page.locator('#node-config-input-devices-list .evcm-dev-row');
        assert.equal(await rows.count(), 4);
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
        assert.equal(await added.locator('.evcm-dev-id').inputValue(), 'E4');
        await added.locator('[data-field="address"]').fill('not an address!');
        await page.waitForSelector('[data-field="address"].input-error');
        // Switching the type shows that type's fields only.
        await added.locator('.evcm-dev-type').selectOption('meter_sim');
        assert.equal(await added.locator('.evcm-dev-id').inputValue(), 'M2');
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
        await page.evaluate(() => {
            const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
            RED.editor.editConfig('', 'evcm-manager', 'evcm-demo-manager');
        });
        const first = page.locator('#node-config-input-devices-list .evcm-dev-row').first();
        await first.locator('.evcm-dev-name').fill('Garage L');
        await first.locator('[data-field="max_charging_cur"]').fill('20000');
        await page.click('#node-config-dialog-ok');
        await page.waitForSelector('#node-config-dialog-ok', { state: 'detached' });
        const devices = await page.evaluate(() => {
            const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
            return JSON.parse(RED.nodes.node('evcm-demo-manager').devices as string) as Record<
                string,
                unknown
            >[];
        });
        assert.equal(devices.length, 4);
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
        assert.equal(devices[3]!.dev_type, 'meter_sim');
        assert.equal(devices[3]!.role, 3);
    });

    it('every example imports from the package and deploys without errors', async () => {
        const files = readdirSync(join(repoRoot, 'examples')).filter((f) => f.endsWith('.json'));
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
                const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
                RED.view.importNodes(f, { addFlow: true, touchImport: true });
            }, flow);
        }
        const before = red!.log().length;
        await page.evaluate(() => {
            const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
            RED.nodes.dirty(true);
        });
        await page.click('#red-ui-header-button-deploy');
        // Node-RED asks before deploying a flow with warnings (e.g. unused config nodes).
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
                await page.screenshot({ path: join(tmpdir(), 'evcm-deploy-failed.png') });
                throw e;
            });
        await new Promise((r) => setTimeout(r, 3000));
        const log = red!.log().slice(before);
        const errors = log.split('\n').filter((l) => /\[error\]/.test(l));
        assert.deepEqual(errors, [], log);
        const invalid = await page.evaluate(() => {
            const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
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
        await page.evaluate(() => {
            const RED = (window as unknown as { RED: any }).RED; // eslint-disable-line @typescript-eslint/no-explicit-any
            RED.workspaces.show('evcm-demo-tab');
        });
        await new Promise((r) => setTimeout(r, 1500));
        const dir = mkdtempSync(join(tmpdir(), 'evcm-editor-'));
        const file = join(dir, 'demo-flow.png');
        await page.screenshot({ path: file });
        console.log(`      screenshot: ${file}`);
        assert.ok(existsSync(file));
    });
});
