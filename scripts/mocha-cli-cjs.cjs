// Loaded with --require for the mutation run only. StrykerJS's mocha runner (10.1.1) requires
// Mocha's cli internals without a file extension (lib/cli/run-helpers, options, collect-files);
// Mocha 12 ships them as .cjs, so the runner cannot load (stryker-js pull request 6205, not
// released yet). An extensionless request for one of those files resolves to its .cjs.
const Module = require('node:module');

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
    try {
        return resolve.call(this, request, ...rest);
    } catch (err) {
        if (/[\\/]mocha[\\/]lib[\\/]cli[\\/][\w-]+$/.test(request))
            return resolve.call(this, `${request}.cjs`, ...rest);
        throw err;
    }
};
