// An MQTT broker in this process (aedes) on 127.0.0.1 and a random port, for tests that run the
// core mqtt nodes and a real MQTT client against it.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TestBroker {
    port: number;
    url: string;
    /** Resolves once a connected client has subscribed to `topic` (exactly this filter). */
    subscribed(topic: string, timeoutMs?: number): Promise<void>;
    close(): Promise<void>;
}

export async function startBroker(): Promise<TestBroker> {
    // aedes is an ES module: imported at run time from this CommonJS build.
    const { Aedes } = await import('aedes');
    const broker = await Aedes.createBroker();
    const sockets = new Set<Socket>();
    const server: Server = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        broker.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    // Subscriptions of the clients connected now.
    const seen = new Map<string, Set<string>>();
    broker.on('subscribe', (subs, client) => {
        const topics = seen.get(client.id) ?? new Set<string>();
        subs.forEach((s) => topics.add(s.topic));
        seen.set(client.id, topics);
    });
    broker.on('clientDisconnect', (client) => seen.delete(client.id));
    const anyOf = (topic: string) => [...seen.values()].some((t) => t.has(topic));
    return {
        port,
        url: `mqtt://127.0.0.1:${port}`,
        async subscribed(topic, timeoutMs = 5000) {
            const until = Date.now() + timeoutMs;
            while (!anyOf(topic)) {
                if (Date.now() > until) throw new Error(`nobody subscribed to ${topic}`);
                await new Promise((r) => setTimeout(r, 20));
            }
        },
        async close() {
            for (const s of sockets) s.destroy();
            await new Promise<void>((r) => server.close(() => r()));
            await new Promise<void>((r) => broker.close(() => r()));
        },
    };
}
