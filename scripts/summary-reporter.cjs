// Mocha's spec output, plus the counts written to a file so that scripts/test.mjs can print the
// plain "N passed, N failed" closing line after lint results are added in.
const Mocha = require('mocha');
const { writeFileSync } = require('node:fs');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

module.exports = class SummaryReporter extends Spec {
    constructor(runner, options) {
        super(runner, options);
        runner.once(EVENT_RUN_END, () => {
            const s = runner.stats;
            const summary = { passes: s.passes, failures: s.failures, pending: s.pending };
            if (process.env.EVCM_TEST_SUMMARY) {
                writeFileSync(process.env.EVCM_TEST_SUMMARY, JSON.stringify(summary));
            } else {
                process.stdout.write(
                    `${s.passes} passed, ${s.failures} failed${s.pending ? `, ${s.pending} skipped` : ''}\n`,
                );
            }
        });
    }
};
