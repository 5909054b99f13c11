// npm run soak [minutes] [--out file]: both stages of the reliability harness, 30 simulated
// minutes each by default. The full run is written to bench/soak.json, the figures the README
// quotes; a shorter run goes to dist/bench/soak-<minutes>min.json unless --out names a file.
// Loopback only; it stops by itself (about 7 minutes).
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { soak } from './soak';
import { soakNodeRed } from './soak-nodered';

const FULL_RUN_MINUTES = 30;

/** Where the figures go: the committed file for a full run, elsewhere for a short one. */
function outputFile(args: readonly string[], simMinutes: number): string {
    const at = args.indexOf('--out');
    if (at >= 0) {
        const file = args[at + 1];
        if (!file) throw new Error('--out needs a file');
        return resolve(process.env.INIT_CWD ?? process.cwd(), file);
    }
    return simMinutes === FULL_RUN_MINUTES
        ? join(__dirname, '..', '..', 'bench', 'soak.json')
        : join(__dirname, `soak-${simMinutes}min.json`);
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    const minutesArg = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--out');
    const simMinutes = Number(minutesArg ?? FULL_RUN_MINUTES);
    if (!(simMinutes > 0 && simMinutes <= 120)) throw new Error('minutes must be within 0..120');
    const file = outputFile(args, simMinutes);
    console.log(`> site stage: ${simMinutes} simulated minutes`);
    const site = await soak({ simMinutes, evses: 6, seed: 1, redeployEveryMin: 5 });
    const siteOk = site.fuseViolations === 0 && site.worstMarginWithData.every((m) => m >= 0);
    console.log(`> Node-RED stage: ${simMinutes} simulated minutes at 5×`);
    const nodeRed = await soakNodeRed({
        simMinutes,
        timeScale: 5,
        evses: 4,
        seed: 1,
        redeployEverySimS: 150,
        cnfClients: 3,
        failureEverySimS: 90,
    });
    const ok = siteOk && nodeRed.ok;
    const out = { ok, site, nodeRed };
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    console.log(JSON.stringify(out, null, 2));
    console.log(`> written to ${file}`);
    console.log(
        ok
            ? 'soak: no fuse violation, no leak'
            : `soak: FAILED (${[siteOk ? '' : 'site stage fuse', ...nodeRed.problems].filter(Boolean).join('; ')})`,
    );
    process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
