import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { z } from 'zod';
import { handleCnf, handleSimPage, MAX_BODY_BYTES, type CnfResponse } from '../lib/cnf';
import { cnfContextOf } from './shared/cnf';
import { getManager } from './shared/types';

interface CnfNodeDef extends NodeDef {
    manager: string;
    path?: string;
}

const ConfigSchema = z.object({
    manager: z.string().min(1),
    path: z
        .string()
        .regex(
            /^\/[A-Za-z0-9_\-./]{0,100}$/,
            'path must start with / and hold only A-Z a-z 0-9 _ - . /',
        )
        .default('/cnf'),
});

type Req = IncomingMessage & { originalUrl?: string; url: string; body?: unknown };
type Handler = (req: Req, res: ServerResponse, next: (err?: unknown) => void) => void;
interface Layer {
    route?: { path: string; stack: { handle: unknown }[] };
}

const SIM_PAGE = '/ui/en/sim.htm';

/**
 * With the editor and the nodes on the same root, Node-RED's editor API parses every JSON body
 * first, and one it cannot parse ends in Express's HTML error page (a stack trace outside
 * production) before /cnf sees it. Marking a request for our path as parsed (the body parsers'
 * own flag) leaves its body to /cnf, which answers every body as the vendor's API does.
 */
function claimBodiesOf(fullPath: string): (req: IncomingMessage) => void {
    return (req) => {
        const url = req.url ?? '';
        const q = url.indexOf('?');
        if ((q >= 0 ? url.slice(0, q) : url) === fullPath) {
            (req as IncomingMessage & { _body?: boolean })._body = true;
        }
    };
}

/** The raw body, at most MAX_BODY_BYTES + 1 bytes kept (enough to see it is too large). */
function readBody(req: Req): Promise<string | undefined> {
    if (typeof req.body === 'string') return Promise.resolve(req.body);
    if (Buffer.isBuffer(req.body)) return Promise.resolve(req.body.toString('utf8'));
    if (req.body && typeof req.body === 'object' && Object.keys(req.body).length) {
        return Promise.resolve(JSON.stringify(req.body));
    }
    if (req.readableEnded) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (c: Buffer) => {
            if (size <= MAX_BODY_BYTES) chunks.push(c);
            size += c.length;
        });
        req.on('end', () => resolve(size ? Buffer.concat(chunks).toString('utf8') : undefined));
        req.on('error', reject);
    });
}

function send(res: ServerResponse, r: CnfResponse, head: boolean): void {
    res.writeHead(r.status, { ...r.headers, 'Content-Length': Buffer.byteLength(r.body) });
    res.end(head ? undefined : r.body);
}

export = function (RED: NodeAPI) {
    function EvcmCnfNode(this: Node, def: CnfNodeDef) {
        RED.nodes.createNode(this, def);
        const parsed = ConfigSchema.safeParse(def);
        if (!parsed.success) {
            this.error(
                RED._('evcm-cnf.errors.bad-config', {
                    error: parsed.error.issues[0]?.message ?? '',
                }),
            );
            this.status({ fill: 'red', shape: 'ring', text: 'evcm-cnf.status.error' });
            return;
        }
        const { path } = parsed.data;
        const manager = getManager(RED, parsed.data.manager);
        const app = RED.httpNode as unknown as
            Record<string, (...a: unknown[]) => void> | undefined;
        if (!manager?.site || !app) {
            this.error(RED._(app ? 'evcm-cnf.errors.missing-config' : 'evcm-cnf.errors.no-http'));
            this.status({ fill: 'red', shape: 'ring', text: 'evcm-cnf.status.error' });
            return;
        }
        const ctx = cnfContextOf(manager, manager.site);
        // Requests wait until the manager has applied its stored settings.
        const ready = manager.ready ?? Promise.resolve();
        const onCnf: Handler = (req, res, next) => {
            Promise.all([readBody(req), ready])
                .then(([body]) => {
                    const url = req.originalUrl ?? req.url;
                    const q = url.indexOf('?');
                    return handleCnf(
                        {
                            method: req.method ?? 'GET',
                            query: q >= 0 ? url.slice(q + 1) : '',
                            body,
                            remoteAddress: req.socket.remoteAddress,
                            authorization: req.headers.authorization,
                        },
                        ctx,
                    );
                })
                .then((r) => send(res, r, req.method === 'HEAD'))
                .catch(next);
        };
        const onSimPage: Handler = (req, res, next) => {
            ready
                .then(() =>
                    handleSimPage(
                        {
                            remoteAddress: req.socket.remoteAddress,
                            authorization: req.headers.authorization,
                        },
                        ctx,
                    ),
                )
                .then((r) => send(res, r, false))
                .catch(next);
        };
        const settings = RED.settings as unknown as { httpNodeMiddleware?: Handler | Handler[] };
        const mw = settings.httpNodeMiddleware;
        const chain: Handler[] = typeof mw === 'function' ? [mw] : Array.isArray(mw) ? mw : [];
        const handlers = new Set<unknown>([onCnf, onSimPage]);
        app.get!(path, ...chain, onCnf);
        app.post!(path, ...chain, onCnf);
        app.get!(SIM_PAGE, ...chain, onSimPage);
        const nodeRoot = String(
            (RED.settings as unknown as { httpNodeRoot?: unknown }).httpNodeRoot || '/',
        ).replace(/\/$/, '');
        const server = (RED as unknown as { server?: Server }).server;
        const claimBodies = claimBodiesOf(nodeRoot + path);
        server?.prependListener('request', claimBodies);
        this.status({ fill: 'green', shape: 'dot', text: path });
        void ready.then(() => {
            if (manager.storeProblem) {
                this.status({ fill: 'yellow', shape: 'dot', text: `${path}: store problem` });
            }
        });

        this.on('close', (_removed: boolean, done: () => void) => {
            server?.off('request', claimBodies);
            try {
                // Express 4 keeps routes in _router.stack, Express 5 in router.stack.
                const router = (app._router ?? app.router) as unknown as
                    { stack?: Layer[] } | undefined;
                const stack = router?.stack ?? [];
                for (let i = stack.length - 1; i >= 0; i--) {
                    const route = stack[i]!.route;
                    if (route && route.stack.some((l) => handlers.has(l.handle)))
                        stack.splice(i, 1);
                }
            } catch (err) {
                this.warn(err);
            }
            done();
        });
    }
    RED.nodes.registerType('evcm-cnf', EvcmCnfNode);
};
