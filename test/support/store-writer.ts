// Child process for the store crash test: changes the store in a loop and prints `ack <seq>`
// once each change is on disk (flush resolved). The test kills it with SIGKILL at random
// moments and checks that no acknowledged change is lost.
//
// Usage: node dist/test/support/store-writer.js <store file>

import { ManagerStore } from '../../lib/store/store';

async function main(): Promise<void> {
    const file = process.argv[2];
    if (!file) throw new Error('usage: store-writer <store file>');
    const store = await ManagerStore.open(file, { debounceMs: 0 });
    if (store.loadReport.status === 'recovered') {
        process.stderr.write(`store recovered: ${store.loadReport.error?.message}\n`);
        process.exit(3);
    }
    const current = store.document.variables.find((v) => v.name === 'seq');
    let seq = typeof current?.expr === 'number' ? current.expr : 0;
    for (;;) {
        seq++;
        const value = seq;
        store.update((doc) => {
            doc.variables = [{ name: 'seq', expr: value }];
            doc.counters.E1 = { soft_meter: value, total_energy: value * 10 };
            // a size that changes from write to write, so a torn file would not parse
            doc.params.desc = 'x'.repeat((value * 37) % 4000);
            doc.users = Array.from({ length: value % 40 }, (_, i) => ({
                id: String(1000 + i),
                name: `user ${i} of write ${value}`,
            }));
        });
        await store.flush();
        process.stdout.write(`ack ${value}\n`);
    }
}

main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
});
