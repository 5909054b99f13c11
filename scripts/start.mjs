// npm start: Node-RED 4 on 127.0.0.1:1880 with this package loaded from the working tree and the
// demo flow. The user directory is .node-red/ inside the repository (not versioned).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, ensureInstalled, root } from './lib.mjs';

const userDir = join(root, '.node-red');
const port = Number(process.env.PORT ?? 1880);
const demoFlow = join(root, 'demo', 'flows.json');
const flowFile = join(userDir, 'flows.json');
const stamp = join(userDir, '.demo-flow.sha256');
const hash = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

ensureInstalled();
if ((await build()) !== 0) process.exit(1);
mkdirSync(userDir, { recursive: true });

writeFileSync(
    join(userDir, 'settings.js'),
    `// Written by npm start.
module.exports = {
    uiHost: '127.0.0.1',
    uiPort: ${port},
    flowFile: 'flows.json',
    flowFilePretty: true,
    // The demo keeps its credentials (the /cnf admin password) in plain text in this folder.
    credentialSecret: false,
    nodesDir: [${JSON.stringify(root)}],
    editorTheme: { projects: { enabled: false }, tours: false },
    diagnostics: { enabled: false },
    // No update-notification prompt over the editor.
    telemetry: { enabled: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
};
`,
);

// Take the demo flow when there is none, or when the demo changed and the copy was not edited.
const demoHash = hash(demoFlow);
const copied = existsSync(stamp) ? readFileSync(stamp, 'utf8') : '';
if (!existsSync(flowFile) || (copied !== demoHash && hash(flowFile) === copied)) {
    copyFileSync(demoFlow, flowFile);
    writeFileSync(stamp, demoHash);
    writeFileSync(
        join(userDir, 'flows_cred.json'),
        JSON.stringify({ 'evcm-demo-manager': { adminPassword: 'demo' } }),
    );
} else if (copied !== demoHash) {
    console.log('> keeping your edited .node-red/flows.json (delete it to get the new demo flow)');
}

console.log(`> Node-RED on http://127.0.0.1:${port}/ (Ctrl+C stops it)`);
const red = spawn(
    process.execPath,
    [join(root, 'node_modules', 'node-red', 'red.js'), '-u', userDir],
    {
        cwd: root,
        stdio: 'inherit',
    },
);

// The demo's OCPP wallbox (E4, "Street"): a simulated OCPP 1.6J charge point in this process that
// connects to Node-RED's own port as a real one would (it retries until Node-RED listens), with a
// car plugged in; once booted, a card starts its transaction (E4 has no users assigned).
const { startDemoChargePoint } = createRequire(import.meta.url)(
    join(root, 'dist', 'lib', 'sim', 'ocpp-sim.js'),
);
const ocppUrl = `ws://127.0.0.1:${port}/ocpp`;
const chargePoint = startDemoChargePoint(ocppUrl);
console.log(`> simulated OCPP charge point CP-DEMO connects to ${ocppUrl}/CP-DEMO`);

const stopAll = async (code) => {
    await chargePoint.close();
    process.exit(code);
};
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => red.kill(signal));
red.on('exit', (code) => void stopAll(code ?? 0));
