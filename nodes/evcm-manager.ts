import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { NodeAPI } from 'node-red';
import { sharedBusPool } from '../lib/modbus/shared-pool';
import { diagFileFor } from '../lib/cnf/diag-log';
import {
    ManagerPersistence,
    editorStateOf,
    keptChange,
    storeFileFor,
} from '../lib/cnf/persistence';
import { notSaved } from '../lib/cnf/errors';
import { MemoryUsers, parseUsersText } from '../lib/cnf/users';
import { builtInDefinitions, parseUserDefinitions } from '../lib/devices/registry';
import { parseManagerConfig, userTableText } from '../lib/site/editor';
import { Site } from '../lib/site/site';
import { ManagerStore } from '../lib/store/store';
import { sessionFileFor } from '../lib/sessions/book';
import { SessionLog } from '../lib/sessions/session-log';
import { cnfContextOf } from './shared/cnf';
import { getOcpp, type ManagerNode, type ManagerNodeDef } from './shared/types';

/** Stopping gives every wallbox its disable_policy command; never wait past Node-RED's limit. */
const CLOSE_TIMEOUT_MS = 10_000;

export = function (RED: NodeAPI) {
    function EvcmManagerNode(this: ManagerNode, def: ManagerNodeDef) {
        RED.nodes.createNode(this, def);
        this.evcmManager = true;
        this.site = null;
        this.configError = '';
        this.storeProblem = '';
        this.ready = Promise.resolve();
        const credentials = (this as unknown as { credentials?: { adminPassword?: string } })
            .credentials;
        this.adminPassword = credentials?.adminPassword ?? '';
        this.users = [];
        try {
            this.users = parseUsersText(userTableText(def));
            const setup = parseManagerConfig(def);
            // evse_ocpp wallboxes connect to the central system of the evcm-ocpp node named here.
            const ocppId = typeof def.ocpp === 'string' ? def.ocpp : '';
            const ocpp = ocppId ? getOcpp(RED, ocppId) : null;
            if (ocppId && !ocpp?.central) {
                throw new Error(RED._('evcm-manager.errors.no-ocpp'));
            }
            // The site authorises against the manager's users from its first cycle on, with or
            // without an evcm-cnf node; stored users join them when the store is opened.
            this.site = new Site({
                ...setup,
                users: new MemoryUsers(this.users),
                pool: sharedBusPool(),
                ...(ocpp?.central ? { ocpp: ocpp.central } : {}),
            });
        } catch (err) {
            this.configError = (err as Error).message;
            this.error(RED._('evcm-manager.errors.bad-config', { error: this.configError }));
            return;
        }
        const site = this.site;
        const userDir = (RED.settings as { userDir?: string }).userDir;
        // Session records go to an append-only log next to the store (memory only without one).
        const sessionError = (err: Error) =>
            this.error(RED._('evcm-manager.errors.session-log', { error: err.message }));
        const ctx = cnfContextOf(this, site, {
            ...(userDir
                ? {
                      diagFile: diagFileFor(userDir, this.id),
                      sessionStorage: new SessionLog(sessionFileFor(userDir, this.id), {
                          onError: sessionError,
                      }),
                  }
                : {}),
            log: (text) => this.log(text),
            onSessionError: sessionError,
        });
        const offError = site.manager.events.on('deviceError', ({ id, error }) => {
            this.warn(RED._('evcm-manager.errors.device', { id, error: error.message }));
        });
        const offRecovered = site.manager.events.on('deviceRecovered', ({ id }) => {
            this.log(RED._('evcm-manager.status.recovered', { id }));
        });
        // A failing cycle is logged once per episode with its cause, and again when the wallboxes
        // are sent to their fail-safe current; the rings of the nodes using this manager go red.
        let failSafeLogged = false;
        const offCycleFailed = site.manager.events.on('cycleFailed', (f) => {
            if (f.failures === 1) {
                this.error(RED._('evcm-manager.errors.cycle-failed', { error: f.error.message }));
            }
            if (f.failSafe && !failSafeLogged) {
                failSafeLogged = true;
                const s = Math.round((Date.now() - f.since) / 1000);
                this.error(RED._('evcm-manager.errors.cycle-fail-safe', { s }));
            }
        });
        const offCycleRecovered = site.manager.events.on('cycleRecovered', (r) => {
            failSafeLogged = false;
            this.log(RED._('evcm-manager.status.cycle-recovered', { failures: r.failures }));
        });
        // A flow's subscriber that throws is reported once per message, not every cycle.
        const listenerErrors = new Set<string>();
        const offListenerError = site.manager.events.on('listenerError', ({ event, error }) => {
            const key = `${event}: ${error.message}`;
            if (listenerErrors.has(key) || listenerErrors.size >= 100) return;
            listenerErrors.add(key);
            this.error(RED._('evcm-manager.errors.listener', { event, error: error.message }));
        });

        // A config node has no status of its own: the evcm-cnf nodes show storeProblem.
        const problem = (text: string) => {
            this.storeProblem = text;
            this.error(text);
        };
        let closed = false;
        let persistence: ManagerPersistence | null = null;
        // The stored /cnf changes are applied before the first control cycle: the site must not
        // run, even briefly, on editor values that the user has since overridden.
        const open = async () => {
            if (!userDir) {
                this.log(RED._('evcm-manager.status.no-store'));
                return;
            }
            const file = storeFileFor(userDir, this.id);
            try {
                await mkdir(dirname(file), { recursive: true, mode: 0o700 });
                const store = await ManagerStore.open(file);
                const loaded = store.loadReport;
                if (loaded.status === 'recovered') {
                    problem(
                        RED._('evcm-manager.errors.store-corrupt', {
                            error: loaded.error?.message ?? '',
                            movedTo: loaded.movedTo ?? '-',
                        }),
                    );
                }
                const started = await ManagerPersistence.start(
                    ctx,
                    store,
                    editorStateOf(def, this.adminPassword),
                    {
                        onProblem: (err) =>
                            problem(
                                RED._('evcm-manager.errors.store-write', { error: err.message }),
                            ),
                    },
                );
                persistence = started.persistence;
                if (started.report.replaced.length) {
                    this.log(
                        RED._('evcm-manager.status.store-replaced', {
                            items: started.report.replaced.join(', '),
                        }),
                    );
                }
                for (const item of started.report.problems) {
                    this.warn(RED._('evcm-manager.errors.store-item', { error: item }));
                }
                if (closed) await persistence.close();
            } catch (err) {
                problem(
                    RED._('evcm-manager.errors.store-open', {
                        file,
                        error: (err as Error).message,
                    }),
                );
                // changes still take effect, but no client is told they were saved
                ctx.onChange(keptChange);
                ctx.setCommitter(() => Promise.reject(notSaved(err)));
            }
        };
        // Sessions that ran when Node-RED last stopped go on (or end) from the first cycle.
        const openSessions = async () => {
            const found = await ctx.sessions.open();
            if (found.restored)
                this.log(RED._('evcm-manager.status.sessions-restored', { count: found.restored }));
            if (found.dropped)
                this.warn(RED._('evcm-manager.errors.session-lines', { count: found.dropped }));
        };
        this.ready = open()
            .catch((err: unknown) => this.error(err))
            .then(openSessions)
            .catch((err: unknown) => this.error(err))
            .finally(() => {
                if (!closed) site.start();
            });

        this.on('close', (_removed: boolean, done: () => void) => {
            closed = true;
            ctx.close();
            offError();
            offRecovered();
            offCycleFailed();
            offCycleRecovered();
            offListenerError();
            const timer = setTimeout(done, CLOSE_TIMEOUT_MS);
            void this.ready
                .then(() => site.stop())
                .catch((err: unknown) => this.error(err))
                // the running sessions as the last cycle left them
                .then(() => ctx.sessions.close())
                // counters are saved after the site stopped counting
                .then(() => persistence?.close())
                .finally(() => {
                    clearTimeout(timer);
                    done();
                });
        });
    }

    // The editor's device table offers every built-in definition, and checks the user's own
    // definitions with the same schema as set_params (the message names the field).
    const read = RED.auth.needsPermission('evcm-manager.read');
    RED.httpAdmin.get('/evcm-manager/device-types', read, (_req, res) => {
        res.json(
            [...builtInDefinitions().values()].map((d) => ({
                type: d.type,
                kind: d.kind,
                title: d.title,
            })),
        );
    });
    RED.httpAdmin.post('/evcm-manager/device-defs', read, (req, res) => {
        const text = (req.body as { text?: unknown } | undefined)?.text;
        try {
            const input: unknown = typeof text === 'string' && text.trim() ? JSON.parse(text) : [];
            const defs = parseUserDefinitions(input);
            res.json({
                error: '',
                types: defs.map((d) => ({ type: d.type, kind: d.kind, title: d.title })),
            });
        } catch (err) {
            res.json({ error: (err as Error).message, types: [] });
        }
    });

    RED.nodes.registerType('evcm-manager', EvcmManagerNode as never, {
        credentials: { adminPassword: { type: 'password' } },
    });
};
