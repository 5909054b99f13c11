#!/usr/bin/env node
'use strict';
// Simulated cFos Power Brain wallboxes on Modbus TCP, or OCPP charge points (`evcm-sim ocpp`); see `evcm-sim --help`.
require('../dist/lib/sim/cli.js')
    .main(process.argv.slice(2))
    .then((code) => process.exit(code))
    .catch((e) => {
        console.error(e);
        process.exit(1);
    });
