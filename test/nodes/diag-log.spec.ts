// set_diag_logging in the real Node-RED runtime: the manager writes every cycle to a file under
// the user directory, says so in Node-RED's log, and the file holds one JSON entry per cycle.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import supertest from 'supertest';
import type { DiagEntry } from '../../lib/cnf/diag-log';
import cnfNode = require('../../nodes/evcm-cnf');
import managerNode = require('../../nodes/evcm-manager');
import { nextCall, type HelperNode } from '../support/node-red';

helper.init(require.resolve('node-red'));

type App = Parameters<typeof supertest>[0];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('diagnostic log in Node-RED', function () {
    this.timeout(20_000);
    let userDir: string;
    before(() => {
        userDir = mkdtempSync(join(tmpdir(), 'evcm-diag-red-'));
        helper.settings({ userDir });
    });
    after(() => {
        helper.settings({});
        rmSync(userDir, { recursive: true, force: true });
    });
    afterEach(() => helper.unload());

    it('writes one JSON line per cycle under the user directory while on', async () => {
        let app: App | undefined;
        const capture = (RED: { httpNode: App }) => {
            app = RED.httpNode;
        };
        await helper.load(
            [capture, managerNode, cnfNode] as unknown as Parameters<typeof helper.load>[0],
            [
                {
                    id: 'diagm',
                    type: 'evcm-manager',
                    max_total_current: '32000',
                    cycle_ms: '200',
                    devices: JSON.stringify([
                        { dev_type: 'evse_sim', dev_id: 'E1' },
                        { dev_type: 'meter_sim', dev_id: 'M1', role: 3 },
                    ]),
                },
                { id: 'c1', type: 'evcm-cnf', manager: 'diagm', path: '/cnf' },
            ] as unknown as Parameters<typeof helper.load>[1],
        );
        const manager = helper.getNode('diagm') as unknown as HelperNode;
        const file = join(userDir, 'evcm-charging-manager', 'diagm.diag.jsonl');
        const told = nextCall(manager, 'log' as 'warn', (a) =>
            String(a[0]).includes('diagnostic log on for 5 minutes: '),
        );
        await supertest(app!).get('/cnf?cmd=set_diag_logging&enable=1').expect(200, '"ok"');
        await told;
        await sleep(900);
        await supertest(app!).get('/cnf?cmd=set_diag_logging&enable=0').expect(200, '"ok"');
        await sleep(100);
        assert.ok(existsSync(file), file);
        const entries = readFileSync(file, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as DiagEntry);
        assert.ok(entries.length >= 3, `${entries.length} entries`);
        assert.ok(entries.every((e) => e.decisions.E1 && e.inputs.M1));
        const size = readFileSync(file).length;
        await sleep(300);
        assert.equal(readFileSync(file).length, size, 'nothing written after enable=0');
    });
});
