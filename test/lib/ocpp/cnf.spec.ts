// The /cnf API with an OCPP wallbox: its model comes from the boot, its password is never shown.
import assert from 'node:assert/strict';
import { CnfContext } from '../../../lib/cnf/context';
import { handleCnf, type CnfRequest } from '../../../lib/cnf/handle';
import { OcppCentralSystem } from '../../../lib/ocpp/central-system';
import { Site } from '../../../lib/site/site';
import { ADMIN, ADMIN_PASSWORD, TEST_SCRYPT } from '../../support/cnf';
import { TestChargePoint } from '../../support/ocpp-client';

describe('/cnf with an evse_ocpp wallbox', () => {
    let cs: OcppCentralSystem | undefined;
    let site: Site | undefined;
    let c: TestChargePoint | undefined;

    afterEach(async () => {
        await c?.close().catch(() => undefined);
        await site?.stop();
        await cs?.close();
        c = undefined;
        site = undefined;
        cs = undefined;
    });

    it('get_dev_info shows the boot model; get_devices and get_dev_info never show the password', async () => {
        cs = new OcppCentralSystem();
        const { port } = await cs.listen({ host: '127.0.0.1', port: 0 });
        site = new Site({
            devices: [
                {
                    dev_type: 'evse_ocpp',
                    dev_id: 'E1',
                    address: 'WB-7',
                    id: 1,
                    ocpp_password: 'very-secret',
                },
            ],
            ocpp: cs,
        });
        const ctx = new CnfContext(site, { scrypt: TEST_SCRYPT, adminPassword: ADMIN_PASSWORD });
        await ctx.auth.password.ready();
        const call = async (query: string) => {
            const r = await handleCnf(
                {
                    method: 'GET',
                    remoteAddress: '127.0.0.1',
                    query,
                    authorization: ADMIN,
                } as CnfRequest,
                ctx,
            );
            assert.equal(r.status, 200, r.body);
            return r.body;
        };
        c = new TestChargePoint({
            url: `ws://127.0.0.1:${port}/`,
            identity: 'WB-7',
            password: 'very-secret',
        });
        await c.connect();
        await c.boot();
        await c.status(1, 'Available');
        await site.manager.runCycle();
        const info = JSON.parse(await call('cmd=get_dev_info')) as {
            devices: { dev_id: string; model: string; state: number }[];
        };
        const e1 = info.devices.find((d) => d.dev_id === 'E1')!;
        assert.equal(e1.model, 'Acme Box,,,SN1');
        assert.equal(e1.state, 1);
        const devices = await call('cmd=get_devices');
        assert.ok(JSON.parse(devices).some((d: { dev_id: string }) => d.dev_id === 'E1'));
        for (const body of [devices, JSON.stringify(info)]) {
            assert.ok(!body.includes('ocpp_password'), 'no password field');
            assert.ok(!body.includes('scrypt$'), 'no hash');
            assert.ok(!body.includes('very-secret'));
        }
    });

    it('an evse_ocpp wallbox without a central system shows offline', async () => {
        site = new Site({ devices: [{ dev_type: 'evse_ocpp', dev_id: 'E1', address: 'WB-8' }] });
        const ctx = new CnfContext(site, { scrypt: TEST_SCRYPT });
        await site.manager.runCycle();
        const r = await handleCnf(
            { method: 'GET', remoteAddress: '127.0.0.1', query: 'cmd=get_dev_info' } as CnfRequest,
            ctx,
        );
        const info = JSON.parse(r.body) as { devices: { dev_id: string; state: number }[] };
        assert.equal(info.devices.find((d) => d.dev_id === 'E1')?.state, 6);
    });
});
