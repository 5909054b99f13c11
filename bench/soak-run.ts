// npm run soak: 30 simulated minutes (or the minutes given), written to bench/soak.json.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { soak } from './soak';

async function main(): Promise<void> {
    const simMinutes = Number(process.argv[2] ?? 30);
    const report = await soak({ simMinutes, evses: 6, seed: 1, redeployEveryMin: 5 });
    writeFileSync(
        join(__dirname, '..', '..', 'bench', 'soak.json'),
        JSON.stringify(report, null, 2) + '\n',
    );
    console.log(JSON.stringify(report, null, 2));
    const ok = report.fuseViolations === 0 && report.worstMarginWithData.every((m) => m >= 0);
    console.log(ok ? 'soak: no fuse violation' : 'soak: FUSE VIOLATED');
    process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
});
