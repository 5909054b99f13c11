import assert from 'node:assert/strict';
import helper from 'node-red-node-test-helper';

helper.init(require.resolve('node-red'));

describe('Node-RED runtime under test', () => {
    afterEach(() => helper.unload());

    it('is the one this run asks for (4.1 by default, 5 in the matrix)', async () => {
        // The package the test helper loaded as 'node-red', and a flow really running on it.
        const version = (require('node-red/package.json') as { version: string }).version;
        let loaded = false;
        await helper.load([() => void (loaded = true)] as never, []);
        assert.ok(loaded);
        console.log(`      Node-RED ${version} on Node.js ${process.version}`);
        const matrix = !!process.env.EVCM_NODE_RED;
        assert.match(version, matrix ? /^5\./ : /^4\.1\./);
        assert.match(process.version, matrix ? /^v22\./ : /^v20\./);
    });
});
