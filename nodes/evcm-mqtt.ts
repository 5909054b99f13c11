import type { Node, NodeAPI } from 'node-red';
import { MqttApi, MqttApiConfigSchema, MqttInputError } from '../lib/mqtt/api';
import { cnfContextOf } from './shared/cnf';
import { asError, badConfig, siteFor, type FlowNodeDef } from './shared/flow-node';
import { showCycleFailures } from './shared/status';
import { getManager } from './shared/types';

const TYPE = 'evcm-mqtt';

export = function (RED: NodeAPI) {
    function EvcmMqttNode(this: Node, def: FlowNodeDef) {
        RED.nodes.createNode(this, def);
        const config = MqttApiConfigSchema.safeParse(def);
        if (!config.success) return badConfig(RED, this, TYPE, config.error.issues[0]!.message);
        const site = siteFor(RED, this, TYPE, def.manager);
        if (!site) return;
        const manager = getManager(RED, def.manager)!;
        const { prefix, rights } = config.data;
        const shown = `${prefix}/# · ${RED._(`${TYPE}.status.${rights}`)}`;
        const showOk = () => this.status({ fill: 'green', shape: 'dot', text: shown });
        const showProblem = (message: string) =>
            this.status({
                fill: 'red',
                shape: 'ring',
                text: RED._(`${TYPE}.status.bad-input`, { error: message.slice(0, 40) }),
            });
        let problem = false;
        // A call that was queued when the flow stopped publishes nothing.
        let closed = false;
        const ctx = cnfContextOf(manager, site);
        const api = new MqttApi(
            ctx,
            config.data,
            (msg) => {
                if (!closed) this.send({ ...msg });
            },
            manager.ready ?? Promise.resolve(),
            `mqtt:${this.id}`,
        );
        // Each finished session, once it is in the log, goes to <prefix>/ta_log.
        const offSessions = ctx.sessions.events.on('recorded', ({ record }) => {
            if (!closed) api.publishSession(record);
        });
        showOk();

        this.on('input', (msg, _send, done) => {
            api.handle(msg).then(
                () => {
                    if (problem) showOk();
                    problem = false;
                    done();
                },
                (e: unknown) => {
                    const err = asError(e);
                    problem = true;
                    showProblem(err.message);
                    // A message the API cannot take is the flow's error; anything else is ours.
                    done(e instanceof MqttInputError ? err : new Error(`${TYPE}: ${err.message}`));
                },
            );
        });
        const stop = api.startPublishing((err) => this.error(err.message));
        const offFailures = showCycleFailures(RED, this, TYPE, site, showOk);
        this.on('close', (_removed: boolean, done: () => void) => {
            closed = true;
            stop();
            offSessions();
            offFailures();
            done();
        });
    }
    RED.nodes.registerType(TYPE, EvcmMqttNode);
};
