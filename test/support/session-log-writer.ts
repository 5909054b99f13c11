// Child process for the session log crash test: appends session records in a loop and prints
// `ack <seq>` once each append has resolved (the record is on disk); every fifth record it also
// checkpoints one running session. The test kills it with SIGKILL and checks that every
// acknowledged record is in the log exactly once.
//
// Usage: node dist/test/support/session-log-writer.js <log file> <first seq> <maxBytes> <keep>

import { SessionLog } from '../../lib/sessions/session-log';
import { runningSession, sessionRecord } from './sessions';

async function main(): Promise<void> {
    const [file, first, maxBytes, keep] = process.argv.slice(2);
    if (!file || !first || !maxBytes || !keep) {
        throw new Error('usage: session-log-writer <file> <first seq> <maxBytes> <keep>');
    }
    const log = new SessionLog(file, {
        maxBytes: Number(maxBytes),
        keep: Number(keep),
        onError: (err) => process.stderr.write(`${err.code}: ${err.message}\n`),
    });
    await log.open();
    for (let seq = Number(first); ; seq++) {
        await log.append(sessionRecord(seq));
        if (seq % 5 === 0) await log.checkpoint([runningSession(seq + 1)]);
        process.stdout.write(`ack ${seq}\n`);
    }
}

main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
});
