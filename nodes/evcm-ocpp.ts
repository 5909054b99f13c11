// The OCPP central system as a config node, shared by the managers that name it (like a Modbus
// bus): charge points connect under a path on Node-RED's own HTTP server and, optionally, on a
// port of its own (with TLS from a tls-config node). Closing lets go of both.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { NodeAPI, NodeDef } from 'node-red';
import { z } from 'zod';
import { OcppCentralSystem, type ListenOptions } from '../lib/ocpp/central-system';
import { parsePasswords, relayOcppMessages, type OcppFlowPayload } from '../lib/nodes-support/ocpp';
import { Events } from '../lib/core/events';
import type { OcppNode } from './shared/types';
import { ownListenerFields, servedPath } from './shared/listener';

interface OcppNodeDef extends NodeDef {
    path?: string;
    host?: string;
    port?: string | number;
    usetls?: boolean;
    tls?: string;
    acceptnew?: boolean;
}

const ConfigSchema = z.object({
    path: servedPath('/ocpp/'),
    ...ownListenerFields,
    acceptnew: z.boolean().default(false),
});

interface TlsConfigNode {
    addTLSOptions(opts: Record<string, unknown>): Record<string, unknown>;
}

export = function (RED: NodeAPI) {
    function EvcmOcppNode(this: OcppNode, def: OcppNodeDef) {
        RED.nodes.createNode(this, def);
        this.evcmOcpp = true;
        this.central = null;
        this.messages = new Events<{ message: { identity: string; payload: OcppFlowPayload } }>();
        const parsed = ConfigSchema.safeParse(def);
        if (!parsed.success) {
            this.error(
                RED._('evcm-ocpp.errors.bad-config', {
                    error: parsed.error.issues[0]?.message ?? '',
                }),
            );
            return;
        }
        const { path, port, host, acceptnew } = parsed.data;
        const credentials = (this as unknown as { credentials?: { passwords?: string } })
            .credentials;
        let passwords: Map<string, string>;
        try {
            passwords = parsePasswords(credentials?.passwords ?? '');
        } catch (err) {
            this.error(RED._('evcm-ocpp.errors.bad-config', { error: (err as Error).message }));
            return;
        }
        let listen: ListenOptions | null = null;
        if (port !== '') {
            listen = { port, ...(host ? { host } : {}) };
            if (parsed.data.usetls) {
                const tls = RED.nodes.getNode(parsed.data.tls) as unknown as TlsConfigNode | null;
                const o = tls?.addTLSOptions({}) ?? {};
                if (!o.cert || !o.key) {
                    this.error(RED._('evcm-ocpp.errors.no-tls'));
                    return;
                }
                listen.tls = { cert: o.cert as string, key: o.key as string };
            }
        }
        // Under Node-RED's httpNodeRoot, as its HTTP nodes are.
        const nodeRoot = String(
            (RED.settings as unknown as { httpNodeRoot?: unknown }).httpNodeRoot || '/',
        ).replace(/\/$/, '');
        const central = new OcppCentralSystem({ path: nodeRoot + path, acceptNew: acceptnew });
        this.central = central;
        // Hashed at once: the plain passwords are not kept in the session.
        for (const [identity, password] of passwords) {
            central.addChargePoint(identity, { password });
        }
        const offRelay = relayOcppMessages(central, (identity, payload) =>
            this.messages.emit('message', { identity, payload }),
        );

        const server = (RED as unknown as { server?: Server }).server;
        // Only paths under the prefix are taken; the editor's and other nodes' WebSockets are not.
        const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
            central.handleUpgrade(req, socket, head);
        };
        server?.on('upgrade', onUpgrade);
        let listening: Promise<unknown> = Promise.resolve();
        if (listen) {
            const where = `${host || '*'}:${port}`;
            listening = central.listen(listen).then(
                () =>
                    this.log(
                        RED._('evcm-ocpp.status.listening', {
                            where,
                            tls: listen.tls ? 'wss' : 'ws',
                        }),
                    ),
                (err: NodeJS.ErrnoException) =>
                    this.error(
                        RED._('evcm-ocpp.errors.listen', {
                            error: `${where}: ${err.code ?? err.message}`,
                        }),
                    ),
            );
        }

        this.on('close', (_removed: boolean, done: () => void) => {
            server?.off('upgrade', onUpgrade);
            offRelay();
            // The port is free before the next deploy's node listens on it.
            void listening
                .then(() => central.close())
                .catch((err: unknown) => this.warn(err))
                .finally(done);
        });
    }

    RED.nodes.registerType('evcm-ocpp', EvcmOcppNode as never, {
        credentials: { passwords: { type: 'password' } },
    });
};
