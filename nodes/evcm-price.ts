import type { Node, NodeAPI } from 'node-red';
import { z } from 'zod';
import { parsePriceList, type PriceUnit } from '../lib/prices/price-list';
import { asError, badConfig, siteFor, type FlowNodeDef } from './shared/flow-node';
import { toStatus } from './shared/status';

const TYPE = 'evcm-price';

const UnitSchema = z.enum(['auto', 'kWh', 'MWh', 'ct/kWh']);
/** How often the ring follows the price of the hour (ms). */
const STATUS_REFRESH_MS = 60_000;

export = function (RED: NodeAPI) {
    function EvcmPriceNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const unit = UnitSchema.safeParse(def.unit || 'auto');
        if (!unit.success) {
            return badConfig(RED, this, TYPE, `unit must be auto, kWh, MWh or ct/kWh`);
        }
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        let problem: string | null = null;

        /** The price rules and formulas read now, as the node sends and shows it. */
        const current = () => {
            const now = site.now();
            const p = site.priceNow(now);
            const slots = site.prices.slots;
            return {
                price: p.price ?? null,
                level: p.level ?? null,
                source: p.source,
                slots: slots.length,
                from: slots.length ? new Date(slots[0]!.start).toISOString() : null,
                to: slots.length ? new Date(slots[slots.length - 1]!.end).toISOString() : null,
            };
        };
        const show = (): void => {
            if (problem !== null) {
                this.status(
                    toStatus(RED, TYPE, {
                        fill: 'red',
                        shape: 'ring',
                        key: 'bad-input',
                        params: { error: problem.slice(0, 40) },
                    }),
                );
                return;
            }
            const c = current();
            this.status(
                c.price === null && c.level === null
                    ? toStatus(RED, TYPE, { fill: 'grey', shape: 'ring', key: 'no-price' })
                    : toStatus(RED, TYPE, {
                          fill: 'green',
                          shape: 'dot',
                          key: 'price',
                          params: {
                              price:
                                  c.price === null
                                      ? '–'
                                      : String(Math.round(c.price * 10_000) / 10_000),
                              level: c.level === null ? '–' : String(c.level),
                          },
                      }),
            );
        };
        show();
        const timer = setInterval(show, STATUS_REFRESH_MS);

        this.on('input', (msg, send, done) => {
            try {
                if ((msg as { reset?: unknown }).reset === true) site.prices.clear();
                // Validated whole before it replaces the list: a bad list changes nothing.
                else site.prices.set(parsePriceList(msg.payload, unit.data as PriceUnit));
            } catch (e) {
                problem = asError(e).message;
                show();
                done(asError(e));
                return;
            }
            problem = null;
            show();
            send({ ...msg, payload: current() });
            done();
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            clearInterval(timer);
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmPriceNode);
};
