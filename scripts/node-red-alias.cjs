// Preloaded by the runtime matrix: wherever a test or the test helper asks for 'node-red', it
// gets the Node-RED named by EVCM_NODE_RED (for example 'node-red-5'), so that the very same flow
// tests run against another Node-RED.
const Module = require('node:module');

const target = process.env.EVCM_NODE_RED;
if (target && target !== 'node-red') {
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (request, ...rest) {
        const aliased =
            request === 'node-red' || request.startsWith('node-red/')
                ? target + request.slice('node-red'.length)
                : request;
        return resolve.call(this, aliased, ...rest);
    };
}
