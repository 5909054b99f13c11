import type { Node, NodeAPI } from 'node-red';
import { z } from 'zod';
import { PowerBrainSim } from '../lib/sim/powerbrain-sim';
import { asError } from './shared/flow-node';
import { toStatus } from './shared/status';
import { getManager } from './shared/types';
import { gridLoadOf, simCommand, simConfigSchema, simRing } from '../lib/nodes-support/sim';

const TYPE = 'evcm-powerbrain-sim';
const STATUS_MS = 1000;

export = function (RED: NodeAPI) {
    function EvcmPowerBrainSimNode(this: Node, def: Record<string, unknown> & { id: string }) {
        RED.nodes.createNode(this, def as never);
        const cfg = simConfigSchema.safeParse(def);
        if (!cfg.success) {
            this.error(RED._(`${TYPE}.errors.bad-config`, { error: z.prettifyError(cfg.error) }));
            this.status(toStatus(RED, TYPE, { fill: 'red', shape: 'ring', key: 'bad-config' }));
            return;
        }
        const sim = new PowerBrainSim({
            host: '127.0.0.1',
            port: cfg.data.port,
            plugged: cfg.data.plugged,
            car: cfg.data.car,
            defaultEnable: cfg.data.defaultEnable,
        });
        // The manager whose simulated grid meter measures this car (config nodes start first).
        const world = cfg.data.manager ? getManager(RED, cfg.data.manager)?.site?.world : undefined;
        if (cfg.data.manager && !world) {
            this.error(RED._(`${TYPE}.errors.no-manager`));
        }
        let detach = () => {};
        let timer: NodeJS.Timeout | undefined;
        let closed = false;
        const show = () => this.status(toStatus(RED, TYPE, simRing(sim.state, cfg.data.port)));
        const started = sim.start().then(
            () => {
                if (closed) return;
                // Only a wallbox that is there draws current: attach once it serves Modbus.
                if (world) detach = world.attachLoad(gridLoadOf(sim, cfg.data.phaseRotation));
                show();
                timer = setInterval(show, STATUS_MS);
            },
            (e: unknown) => {
                this.error(
                    RED._(`${TYPE}.errors.listen`, {
                        port: cfg.data.port,
                        error: asError(e).message,
                    }),
                );
                this.status(
                    toStatus(RED, TYPE, { fill: 'red', shape: 'ring', key: 'listen-failed' }),
                );
            },
        );
        this.on('input', (msg, send, done) => {
            try {
                simCommand(sim, msg.payload);
                show();
                send({ ...msg, payload: sim.state });
                done();
            } catch (e) {
                done(asError(e));
            }
        });
        this.on('close', (_removed: boolean, done: () => void) => {
            closed = true;
            clearInterval(timer);
            detach();
            void started.finally(() => sim.close()).finally(done);
        });
    }
    RED.nodes.registerType(TYPE, EvcmPowerBrainSimNode as never);
};
