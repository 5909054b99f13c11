import type { NodeAPI } from 'node-red';
import { sharedBusPool } from '../lib/modbus/shared-pool';
import { parseUsersText } from '../lib/cnf/users';
import { parseManagerConfig } from '../lib/site/editor';
import { Site } from '../lib/site/site';
import type { ManagerNode, ManagerNodeDef } from './shared/types';

/** Stopping gives every wallbox its disable_policy command; never wait past Node-RED's limit. */
const CLOSE_TIMEOUT_MS = 10_000;

export = function (RED: NodeAPI) {
    function EvcmManagerNode(this: ManagerNode, def: ManagerNodeDef) {
        RED.nodes.createNode(this, def);
        this.evcmManager = true;
        this.site = null;
        this.configError = '';
        const credentials = (this as unknown as { credentials?: { adminPassword?: string } })
            .credentials;
        this.adminPassword = credentials?.adminPassword ?? '';
        this.users = [];
        try {
            this.users = parseUsersText(def.users);
            const setup = parseManagerConfig(def);
            this.site = new Site({ ...setup, pool: sharedBusPool() });
        } catch (err) {
            this.configError = (err as Error).message;
            this.error(RED._('evcm-manager.errors.bad-config', { error: this.configError }));
            return;
        }
        const site = this.site;
        const offError = site.manager.events.on('deviceError', ({ id, error }) => {
            this.warn(RED._('evcm-manager.errors.device', { id, error: error.message }));
        });
        const offRecovered = site.manager.events.on('deviceRecovered', ({ id }) => {
            this.log(RED._('evcm-manager.status.recovered', { id }));
        });
        site.start();

        this.on('close', (_removed: boolean, done: () => void) => {
            offError();
            offRecovered();
            const timer = setTimeout(done, CLOSE_TIMEOUT_MS);
            site.stop()
                .catch((err: unknown) => this.error(err))
                .finally(() => {
                    clearTimeout(timer);
                    done();
                });
        });
    }

    RED.nodes.registerType('evcm-manager', EvcmManagerNode as never, {
        credentials: { adminPassword: { type: 'password' } },
    });
};
