import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { z } from 'zod';
import {
    answer,
    CnfListener,
    pathnameOf,
    pathPattern,
    routeOf,
    send,
    SIM_PAGE,
    type ListenOptions,
} from '../lib/nodes-support/cnf-http';
import { cnfContextOf } from './shared/cnf';
import { showCycleFailures } from './shared/status';
import { getManager } from './shared/types';
import { ownListenerFields, servedPath } from './shared/listener';

interface CnfNodeDef extends NodeDef {
    manager: string;
    path?: string;
    host?: string;
    port?: string | number;
    usetls?: boolean;
    tls?: string;
}

const ConfigSchema = z.object({
    manager: z.string().min(1),
    path: servedPath('/cnf'),
    ...ownListenerFields,
});

type Req = IncomingMessage & { url: string; body?: unknown };
type Handler = (req: Req, res: ServerResponse, next: (err?: unknown) => void) => void;
interface Layer {
    route?: { path: unknown; stack: { handle: unknown }[] };
}
const NOT_FOUND = {
    status: 404,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' },
    body: '"not found"',
};

interface TlsConfigNode {
    addTLSOptions(opts: Record<string, unknown>): Record<string, unknown>;
}

export = function (RED: NodeAPI) {
    function EvcmCnfNode(this: Node, def: CnfNodeDef) {
        RED.nodes.createNode(this, def);
        const fail = (key: string, error = '', status = 'evcm-cnf.status.error') => {
            this.error(RED._(key, { error }));
            this.status({ fill: 'red', shape: 'ring', text: status });
        };
        const parsed = ConfigSchema.safeParse(def);
        if (!parsed.success)
            return fail('evcm-cnf.errors.bad-config', parsed.error.issues[0]?.message);
        const { path, port, host } = parsed.data;
        const manager = getManager(RED, parsed.data.manager);
        const app = RED.httpNode as unknown as
            Record<string, (...a: unknown[]) => void> | undefined;
        if (!manager?.site || (!app && port === '')) {
            return fail(app ? 'evcm-cnf.errors.missing-config' : 'evcm-cnf.errors.no-http');
        }
        // An own listener (e.g. port 80, where clients assume the device), HTTP or HTTPS.
        let options: ListenOptions | null = null;
        if (port !== '') {
            options = { host, port };
            if (parsed.data.usetls) {
                const tls = RED.nodes.getNode(parsed.data.tls) as unknown as TlsConfigNode | null;
                const o = tls?.addTLSOptions({}) ?? {};
                if (!o.cert || !o.key) return fail('evcm-cnf.errors.no-tls');
                options.tls = o as unknown as NonNullable<ListenOptions['tls']>;
            }
        }
        const ctx = cnfContextOf(manager, manager.site);
        // Requests wait until the manager has applied its stored settings.
        const ready = manager.ready ?? Promise.resolve();
        const cnfPath = pathPattern(path);
        const simPath = pathPattern(SIM_PAGE);
        const serve = (req: Req, res: ServerResponse, url: string): void => {
            const route = routeOf(pathnameOf(url), cnfPath, simPath);
            if (!route) {
                send(res, NOT_FOUND, false);
                return;
            }
            void answer(req, route, ctx, ready, url).then((r) =>
                send(res, r, req.method === 'HEAD'),
            );
        };
        let shown = path;

        // On Node-RED's own port (RED.httpNode), every method: errors are the API's JSON.
        const onRequest: Handler = (req, res) => serve(req, res, req.url);
        const nodeRoot = String(
            (RED.settings as unknown as { httpNodeRoot?: unknown }).httpNodeRoot || '/',
        ).replace(/\/$/, '');
        const server = (RED as unknown as { server?: Server }).server;
        // With the editor on the same root, its body parser reads every JSON body first and
        // answers one it cannot read with an HTML error page. Marking a request for our paths as
        // parsed (the body parsers' own flag) leaves its body to /cnf.
        const fullCnf = pathPattern(nodeRoot + path);
        const fullSim = pathPattern(nodeRoot + SIM_PAGE);
        const claimBodies = (req: IncomingMessage): void => {
            if (routeOf(pathnameOf(req.url), fullCnf, fullSim)) {
                (req as IncomingMessage & { _body?: boolean })._body = true;
            }
        };
        if (app) {
            const settings = RED.settings as unknown as {
                httpNodeMiddleware?: Handler | Handler[];
            };
            const mw = settings.httpNodeMiddleware;
            const chain: Handler[] = typeof mw === 'function' ? [mw] : Array.isArray(mw) ? mw : [];
            app.all!(cnfPath, ...chain, onRequest);
            app.all!(simPath, ...chain, onRequest);
            server?.prependListener('request', claimBodies);
        }

        let listener: Promise<CnfListener | null> = Promise.resolve(null);
        if (options) {
            shown = `${path} · ${options.tls ? 'https' : 'http'} :${port}`;
            listener = CnfListener.start(options, (req, res) =>
                serve(req as Req, res, req.url ?? ''),
            ).catch((err: NodeJS.ErrnoException) => {
                // A port that is taken or needs privileges: an error of this node, not a crash.
                const what = `${host || '*'}:${port}: ${err.code ?? err.message}`;
                fail('evcm-cnf.errors.listen', what, what);
                return null;
            });
        }
        const showServing = (): void => {
            if (manager.storeProblem) {
                this.status({ fill: 'yellow', shape: 'dot', text: `${shown}: store problem` });
            } else this.status({ fill: 'green', shape: 'dot', text: shown });
        };
        this.status({ fill: 'green', shape: 'dot', text: shown });
        void ready.then(() => {
            if (!manager.storeProblem) return;
            // a failed own listener keeps its red ring
            if (!options) showServing();
            else void listener.then((l) => l && showServing());
        });
        // Red while the manager's cycles fail (the API answers on, with what it last knew).
        const offFailures = showCycleFailures(RED, this, 'evcm-cnf', manager.site, () => {
            if (!options) showServing();
            else void listener.then((l) => l && showServing());
        });

        this.on('close', (_removed: boolean, done: () => void) => {
            offFailures();
            server?.off('request', claimBodies);
            try {
                // Express 4 keeps routes in _router.stack, Express 5 in router.stack.
                const router = (app?._router ?? app?.router) as unknown as
                    { stack?: Layer[] } | undefined;
                const stack = router?.stack ?? [];
                for (let i = stack.length - 1; i >= 0; i--) {
                    const route = stack[i]!.route;
                    if (route && route.stack.some((l) => l.handle === onRequest))
                        stack.splice(i, 1);
                }
            } catch (err) {
                this.warn(err);
            }
            // The port is free before the next deploy's node listens on it.
            void listener.then((l) => l?.close()).then(done, done);
        });
    }
    RED.nodes.registerType('evcm-cnf', EvcmCnfNode);
};
