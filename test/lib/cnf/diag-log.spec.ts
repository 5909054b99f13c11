// set_diag_logging: every cycle's inputs and decisions while on, for 5 minutes or until off; read
// back with get_diag_log and from the file.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiagLog, type DiagEntry } from '../../../lib/cnf/diag-log';
import { ADMIN, ADMIN_PASSWORD, adminOk, directSite, type DirectSite } from '../../support/cnf';

describe('diagnostic log (set_diag_logging, get_diag_log)', () => {
    let d: DirectSite;
    let now = Date.UTC(2026, 0, 5, 12);
    const lines: string[] = [];
    beforeEach(() => {
        now = Date.UTC(2026, 0, 5, 12);
        lines.length = 0;
        d = directSite(null, {
            adminPassword: ADMIN_PASSWORD,
            now: () => now,
            log: (t) => lines.push(t),
        });
    });
    afterEach(() => d.stop());

    const json = (query: string) => adminOk(d, query);
    const log = async (q = '') =>
        (await json(`cmd=get_diag_log${q}`)) as {
            enabled: boolean;
            until: number;
            entries: DiagEntry[];
        };

    it('records nothing until enabled, then every cycle with its inputs and decisions', async () => {
        await d.site.manager.runCycle();
        assert.deepEqual((await log()).entries, []);
        assert.equal(await json('cmd=set_diag_logging&enable=1'), 'ok');
        assert.match(lines.join('\n'), /diagnostic log on for 5 minutes \(memory only\)/);
        await json('cmd=set_ajax_meter&dev_id=M3&power_w=1234');
        await json('cmd=override_device&dev_id=E1&flags=C');
        await d.site.manager.runCycle();
        await d.site.manager.runCycle();
        const l = await log();
        assert.equal(l.enabled, true);
        assert.equal(l.until, Math.floor((now + 5 * 60_000) / 1000));
        assert.equal(l.entries.length, 2);
        const e = l.entries[1]!;
        assert.deepEqual((e.inputs.M3 as { reading: { powerW: number } }).reading.powerW, 1234);
        // override C caps E1 at 0: the cap and the decision are both there
        assert.equal(e.limits.E1, 0);
        assert.equal(e.decisions.E1?.current, 0);
        assert.ok(e.decisions.E3, 'every wallbox has its decision');
        assert.equal(e.site.budget.length, 3);
        assert.equal(typeof e.cycle_ms, 'number');
    });

    it('stops after 5 minutes, or at once with enable=0', async () => {
        await json('cmd=set_diag_logging&enable=1');
        await d.site.manager.runCycle();
        now += 5 * 60_000 + 1;
        await d.site.manager.runCycle();
        let l = await log();
        assert.equal(l.enabled, false);
        assert.equal(l.entries.length, 1);
        assert.match(lines.join('\n'), /diagnostic log off \(5 minutes passed\)/);
        await json('cmd=set_diag_logging&enable=1');
        await d.site.manager.runCycle();
        await json('cmd=set_diag_logging&enable=0');
        await d.site.manager.runCycle();
        l = await log();
        assert.equal(l.enabled, false);
        assert.equal(l.entries.length, 1, 'a new recording starts empty and ends at enable=0');
        assert.match(lines.at(-1)!, /diagnostic log off$/);
    });

    it('get_diag_log needs admin and takes max and since', async () => {
        const r = await d.call({ query: 'cmd=get_diag_log' });
        assert.equal(r.status, 401);
        await json('cmd=set_diag_logging&enable=1');
        for (let i = 0; i < 5; i++) {
            now += 1000;
            await d.site.manager.runCycle();
        }
        assert.equal((await log('&max=2')).entries.length, 2);
        const all = (await log()).entries;
        const since = Math.ceil(all[3]!.t / 1000);
        assert.ok((await log(`&since=${since}`)).entries.every((e) => e.t >= since * 1000));
        const bad = await d.call({ query: 'cmd=get_diag_log&max=0', authorization: ADMIN });
        assert.equal(bad.status, 400);
    });

    it('appends one JSON line per cycle to its file and rotates it', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'evcm-diag-'));
        try {
            const file = join(dir, 'm.diag.jsonl');
            const diag = new DiagLog({ file, maxFileBytes: 3000 });
            diag.enable();
            for (let i = 0; i < 8; i++) diag.record(await d.site.manager.runCycle());
            diag.close();
            await new Promise((r) => setTimeout(r, 50));
            assert.ok(existsSync(`${file}.1`), 'rotated at the size limit');
            const text = readFileSync(`${file}.1`, 'utf8') + readFileSync(file, 'utf8');
            const entries = text
                .trim()
                .split('\n')
                .map((l) => JSON.parse(l) as DiagEntry);
            assert.equal(entries.length, 8);
            assert.ok(entries.every((e) => e.decisions.E1 !== undefined));
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
