// npm run soak [minutes]: both stages of the reliability harness, 30 simulated minutes each by
// default, written to bench/soak.json. Loopback only; it stops by itself (about 7 minutes).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { soak } from './soak';
import { soakNodeRed } from './soak-nodered';

async function main(): Promise<void> {
    const simMinutes = Number(process.argv[2] ?? 30);
    if (!(simMinutes > 0 && simMinutes <= 120)) throw new Error('minutes must be within 0..120');
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
    writeFileSync(
        join(__dirname, '..', '..', 'bench', 'soak.json'),
        JSON.stringify(out, null, 2) + '\n',
    );
    console.log(JSON.stringify(out, null, 2));
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
