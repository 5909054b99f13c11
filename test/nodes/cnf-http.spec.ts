// /cnf on a real Node-RED whose editor and nodes share the root path: a body that Node-RED's
// editor API cannot parse as JSON still gets the /cnf answer (JSON, 400), never an HTML page
// with a stack trace; and the answer goes away with the node.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

interface Reply {
    status: number;
    type: string;
    text: string;
}

function post(base: string, path: string, body: string, contentType: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
        const req = request(
            new URL(path, base),
            { method: 'POST', agent: false, headers: { 'Content-Type': contentType } },
            (res) => {
                let text = '';
                res.setEncoding('utf8');
                res.on('data', (c: string) => (text += c));
                res.on('end', () =>
                    resolve({
                        status: res.statusCode ?? 0,
                        type: String(res.headers['content-type'] ?? ''),
                        text,
                    }),
                );
            },
        );
        req.on('error', reject);
        req.end(body);
    });
}

const flows = [
    { id: 'tab1', type: 'tab', label: 'Site' },
    {
        id: 'mgr1',
        type: 'evcm-manager',
        name: 'Site',
        max_total_current: '32000',
        devices: JSON.stringify([{ dev_type: 'evse_sim', dev_id: 'E1' }]),
    },
    { id: 'cnf1', type: 'evcm-cnf', z: 'tab1', manager: 'mgr1', path: '/cnf', wires: [] },
];

describe('evcm-cnf behind Node-RED’s own body parser', function () {
    this.timeout(60_000);
    let red: NodeRedProcess | undefined;
    before(async () => {
        red = await startNodeRed(flows);
    });
    after(async () => {
        await red?.stop();
    });

    it('answers a malformed JSON body with the /cnf error, whatever the Content-Type', async () => {
        const bad = '{"title": "x", ';
        for (const type of ['application/json', 'text/plain']) {
            const r = await post(red!.url, 'cnf?cmd=set_params', bad, type);
            assert.equal(r.status, 400, `${type}: ${r.text}`);
            assert.match(r.type, /application\/json/, `${type}: ${r.text.slice(0, 200)}`);
            assert.equal(r.text, '"body is not valid JSON"', type);
        }
        const good = await post(
            red!.url,
            'cnf?cmd=set_params',
            JSON.stringify({ title: 'fine' }),
            'application/json',
        );
        assert.equal(good.status, 200, good.text);
    });

    it('leaves other paths to Node-RED', async () => {
        const r = await post(red!.url, 'elsewhere', '{"x": ', 'application/json');
        assert.equal(r.status, 400);
        assert.doesNotMatch(r.text, /body is not valid JSON"$/);
    });
});
