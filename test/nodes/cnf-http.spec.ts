// /cnf on a real Node-RED whose editor and nodes share the root path: a body that Node-RED's
// editor API cannot parse (malformed, nested too deeply, in another charset) still gets the /cnf
// answer (JSON), never an HTML page with a stack trace; so do other methods and paths written
// with repeated slashes or capitals. A fuzz of raw requests checks every answer on the API's
// paths.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { startNodeRed, type NodeRedProcess } from '../support/node-red-process';

interface Reply {
    status: number;
    type: string;
    text: string;
}

function send(
    base: string,
    path: string,
    options: {
        method?: string;
        body?: string | Buffer;
        contentType?: string;
        agent?: Agent | false;
    } = {},
): Promise<Reply & { allow: string }> {
    return new Promise((resolve, reject) => {
        // The path as written: no URL normalisation of repeated slashes.
        const url = new URL(base);
        const req = request(
            {
                host: url.hostname,
                port: url.port,
                path,
                method: options.method ?? 'POST',
                agent: options.agent ?? false,
                headers: {
                    ...(options.contentType ? { 'Content-Type': options.contentType } : {}),
                    ...(options.body !== undefined
                        ? { 'Content-Length': Buffer.byteLength(options.body) }
                        : {}),
                },
            },
            (res) => {
                let text = '';
                res.setEncoding('utf8');
                res.on('data', (c: string) => (text += c));
                res.on('end', () =>
                    resolve({
                        status: res.statusCode ?? 0,
                        type: String(res.headers['content-type'] ?? ''),
                        allow: String(res.headers.allow ?? ''),
                        text,
                    }),
                );
            },
        );
        req.on('error', reject);
        req.end(options.body);
    });
}

function post(base: string, path: string, body: string, contentType: string): Promise<Reply> {
    return send(base, `/${path}`, { body, contentType });
}

/** An answer of the API: JSON, and an error is a short string without a stack. */
function assertApiAnswer(r: Reply, where: string, head = false): void {
    assert.ok(r.status < 500 || r.status === 502 || r.status === 504, `${where}: ${r.status}`);
    if (head) return;
    // Node-RED's own CORS handler answers preflights (OPTIONS) on every node path, empty.
    if (r.status === 204 && r.text === '') return;
    assert.match(r.type, /application\/json/, `${where}: ${r.type} ${r.text.slice(0, 300)}`);
    const value: unknown = JSON.parse(r.text);
    if (r.status >= 400) {
        assert.equal(typeof value, 'string', where);
        assert.ok((value as string).length < 300, where);
        assert.doesNotMatch(value as string, /\n\s+at |<html|<pre|Error:/i, where);
    }
}

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);

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

    it('answers a body nested too deeply with a 400, on /CNF as on /cnf', async () => {
        for (const path of ['/cnf', '/CNF', '//Cnf/']) {
            for (const body of [
                nested(30_000),
                '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000),
                `{"title":"x","devices":${nested(40)}}`,
            ]) {
                const r = await send(red!.url, `${path}?cmd=set_params`, {
                    body,
                    contentType: 'application/json',
                });
                assertApiAnswer(r, path);
                assert.deepEqual(
                    [r.status, JSON.parse(r.text)],
                    [400, 'body is nested deeper than 32 levels'],
                    path,
                );
            }
        }
    });

    it('reads a body in the charset its Content-Type names; an unknown charset is a 415', async () => {
        const json = JSON.stringify({ title: 'Zähler Süd' });
        for (const [charset, bytes] of [
            ['utf-16', Buffer.from('\ufeff' + json, 'utf16le')],
            ['UTF-16LE', Buffer.from(json, 'utf16le')],
            ['latin1', Buffer.from(json, 'latin1')],
            ['ISO-8859-1', Buffer.from(json, 'latin1')],
            ['utf-8', Buffer.from(json, 'utf8')],
        ] as const) {
            for (const path of ['/cnf', '/CNF']) {
                const r = await send(red!.url, `${path}?cmd=set_params`, {
                    body: bytes,
                    contentType: `application/json; charset=${charset}`,
                });
                assertApiAnswer(r, `${path} ${charset}`);
                assert.equal(r.status, 200, `${path} ${charset}: ${r.text}`);
                const params = await send(red!.url, '/cnf?cmd=get_params', { method: 'GET' });
                assert.equal((JSON.parse(params.text) as { title: string }).title, 'Zähler Süd');
            }
        }
        for (const type of ['application/json; charset=klingon', 'text/plain; charset="x-bogus"']) {
            const r = await send(red!.url, '/CNF?cmd=set_params', {
                body: json,
                contentType: type,
            });
            assertApiAnswer(r, type);
            assert.equal(r.status, 415, type);
            assert.match(JSON.parse(r.text) as string, /^unsupported charset /);
        }
    });

    it('answers other methods with 405 and serves paths with repeated slashes', async () => {
        for (const method of ['PUT', 'DELETE', 'PATCH']) {
            for (const path of ['/cnf?cmd=get_params', '//cnf', '/CNF/', '/ui/en/sim.htm']) {
                const r = await send(red!.url, path, { method, body: '{}' });
                assertApiAnswer(r, `${method} ${path}`);
                assert.equal(r.status, 405, `${method} ${path}: ${r.text}`);
                assert.match(r.allow, /GET/);
            }
        }
        for (const path of [
            '//cnf?cmd=get_params',
            '///cnf//?cmd=get_params',
            '/Cnf?cmd=get_params',
        ]) {
            const r = await send(red!.url, path, { method: 'GET' });
            assert.equal(r.status, 200, `${path}: ${r.text}`);
            assert.equal(typeof (JSON.parse(r.text) as { title: unknown }).title, 'string');
        }
        // cobot takes http://host/ as the base and adds /cnf
        const cobot = await send(red!.url, '//cnf?cmd=get_dev_info', { method: 'GET' });
        assert.equal(cobot.status, 200);
        const sim = await send(red!.url, '//ui//en/sim.htm', { method: 'GET' });
        assert.equal(sim.status, 200, 'no admin password set: this machine is admin');
    });

    it('a fuzz of 2,000 raw requests gets the API’s answer every time', async () => {
        const r = rng(20261202);
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
        const agent = new Agent({ keepAlive: true, maxSockets: 4 });
        const paths = [
            '/cnf',
            '/CNF',
            '//cnf',
            '/cnf/',
            '///Cnf//',
            '/ui/en/sim.htm',
            '//UI/en//sim.htm',
        ];
        const queries = [
            '',
            '?cmd=get_dev_info',
            '?cmd=get_params',
            '?cmd=set_params',
            '?cmd=set_params&tmp=1',
            '?cmd=set_user',
            '?cmd=set_cm_vars',
            '?cmd=set_device',
            '?cmd=set_ajax_meter&dev_id=M9',
            '?cmd=override_device&dev_id=E1&mamps=8000.0',
            '?cmd=enter_rfid&rfid=9999&dev_id=E1',
            '?cmd=bogus',
            '?cmd=%E0%A4%A',
            '?cmd=modbus&device=E1&read=8044&count=2.0',
        ];
        const types = [
            undefined,
            'application/json',
            'application/json; charset=utf-8',
            'application/json; charset=utf-16',
            'application/json; charset=UTF-16BE',
            'application/json; charset=latin1',
            'application/json; charset=bogus',
            'text/plain; charset=iso-8859-1',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x',
            'application/xml',
        ];
        const bodies: (() => string | Buffer | undefined)[] = [
            () => undefined,
            () => '',
            () => '{"title":"fuzz"}',
            () => '{"title":',
            () => nested(1 + Math.floor(r() * 200)),
            () => nested(1 + Math.floor(r() * 200), '{"a":', '}'),
            () => nested(100_000),
            () => Buffer.from('{"title":"ü"}', 'utf16le'),
            () => Buffer.from([0xff, 0xfe, 0x00, 0xd8, 0x7b, 0x00]),
            () => Buffer.from(Array.from({ length: 64 }, () => Math.floor(r() * 256))),
            () => 'x'.repeat(70_000),
            () => '{"vars":[{"name":"NaN","expr":1}]}',
            () => 'a=1&b=2',
        ];
        const methods = [
            'GET',
            'GET',
            'POST',
            'POST',
            'POST',
            'PUT',
            'DELETE',
            'PATCH',
            'OPTIONS',
            'HEAD',
        ];
        const seen = new Map<number, number>();
        try {
            for (let i = 0; i < 2000; i++) {
                const method = pick(methods);
                const path = pick(paths) + pick(queries);
                const body = method === 'GET' || method === 'HEAD' ? undefined : pick(bodies)();
                const contentType = pick(types);
                const res = await send(red!.url, path, {
                    method,
                    agent,
                    ...(body !== undefined ? { body } : {}),
                    ...(contentType ? { contentType } : {}),
                });
                seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
                const where = `#${i} ${method} ${path} ${contentType ?? ''}`;
                const page = path.toLowerCase().includes('sim.htm') && res.status === 200;
                assertApiAnswer(res, where, method === 'HEAD' || page);
            }
        } finally {
            agent.destroy();
        }
        // The mix reached the commands, not only the checks in front of them.
        for (const status of [200, 400, 405, 413, 415]) {
            assert.ok((seen.get(status) ?? 0) > 10, `${status}: ${JSON.stringify([...seen])}`);
        }
        const alive = await send(red!.url, '/cnf?cmd=get_dev_info', { method: 'GET' });
        assert.equal(alive.status, 200);
    });

    it('leaves other paths to Node-RED', async () => {
        const r = await post(red!.url, 'elsewhere', '{"x": ', 'application/json');
        assert.equal(r.status, 400);
        assert.doesNotMatch(r.text, /body is not valid JSON"$/);
    });
});
