// Values that clients (the Home Assistant integration, ioBroker, scripts) display from
// get_dev_info: used_phases, desc, the serial in model, max_total_evse_power. A Site drives
// simulated Power Brains over Modbus TCP on loopback; expected values come from the simulated
// cars, from what an independent Modbus client reads from the devices, and from the parameters.
import assert from 'node:assert/strict';
import { CnfContext } from '../../../lib/cnf/context';
import { handleCnf, type CnfRequest } from '../../../lib/cnf/handle';
import { BusPool } from '../../../lib/modbus/pool';
import { PowerBrainSim } from '../../../lib/sim/powerbrain-sim';
import { Site } from '../../../lib/site/site';
import { registers, sleep } from '../../support/modbus';
import { TEST_SCRYPT } from '../../support/cnf';

type Json = Record<string, unknown>;

/** The cars behind the three wallboxes. */
const CARS = [3, 1, 3] as const;

/** A string register (two characters per word, high byte first, NUL padded). */
function text(words: number[]): string {
    return String.fromCharCode(...words.flatMap((w) => [w >> 8, w & 0xff]))
        .split('\0')[0]!
        .trim();
}

describe('cnf: get_dev_info values clients display', function () {
    this.timeout(30_000);
    const sims: PowerBrainSim[] = [];
    let pool: BusPool;
    let site: Site;
    let ctx: CnfContext;

    before(async () => {
        for (const phases of CARS) {
            const sim = new PowerBrainSim({
                port: 0,
                plugged: true,
                defaultEnable: false,
                car: { batteryWh: 60_000, soc: 0.3, maxCurrent: 10_000, phases, followMs: 0 },
            });
            await sim.start();
            sims.push(sim);
        }
        pool = new BusPool({ timeoutMs: 1000 });
        const at = (i: number) => `127.0.0.1:${sims[i]!.ports.evse}`;
        site = new Site({
            params: {
                max_total_current: 25_000,
                reserve_current: 4000,
                voltage: 230,
                min_pause_time: 0,
                increase_hold_time: 0,
            },
            devices: [
                // Phases not configured: learned from what the car draws.
                { dev_type: 'evse_powerbrain', dev_id: 'E1', address: at(0), id: 1 },
                // A single-phase car on a wallbox wired with 120°: learned on the wallbox's L1.
                {
                    dev_type: 'evse_powerbrain',
                    dev_id: 'E2',
                    address: at(1),
                    id: 1,
                    phase_rotation: 120,
                },
                // Configured: that stays, and a description set by the user stays too.
                {
                    dev_type: 'evse_powerbrain',
                    dev_id: 'E3',
                    address: at(2),
                    id: 1,
                    used_phases: 3,
                    desc: 'Garage left',
                },
                {
                    dev_type: 'meter_powerbrain',
                    dev_id: 'M1',
                    address: `127.0.0.1:${sims[0]!.ports.meter1}`,
                    id: 2,
                },
            ],
            pool,
        });
        ctx = new CnfContext(site, { scrypt: TEST_SCRYPT });
    });

    after(async () => {
        await site.stop();
        await pool.close();
        for (const sim of sims) await sim.close();
    });

    const devInfo = async (): Promise<{ params: Json; devices: Json[] }> => {
        const res = await handleCnf(
            {
                method: 'GET',
                remoteAddress: '127.0.0.1',
                query: { cmd: 'get_dev_info' },
            } as CnfRequest,
            ctx,
        );
        assert.equal(res.status, 200);
        return JSON.parse(res.body) as { params: Json; devices: Json[] };
    };
    const device = (info: { devices: Json[] }, id: string) =>
        info.devices.find((d) => d.dev_id === id)!;

    it('used_phases: the phases learned from the car, else the configured ones; forgotten on unplug', async () => {
        const before = await devInfo();
        assert.equal(device(before, 'E1').used_phases, 0, 'nothing learned yet: "determine"');
        for (let i = 0; i < 20; i++) {
            await site.manager.runCycle();
            if (sims.every((s) => s.state.currents.some((c) => c > 0))) break;
            await sleep(50);
        }
        await site.manager.runCycle();
        const info = await devInfo();
        // Learned on the wallbox's own phases: a car on n phases uses L1..Ln.
        assert.equal(device(info, 'E1').used_phases, (1 << CARS[0]) - 1);
        assert.equal(device(info, 'E2').used_phases, (1 << CARS[1]) - 1);
        assert.equal(device(info, 'E3').used_phases, 3, 'configured');
        sims[0]!.unplug();
        await site.manager.runCycle();
        assert.equal(device(await devInfo(), 'E1').used_phases, 0, 'a new car is learned anew');
        sims[0]!.plug();
    });

    it('desc is what the device reports itself to be; each simulator has its own serial', async () => {
        await site.manager.runCycle();
        const info = await devInfo();
        const serials: string[] = [];
        for (let i = 0; i < sims.length; i++) {
            const port = sims[i]!.ports.evse;
            const name = text(await registers(port, 8016, 16));
            const serial = text(await registers(port, 8008, 8));
            serials.push(serial);
            const d = device(info, `E${i + 1}`);
            assert.equal(d.desc, i === 2 ? 'Garage left' : name);
            assert.equal(String(d.model).split(',')[0], name);
            assert.equal(String(d.model).split(',').at(-1), serial, 'model ends with the serial');
            // The S0 meters of one Power Brain report the same serial as its EVSE.
            assert.equal(text(await registers(sims[i]!.ports.meter1, 8008, 8, 2)), serial);
        }
        assert.equal(new Set(serials).size, sims.length, `serials ${serials.join(' ')}`);
        const m1 = device(info, 'M1');
        assert.equal(
            m1.desc,
            `${text(await registers(sims[0]!.ports.meter1, 8016, 16, 2))}, S0 meter 1`,
        );
    });

    it('max_total_evse_power: the wallboxes’ limit per phase × voltage × 3 phases', async () => {
        const watts = (mA: number) => Math.round((mA * 230 * 3) / 1000);
        // No feeder limit of their own: what the grid connection leaves them.
        let params = (await devInfo()).params;
        assert.equal(params.max_total_evse_power, watts(25_000 - 4000));
        site.setParams({ max_total_evse_current: 16_000 });
        params = (await devInfo()).params;
        assert.equal(params.max_total_evse_power, watts(16_000));
        assert.equal(params.max_total_evse_power, 11_040, 'the vendor’s figure for 16 A');
        site.setParams({ max_total_evse_current: 0, max_total_cur_prc: 50 });
        params = (await devInfo()).params;
        assert.equal(params.max_total_evse_power, watts(25_000 / 2 - 4000));
        site.setParams({ max_total_cur_prc: 100 });
    });
});
