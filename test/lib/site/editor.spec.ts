import assert from 'node:assert/strict';
import { userTableText } from '../../../lib/site/editor';

describe("the manager's user table in its editor config", () => {
    const table = '[{"id":"1001","name":"Anna"}]';

    it('is `userTable`', () => {
        assert.equal(userTableText({ userTable: table }), table);
        assert.equal(userTableText({ userTable: '' }), '');
    });

    it('is read from `users` in a flow from before the rename', () => {
        assert.equal(userTableText({ users: table }), table);
    });

    it('`userTable` wins where both are there', () => {
        assert.equal(userTableText({ userTable: '[]', users: table }), '[]');
    });

    it('is missing where neither is a string', () => {
        assert.equal(userTableText({}), undefined);
        assert.equal(userTableText({ users: null }), undefined);
        assert.equal(userTableText({ users: [] }), undefined);
    });
});
