import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { z } from 'zod';
import {
    chartPoints,
    controlCommand,
    controlState,
    DashboardInputSchema,
    dashboardView,
    tilePage,
    wallboxOptions,
} from '../lib/site/dashboard';
import { badConfig, siteFor, type FlowNodeDef } from './shared/flow-node';
import { showCycleFailures } from './shared/status';

const TYPE = 'evcm-dashboard';

const ConfigSchema = z.object({
    /** Seconds between updates. */
    interval: z.coerce.number().min(0.5).max(3600).default(2),
    /** Tiles per page. */
    page_size: z.coerce.number().int().min(1).max(500).default(12),
});

/** Outputs, in the order of the node's ports. */
const OUT = {
    chart: 0,
    power: 1,
    tiles: 2,
    wallboxes: 3,
    charging: 4,
    limit: 5,
    override: 6,
    rfid: 7,
} as const;
const PORTS = 8;

export = function (RED: NodeAPI) {
    function EvcmDashboardNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const config = ConfigSchema.safeParse({
            interval: def.interval === '' ? undefined : def.interval,
            page_size: def.page_size === '' ? undefined : def.page_size,
        });
        if (!config.success) {
            const issue = config.error.issues[0]!;
            return badConfig(RED, this, TYPE, `${issue.path.join('.')}: ${issue.message}`);
        }
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        const { interval, page_size: pageSize } = config.data;
        let page = 1;
        let selected: string | undefined;
        let lastAt = -1;
        const last = { power: '', tiles: '', wallboxes: '', charging: '', limit: '' };

        const out = (port: number, msg: NodeMessage) => {
            const msgs: (NodeMessage | null)[] = new Array<NodeMessage | null>(PORTS).fill(null);
            msgs[port] = msg;
            this.send(msgs);
        };
        /** Sends on `port` when the message differs from the last one sent there (or `force`). */
        const changed = (key: keyof typeof last, port: number, msg: NodeMessage, force = false) => {
            const text = JSON.stringify(msg);
            if (!force && text === last[key]) return;
            last[key] = text;
            out(port, msg);
        };

        const sendWallboxes = (force = false) => {
            const options = wallboxOptions(site);
            if (!selected || !options.some((o) => o.value === selected)) {
                selected = options[0]?.value;
            }
            changed(
                'wallboxes',
                OUT.wallboxes,
                { topic: 'wallboxes', options, payload: selected ?? '' } as NodeMessage,
                force,
            );
        };
        const sendControls = (force = false) => {
            if (!selected) return;
            const state = controlState(site, selected);
            changed(
                'charging',
                OUT.charging,
                { topic: selected, payload: state.charging } as NodeMessage,
                force,
            );
            changed(
                'limit',
                OUT.limit,
                { topic: selected, payload: state.limit } as NodeMessage,
                force,
            );
        };
        // Reads the last cycle's report on the node's own timer: the control cycle never waits
        // for a dashboard, however many wallboxes it shows.
        const update = (force = false) => {
            const report = site.manager.lastCycle;
            if (!report) return;
            const view = dashboardView(site, report);
            if (report.at !== lastAt) {
                lastAt = report.at;
                out(OUT.chart, { topic: 'phases', payload: chartPoints(view.phases, report.at) });
            }
            changed('power', OUT.power, { topic: 'power', payload: view.power }, force);
            const paged = tilePage(view.tiles, page, pageSize);
            page = paged.page;
            changed(
                'tiles',
                OUT.tiles,
                {
                    topic: 'tiles',
                    // No time stamp: a page whose wallboxes did not change is not sent again.
                    payload: { failSafe: view.failSafe, ...paged },
                } as NodeMessage,
                force,
            );
            sendWallboxes(force);
            sendControls(force);
            const counts = paged.counts;
            this.status({
                fill: view.failSafe ? 'red' : 'green',
                shape: 'dot',
                text: RED._(`${TYPE}.status.running`, {
                    charging: counts.charging ?? 0,
                    total: paged.total,
                    page: paged.page,
                    pages: paged.pages,
                }),
            });
        };

        const timer = setInterval(() => update(), interval * 1000);
        // The first picture as soon as there is a cycle, not a whole interval later.
        const first = setTimeout(() => update(true), 200);
        const offFailures = showCycleFailures(RED, this, TYPE, site, () => update(true));

        this.on('input', (msg, send, done) => {
            const parsed = DashboardInputSchema.safeParse(msg);
            if (!parsed.success) {
                const topic = typeof msg.topic === 'string' ? msg.topic : '';
                // Any other message asks for everything again (e.g. a dashboard that connected).
                if (!['select', 'page', 'charging', 'limit', 'card'].includes(topic)) {
                    update(true);
                    done();
                    return;
                }
                done(new Error(`${topic}: ${parsed.error.issues[0]!.message}`));
                return;
            }
            const input = parsed.data;
            try {
                switch (input.topic) {
                    case 'select':
                        if (!wallboxOptions(site).some((o) => o.value === input.payload)) {
                            throw new Error(`${input.payload} is not a wallbox`);
                        }
                        selected = input.payload;
                        sendWallboxes();
                        sendControls(true);
                        break;
                    case 'page':
                        page = input.payload;
                        update();
                        break;
                    default: {
                        const devId = input.dev_id ?? selected;
                        if (!devId) throw new Error('no wallbox selected');
                        const cmd = controlCommand(site, input, devId);
                        const port = cmd.to === 'override' ? OUT.override : OUT.rfid;
                        const msgs: (NodeMessage | null)[] = new Array<NodeMessage | null>(
                            PORTS,
                        ).fill(null);
                        msgs[port] = { topic: devId, payload: cmd.payload };
                        send(msgs);
                    }
                }
                done();
            } catch (e) {
                done(e instanceof Error ? e : new Error(String(e)));
            }
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            clearInterval(timer);
            clearTimeout(first);
            offFailures();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmDashboardNode);
};
