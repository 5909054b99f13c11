// The demo's dashboard (FlowFuse Dashboard 2, the demo's second tab) in headless Chromium against
// a real Node-RED child process: the tiles show what get_dev_info shows, the chart has the grid
// meter's phases, the power split has the PV meter, the switch and the card field act on the
// wallboxes through evcm-override and evcm-rfid. Then a site of 300 wallboxes: the dashboard
// stays responsive (page turn and control round trips, bytes per update).
//
// The screenshot goes to a temporary directory; set EVCM_DASHBOARD_SCREENSHOT=<file.png> to keep
// it (docs/dashboard.png is made that way).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDemoChargePoint } from '../../lib/sim/ocpp-sim';
import { demoFlow } from '../support/demo';
import { repoRoot, startNodeRed, type NodeRedProcess } from '../support/node-red-process';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];
const DASH = 'evcm-demo-dash-';

type Json = Record<string, unknown>;

async function devInfo(red: NodeRedProcess): Promise<Json[]> {
    const res = await fetch(`${red.url}cnf?cmd=get_dev_info`);
    return ((await res.json()) as { devices: Json[] }).devices;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000) {
    const deadline = Date.now() + ms;
    let last: unknown;
    for (;;) {
        try {
            const value = await probe();
            if (value !== undefined) return value;
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out waiting until ${what}${last ? `: ${String(last)}` : ''}`);
        }
        await new Promise((r) => setTimeout(r, 200));
    }
}

interface TileText {
    dev_id: string;
    cls: string;
    state: string;
    allowed: number;
    drawn: number[];
    user: string;
}

/** What the tiles show, read from the page. */
function readTiles(page: Page): Promise<TileText[]> {
    return page.$$eval('.evcm-tile', (tiles) =>
        tiles.map((t) => {
            const f = (name: string) =>
                (t.querySelector(`[data-field="${name}"]`)?.textContent ?? '').trim();
            return {
                dev_id: t.getAttribute('data-dev-id') ?? '',
                cls: t.className,
                state: f('state'),
                allowed: Number(f('allowed')),
                drawn: f('drawn').split('/').map(Number),
                user: f('user'),
            };
        }),
    );
}

/** The chart's series as ECharts describes them for screen readers: name → [x, y] points. */
async function chartSeries(page: Page, widget: string): Promise<Map<string, [number, number][]>> {
    const label = await page.getAttribute(`#nrdb-ui-widget-${widget} [aria-label]`, 'aria-label');
    const out = new Map<string, [number, number][]>();
    for (const m of (label ?? '').matchAll(
        /representing ([^.]+)\.The data is as follows: ([^.]*(?:\.\d[^.]*)*)\./g,
    )) {
        const nums = m[2]!.split(',').map((s) => Number(s.trim()));
        const points: [number, number][] = [];
        for (let i = 0; i + 1 < nums.length; i += 2) points.push([nums[i]!, nums[i + 1]!]);
        out.set(m[1]!, points);
    }
    return out;
}

const amps = (mA: unknown) => Math.round(Number(mA) / 100) / 10;

describe('dashboard in a browser', function () {
    this.timeout(180_000);
    let browser: Browser | undefined;
    let dir = '';

    before(async function () {
        if (!existsSync(CHROMIUM)) {
            if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing in CI`);
            console.log(
                `      SKIPPED: ${CHROMIUM} not found (install the Debian chromium package)`,
            );
            this.skip();
        }
        dir = mkdtempSync(join(tmpdir(), 'evcm-dashboard-'));
        browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    });
    after(async () => {
        await browser?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
    });

    describe('the demo', () => {
        let red: NodeRedProcess | undefined;
        let page: Page;
        let chargePoint: ReturnType<typeof startDemoChargePoint> | undefined;

        before(async () => {
            red = await startNodeRed((await demoFlow({ dashboard: true })).flow);
            // As npm start runs it: the street wallbox is an OCPP charge point with a card.
            chargePoint = startDemoChargePoint(`${red.url.replace(/^http/, 'ws')}ocpp`, 1000);
            const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
            page = await context.newPage();
            await page.goto(`${red.url}dashboard`);
            await page.waitForSelector('.evcm-tile', { timeout: 30_000 });
        });
        after(async () => {
            await chargePoint?.close();
            await page?.context().close();
            await red?.stop();
        });

        it('has a tile per wallbox that shows what get_dev_info shows', async () => {
            // A car charges within seconds; then tiles and API agree (the tiles follow every 2 s).
            await until('a car charges on the dashboard', async () => {
                const e1 = (await readTiles(page)).find((t) => t.dev_id === 'E1');
                return e1 && e1.allowed > 0 && e1.drawn.some((a) => a > 0) ? true : undefined;
            });
            const agreed = await until('tiles and get_dev_info agree', async () => {
                const before = await readTiles(page);
                const info = await devInfo(red!);
                const after = await readTiles(page);
                if (JSON.stringify(before) !== JSON.stringify(after)) return undefined;
                for (const t of after) {
                    const d = info.find((x) => x.dev_id === t.dev_id)!;
                    const allowed = amps((d.evse as Json).current);
                    const drawn = [d.current_l1, d.current_l2, d.current_l3].map(amps);
                    if (t.allowed !== allowed || JSON.stringify(t.drawn) !== JSON.stringify(drawn))
                        return undefined;
                    if (d.paused === true && !t.cls.includes('evcm-paused')) return undefined;
                }
                return { tiles: after, info };
            });
            assert.deepEqual(
                agreed.tiles.map((t) => t.dev_id),
                ['E1', 'E2', 'E3', 'E4'],
            );
            const e3 = agreed.tiles.find((t) => t.dev_id === 'E3')!;
            assert.match(e3.state, /waiting for a card/, 'Visitors waits for Anna');
        });

        it('charts the grid meter per phase against the fuse, and shows PV, household and cars', async () => {
            const checked = await until('the chart has the grid meter phases', async () => {
                const series = await chartSeries(page, `${DASH}chart`);
                const info = await devInfo(red!);
                const m1 = info.find((x) => x.dev_id === 'M1')!;
                const phases = ['L1', 'L2', 'L3'].map((p) => series.get(p) ?? []);
                if (phases.some((p) => p.length < 3)) return undefined;
                const latest = phases.map((p) => p.at(-1)![1]);
                const meter = [m1.current_l1, m1.current_l2, m1.current_l3].map(amps);
                if (latest.some((v, i) => Math.abs(v - meter[i]!) > 0.15)) return undefined;
                return series;
            });
            const limit = checked.get('limit') ?? [];
            assert.ok(limit.length >= 3);
            assert.ok(
                limit.every(([, y]) => y === 25),
                'the demo fuse is 25 A',
            );
            // The x values are times (ms) in order.
            const l1 = checked.get('L1')!;
            assert.ok(l1.every(([x], i) => i === 0 || x > l1[i - 1]![0]));

            await until('the power split shows the PV meter', async () => {
                const pv = await page.textContent('[data-field="pv_w"] .evcm-power-value');
                const m2 = (await devInfo(red!)).find((x) => x.dev_id === 'M2')!;
                const kw = Number(String(m2.power_w)) / 1000;
                return pv && Math.abs(parseFloat(pv) - kw) < 0.02 ? true : undefined;
            });
            const cars = await page.textContent('[data-field="cars_w"] .evcm-power-value');
            assert.ok(parseFloat(cars ?? '') > 0, `cars ${cars}`);
            assert.match(
                (await page.textContent('[data-field="household_w"] .evcm-power-value')) ?? '',
                /\d+\.\d\d kW/,
            );
        });

        it('switches charging off and on through evcm-override', async () => {
            // E1 is selected first; the switch sends charging=false → override_device C.
            const sw = page.locator(`#nrdb-ui-widget-${DASH}switch input[type="checkbox"]`);
            assert.equal(await sw.isChecked(), true);
            const clicked = Date.now();
            await sw.click();
            await until('E1 shows the override in get_dev_info', async () => {
                const e1 = (await devInfo(red!)).find((x) => x.dev_id === 'E1')!;
                return (Number(e1.overrides) & 1) === 1 ? true : undefined;
            });
            const roundTrip = Date.now() - clicked;
            console.log(`      switch click → override in get_dev_info: ${roundTrip} ms`);
            await until('the E1 tile shows it switched off', async () => {
                const e1 = (await readTiles(page)).find((t) => t.dev_id === 'E1')!;
                return /switched off/.test(e1.state) && e1.allowed === 0 ? true : undefined;
            });
            await sw.click();
            await until('E1 charges again', async () => {
                const e1 = (await devInfo(red!)).find((x) => x.dev_id === 'E1')!;
                return (Number(e1.overrides) & 1) === 0 ? true : undefined;
            });
        });

        it("enters Anna's card at Visitors through evcm-rfid", async () => {
            // A click on a tile selects its wallbox; the card field then enters the card there.
            await page.click('.evcm-tile[data-dev-id="E3"]');
            await until('E3 is selected', async () => {
                const text = await page.textContent(`#nrdb-ui-widget-${DASH}select`);
                return text?.includes('E3 Visitors') ? true : undefined;
            });
            const card = page.locator(`#nrdb-ui-widget-${DASH}card input`);
            await card.fill('4711');
            await card.press('Enter');
            await until('E3 no longer needs a card', async () => {
                const e3 = (await devInfo(red!)).find((x) => x.dev_id === 'E3')!;
                return e3.needs_auth === false ? true : undefined;
            });
            await until('the E3 tile shows Anna', async () => {
                const e3 = (await readTiles(page)).find((t) => t.dev_id === 'E3')!;
                return e3.user === 'Anna' && !/waiting for a card/.test(e3.state)
                    ? true
                    : undefined;
            });
        });

        it('saves a screenshot', async () => {
            const file = process.env.EVCM_DASHBOARD_SCREENSHOT ?? join(dir, 'dashboard.png');
            // A few more chart points first, and a moment for the last update to be drawn.
            await new Promise((r) => setTimeout(r, 6000));
            await page.screenshot({ path: file, fullPage: true });
            assert.ok(existsSync(file));
        });
    });

    describe('300 wallboxes', () => {
        const N = 300;
        let red: NodeRedProcess | undefined;
        let page: Page;
        let received: number[] = [];

        before(async () => {
            // The example's dashboard on a site of 300 simulated wallboxes.
            const example = JSON.parse(
                readFileSync(join(repoRoot, 'examples', '06 A live dashboard.json'), 'utf8'),
            ) as Json[];
            const manager = example.find((n) => n.type === 'evcm-manager')!;
            manager.max_total_current = String(N * 6000);
            manager.devices = JSON.stringify([
                ...Array.from({ length: N }, (_, i) => ({
                    dev_type: 'evse_sim',
                    dev_id: `E${i + 1}`,
                    name: `Wallbox ${i + 1}`,
                    max_charging_cur: 16000,
                })),
                { dev_type: 'meter_sim', dev_id: 'M1', name: 'Grid', role: 3 },
            ]);
            manager.userTable = '[]';
            const tab = { id: 'tab', type: 'tab', label: '300' };
            const flow = [
                tab,
                ...example.map((n) => ('x' in n ? { ...n, z: 'tab' } : n)),
                {
                    id: 'cnf',
                    type: 'evcm-cnf',
                    z: 'tab',
                    manager: manager.id,
                    path: '/cnf',
                    wires: [],
                },
            ];
            red = await startNodeRed(flow);
            const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
            page = await context.newPage();
            // Bytes the dashboard's socket delivers, per message.
            page.on('websocket', (ws) =>
                ws.on('framereceived', (f) => {
                    received.push(typeof f.payload === 'string' ? f.payload.length : 0);
                }),
            );
            const opened = Date.now();
            await page.goto(`${red.url}dashboard`);
            await page.waitForSelector('.evcm-tile', { timeout: 30_000 });
            console.log(`      first tiles on screen after ${Date.now() - opened} ms`);
        });
        after(async () => {
            await page?.context().close();
            await red?.stop();
        });

        it('shows one page of tiles and turns pages quickly', async () => {
            assert.equal(await page.locator('.evcm-tile').count(), 12);
            assert.match((await page.textContent('.evcm-head')) ?? '', /300 wallboxes/);
            assert.match((await page.textContent('.evcm-page')) ?? '', /page 1 \/ 25/);
            const times: number[] = [];
            for (let p = 2; p <= 6; p++) {
                const t0 = Date.now();
                await page.click('.evcm-pager button:last-child');
                await page.waitForSelector(`.evcm-tile[data-dev-id="E${(p - 1) * 12 + 1}"]`);
                times.push(Date.now() - t0);
            }
            const worst = Math.max(...times);
            console.log(`      page turn (click → new tiles): ${times.join(', ')} ms`);
            assert.ok(worst < 2000, `page turns took ${times.join(', ')} ms`);
        });

        it('a control click reaches the wallbox in well under a second', async () => {
            const sw = page.locator(`#nrdb-ui-widget-ex06-switch input[type="checkbox"]`);
            const t0 = Date.now();
            await sw.click();
            await until('E1 is switched off', async () => {
                const e1 = (await devInfo(red!)).find((x) => x.dev_id === 'E1')!;
                return (Number(e1.overrides) & 1) === 1 ? true : undefined;
            });
            const ms = Date.now() - t0;
            console.log(`      switch click → override in get_dev_info (300 wallboxes): ${ms} ms`);
            assert.ok(ms < 3000, `${ms} ms`);
        });

        it('keeps each update small', async () => {
            received = [];
            await new Promise((r) => setTimeout(r, 10_000));
            const total = received.reduce((a, b) => a + b, 0);
            const largest = Math.max(...received);
            console.log(
                `      socket: ${received.length} frames, ${total} bytes in 10 s, largest ${largest} bytes`,
            );
            // One page of tiles, not 300: well below what 300 tiles would take (~100 kB).
            assert.ok(largest < 20_000, `largest frame ${largest} bytes`);
        });
    });
});
