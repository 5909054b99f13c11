// The evcm-ocpp config node and the evcm-ocpp-in node in Node-RED (test helper with a real HTTP
// server on 127.0.0.1): a simulated charge point connects under /ocpp/ on Node-RED's own port or
// on the node's own port, is controlled by the manager that names the node, and every OCPP
// message reaches the flow. A redeploy lets go of the port and the upgrade listener, and the
// charge point connects again.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import { freePort } from '../../lib/sim/powerbrain-sim';
import { OcppChargePointSim } from '../../lib/sim/ocpp-sim';
import type { OcppFlowPayload } from '../../lib/nodes-support/ocpp';
import type { ManagerNode } from '../../nodes/shared/types';
import { allNodes, errors, manager, sleep, type Flow, type HelperNode } from '../support/node-red';
import { selfSignedCert } from '../support/tls';

helper.init(require.resolve('node-red'));
const tlsNode = require('@node-red/nodes/core/network/05-tls.js') as never;

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
        await sleep(50);
    }
}

const DEVICE = {
    dev_type: 'evse_ocpp',
    dev_id: 'E9',
    address: 'CP-42',
    id: 1,
    max_charging_cur: 16000,
    fail_safe_cur: 6000,
};

function flow(ocpp: Record<string, unknown> = {}, devices: unknown[] = [DEVICE]): Flow {
    return [
        { id: 'tab', type: 'tab' },
        { id: 'ocpp', type: 'evcm-ocpp', path: '/ocpp/', ...ocpp },
        manager('mgr', devices, { ocpp: 'ocpp', max_total_current: '10000' }),
        { id: 'in', type: 'evcm-ocpp-in', z: 'tab', ocpp: 'ocpp', wires: [['out']] },
        { id: 'out', type: 'helper', z: 'tab' },
    ] as unknown as Flow;
}

describe('evcm-ocpp and evcm-ocpp-in in Node-RED', function () {
    this.timeout(30_000);
    const sims: OcppChargePointSim[] = [];
    let port = 0;

    before(async () => {
        await helper.startServer();
        port = Number(new URL(helper.url()).port);
    });
    after(async () => {
        await helper.stopServer();
    });
    afterEach(async () => {
        for (const s of sims.splice(0)) await s.close();
        await helper.unload();
    });

    function sim(
        url: string,
        extra: Partial<ConstructorParameters<typeof OcppChargePointSim>[0]> = {},
    ) {
        const s = new OcppChargePointSim({
            url,
            identity: 'CP-42',
            plugged: true,
            meterValueInterval: 1,
            reconnect: { initialDelayMs: 100, maxDelayMs: 300 },
            ...extra,
        });
        sims.push(s);
        return s;
    }

    const siteOf = () => (helper.getNode('mgr') as unknown as ManagerNode).site!;

    it("controls a charge point on Node-RED's own port, sends its messages to the flow, and connects again after a redeploy", async () => {
        await helper.load(allNodes(), flow());
        const server = (helper as unknown as { _server: Server })._server;
        const upgradeListeners = server.listenerCount('upgrade');
        const out = helper.getNode('out') as unknown as HelperNode;
        const seen: { topic: string; payload: OcppFlowPayload }[] = [];
        out.on('input', (m: { topic: string; payload: OcppFlowPayload }) => seen.push(m));

        const cp = sim(`ws://127.0.0.1:${port}/ocpp`, { protocol: 'ocpp2.0.1' });
        await cp.start();
        await until('boot', 5000, () => cp.state.booted);
        assert.ok(await cp.presentCard('1234'), 'the card is accepted (no users: anybody)');
        await until('the profile follows the setpoint', 5000, () => {
            const sp = siteOf().manager.lastCycle?.result.setpoints.get('E9');
            return !!sp && sp.current > 0 && cp.state.effectiveLimit === sp.current;
        });
        await until('a TransactionEvent message in the flow', 5000, () =>
            seen.some((m) => m.payload.action === 'TransactionEvent'),
        );
        const boot = seen.find((m) => m.payload.action === 'BootNotification')!;
        assert.equal(boot.topic, 'CP-42');
        assert.equal(boot.payload.direction, 'in');
        assert.equal(boot.payload.type, 'call');
        assert.equal(boot.payload.protocol, 'ocpp2.0.1');
        assert.equal(
            (boot.payload.params as { chargingStation: { model: string } }).chargingStation
                .model !== undefined,
            true,
        );
        assert.ok(
            seen.every((m) => m.payload.direction === 'in'),
            'only what the charge point sent',
        );
        // The answers to the central system's calls come from the charge point too.
        assert.ok(
            seen.some(
                (m) => m.payload.type === 'result' && m.payload.action === 'SetChargingProfile',
            ),
            'the answers name the action of their call',
        );

        // A full redeploy: the old central system lets go, the charge point connects again.
        const before = cp.state.received.SetChargingProfile ?? 0;
        await helper.setFlows(flow({ name: 'edited' }), 'full');
        assert.equal(server.listenerCount('upgrade'), upgradeListeners, 'one upgrade listener');
        await until('reconnected and controlled again', 10_000, () => {
            return cp.state.booted && (cp.state.received.SetChargingProfile ?? 0) > before + 1;
        });
        await helper.unload();
        assert.equal(server.listenerCount('upgrade'), upgradeListeners - 1, 'listener removed');
    });

    it('serves its own port, refuses an unknown or unauthenticated charge point, and frees the port on redeploy', async () => {
        const own = await freePort();
        const config = { port: String(own), host: '127.0.0.1' };
        await helper.load(allNodes(), flow(config), { ocpp: { passwords: 'CP-42 s3cret\n' } });
        const wrong = sim(`ws://127.0.0.1:${own}`, { password: 'wrong' });
        const stranger = sim(`ws://127.0.0.1:${own}`, { identity: 'CP-7' });
        const right = sim(`ws://127.0.0.1:${own}`, { password: 's3cret', protocol: 'ocpp1.6' });
        await Promise.all([wrong.start(), stranger.start(), right.start()]);
        await until('the one with the password boots', 5000, () => right.state.booted);
        await sleep(300);
        assert.equal(wrong.state.connected, false, 'a wrong password is refused');
        assert.equal(stranger.state.connected, false, 'an unknown identity is refused');
        await wrong.close();
        await stranger.close();
        await until('the fail-safe and control profiles', 5000, () =>
            [1, 2].every((id) => right.state.profiles.some((p) => p.id === id)),
        );

        await helper.setFlows(flow({ ...config, name: 'again' }), 'full', {
            ocpp: { passwords: 'CP-42 s3cret' },
        } as never);
        await until('connected again on the same port', 10_000, () => {
            return (
                right.state.booted &&
                siteOf().manager.lastCycle?.result.setpoints.has('E9') === true
            );
        });
        for (const id of ['ocpp', 'mgr', 'in']) {
            assert.deepEqual(errors(helper.getNode(id) as unknown as HelperNode), [], id);
        }
    });

    it('with "accept new charge points" an unknown identity is let in and listed as pending', async () => {
        await helper.load(allNodes(), flow({ acceptnew: true }, []));
        const out = helper.getNode('out') as unknown as HelperNode;
        const seen: { topic: string; payload: OcppFlowPayload }[] = [];
        out.on('input', (m: { topic: string; payload: OcppFlowPayload }) => seen.push(m));
        const cp = sim(`ws://127.0.0.1:${port}/ocpp`, { identity: 'NEW-1' });
        await cp.start();
        await until('its boot reaches the flow', 5000, () =>
            seen.some((m) => m.topic === 'NEW-1' && m.payload.action === 'BootNotification'),
        );
        const central = (
            helper.getNode('ocpp') as unknown as { central: { pending: { identity: string }[] } }
        ).central;
        assert.deepEqual(
            central.pending.map((p) => p.identity),
            ['NEW-1'],
        );
        assert.equal(cp.state.booted, false, 'answered Pending until adopted');
    });
    it('speaks wss on its own port with the certificate of a tls-config node (security profile 2)', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'evcm-ocpp-tls-'));
        try {
            const { cert, key } = selfSignedCert(dir);
            const own = await freePort();
            const nodes = [
                ...(flow({
                    port: String(own),
                    host: '127.0.0.1',
                    usetls: true,
                    tls: 't1',
                }) as unknown[]),
                { id: 't1', type: 'tls-config', cert, key, ca: '', verifyservercert: true },
            ];
            await helper.load(
                [...(allNodes() as never[]), tlsNode],
                nodes as unknown as Flow,
                {
                    ocpp: { passwords: 'CP-42 s3cret' },
                } as never,
            );
            const plain = sim(`ws://127.0.0.1:${own}`, { password: 's3cret' });
            const secure = sim(`wss://127.0.0.1:${own}`, {
                password: 's3cret',
                tls: { ca: readFileSync(cert), rejectUnauthorized: true },
            });
            await Promise.all([plain.start(), secure.start()]);
            await until('boot over wss', 5000, () => secure.state.booted);
            assert.equal(plain.state.connected, false, 'no plain WebSocket on a TLS port');
            await until('controlled over wss', 5000, () => secure.state.limitProfileId === 2);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
