import assert from 'node:assert/strict';
import {
    deviceItem,
    hashEditorValue,
    paramItem,
    reconcile,
    userItem,
    type EditorConfig,
} from '../../../lib/store/reconcile';
import { emptyDocument, type StoreDocument } from '../../../lib/store/schema';

function deepFreeze<T>(value: T): T {
    if (value && typeof value === 'object') {
        for (const inner of Object.values(value)) deepFreeze(inner);
        Object.freeze(value);
    }
    return value;
}

const editor: EditorConfig = {
    params: { max_total_current: 32000, reserve_current: 1000, title: 'Home' },
    devices: {
        E1: { dev_type: 'evse_powerbrain', name: 'Carport', max_charging_cur: 16000 },
        E2: { dev_type: 'evse_powerbrain', name: 'Garage', max_charging_cur: 32000 },
        M3: { dev_type: 'meter_sdm630', name: 'Grid' },
    },
};

/** The store after a first start with `editor`. */
function started(config: EditorConfig = editor): StoreDocument {
    return reconcile(config, emptyDocument()).storeDoc;
}

function withEditor(
    change: (config: { params: Record<string, unknown>; devices: Record<string, object> }) => void,
) {
    const copy = structuredClone(editor) as {
        params: Record<string, unknown>;
        devices: Record<string, object>;
    };
    change(copy);
    return copy as EditorConfig;
}

describe('editor / API precedence (reconcile)', () => {
    it('first start: the editor config is in force and its baseline is recorded', () => {
        const result = reconcile(editor, emptyDocument());
        assert.deepEqual(result.effective, {
            params: editor.params,
            devices: editor.devices,
            users: [],
        });
        assert.equal(result.changed, true);
        assert.deepEqual(result.replaced, []);
        assert.equal(result.storeDoc.editorBaseline[paramItem('title')], hashEditorValue('Home'));
        assert.equal(
            result.storeDoc.editorBaseline[deviceItem('E2')],
            hashEditorValue(editor.devices.E2),
        );
        assert.equal(
            reconcile(editor, result.storeDoc).changed,
            false,
            'a second run changes nothing',
        );
    });

    it('an API change survives a deploy that leaves the item alone', () => {
        const doc = started();
        doc.params.max_total_current = 20000;
        doc.devices.E1 = { added: false, config: { max_charging_cur: 10000 } };
        const deploy = withEditor((c) => (c.params.title = 'Home 2'));
        const result = reconcile(deploy, doc);
        assert.equal(result.effective.params.max_total_current, 20000);
        assert.equal(result.effective.params.title, 'Home 2');
        assert.deepEqual(result.effective.devices.E1, {
            dev_type: 'evse_powerbrain',
            name: 'Carport',
            max_charging_cur: 10000,
        });
        assert.deepEqual(result.replaced, []);
        assert.equal(result.storeDoc.params.max_total_current, 20000);
    });

    it('a deploy that changes an item replaces the API change of that item only', () => {
        const doc = started();
        doc.params.max_total_current = 20000;
        doc.params.reserve_current = 3000;
        doc.devices.E1 = { added: false, config: { max_charging_cur: 10000 } };
        doc.devices.E2 = { added: false, config: { name: 'Garage (API)' } };
        const deploy = withEditor((c) => {
            c.params.max_total_current = 25000;
            c.devices.E1 = { ...c.devices.E1, max_charging_cur: 13000 };
        });
        const result = reconcile(deploy, doc);
        assert.equal(result.effective.params.max_total_current, 25000);
        assert.equal(result.effective.params.reserve_current, 3000);
        assert.equal(result.effective.devices.E1!.max_charging_cur, 13000);
        assert.equal(result.effective.devices.E2!.name, 'Garage (API)');
        assert.deepEqual([...result.replaced].sort(), [
            deviceItem('E1'),
            paramItem('max_total_current'),
        ]);
        assert.equal('max_total_current' in result.storeDoc.params, false);
        assert.equal(result.storeDoc.devices.E1, undefined);

        // and a later API change of the same item wins again until the editor changes it
        const later = structuredClone(result.storeDoc);
        later.params.max_total_current = 18000;
        assert.equal(reconcile(deploy, later).effective.params.max_total_current, 18000);
    });

    it('the key order of an editor value is not a change', () => {
        const doc = started();
        doc.devices.E1 = { added: false, config: { max_charging_cur: 10000 } };
        const reordered = withEditor((c) => {
            c.devices.E1 = {
                max_charging_cur: 16000,
                name: 'Carport',
                dev_type: 'evse_powerbrain',
            };
        });
        assert.equal(reconcile(reordered, doc).effective.devices.E1!.max_charging_cur, 10000);
        assert.equal(
            hashEditorValue({ a: 1, b: [1, { c: 2, d: 3 }] }),
            hashEditorValue({ b: [1, { d: 3, c: 2 }], a: 1 }),
        );
        assert.notEqual(hashEditorValue(1), hashEditorValue('1'));
    });

    it('devices added through the API are kept, after the editor devices', () => {
        const doc = started();
        doc.devices.E7 = { added: true, config: { dev_type: 'evse_ajax', name: 'HTTP box' } };
        const result = reconcile(editor, doc);
        assert.deepEqual(Object.keys(result.effective.devices), ['E1', 'E2', 'M3', 'E7']);
        assert.deepEqual(result.effective.devices.E7, { dev_type: 'evse_ajax', name: 'HTTP box' });
        assert.equal(reconcile(editor, result.storeDoc).effective.devices.E7!.name, 'HTTP box');
    });

    it('an editor device with the id of an API device replaces it', () => {
        const doc = reconcile(editor, started()).storeDoc;
        doc.devices.E7 = { added: true, config: { dev_type: 'evse_ajax', name: 'HTTP box' } };
        const deploy = withEditor(
            (c) => (c.devices.E7 = { dev_type: 'evse_powerbrain', name: 'New' }),
        );
        const result = reconcile(deploy, doc);
        assert.deepEqual(result.effective.devices.E7, { dev_type: 'evse_powerbrain', name: 'New' });
        assert.deepEqual(result.replaced, [deviceItem('E7')]);
    });

    it('a device deleted through the API stays deleted until the editor changes it', () => {
        const doc = started();
        doc.deleted.push('E2');
        const same = reconcile(editor, doc);
        assert.deepEqual(Object.keys(same.effective.devices), ['E1', 'M3']);
        assert.deepEqual(same.storeDoc.deleted, ['E2']);

        const deploy = withEditor(
            (c) => (c.devices.E2 = { ...c.devices.E2, max_charging_cur: 16000 }),
        );
        const changed = reconcile(deploy, same.storeDoc);
        assert.deepEqual(Object.keys(changed.effective.devices), ['E1', 'E2', 'M3']);
        assert.deepEqual(changed.storeDoc.deleted, []);
        assert.deepEqual(changed.replaced, [deviceItem('E2')]);
    });

    it('removing a device from the editor drops its API changes and its deletion', () => {
        const doc = started();
        doc.devices.E1 = { added: false, config: { max_charging_cur: 10000 } };
        doc.deleted.push('E2');
        const deploy = withEditor((c) => {
            delete c.devices.E1;
            delete c.devices.E2;
        });
        const result = reconcile(deploy, doc);
        assert.deepEqual(Object.keys(result.effective.devices), ['M3']);
        assert.equal(result.storeDoc.devices.E1, undefined);
        assert.deepEqual(result.storeDoc.deleted, []);
        assert.equal(result.storeDoc.editorBaseline[deviceItem('E1')], undefined);
    });

    it('a parameter the editor adds replaces an API value set while the editor had none', () => {
        const withoutDesc = started();
        withoutDesc.params.desc = 'set through the API';
        const kept = reconcile(editor, withoutDesc);
        assert.equal(kept.effective.params.desc, 'set through the API');
        const deploy = withEditor((c) => (c.params.desc = 'from the editor'));
        assert.equal(reconcile(deploy, kept.storeDoc).effective.params.desc, 'from the editor');
    });

    it('a store without baselines (older store) keeps every API change', () => {
        const doc = emptyDocument();
        doc.params.max_total_current = 20000;
        doc.devices.E1 = { added: false, config: { max_charging_cur: 10000 } };
        const result = reconcile(editor, doc);
        assert.equal(result.effective.params.max_total_current, 20000);
        assert.equal(result.effective.devices.E1!.max_charging_cur, 10000);
        assert.deepEqual(result.replaced, []);
        // from now on the baseline is known
        const deploy = withEditor((c) => (c.params.max_total_current = 30000));
        assert.equal(reconcile(deploy, result.storeDoc).effective.params.max_total_current, 30000);
    });

    it('is pure: the store document passed in is not modified', () => {
        const doc = started();
        doc.params.max_total_current = 20000;
        doc.deleted.push('E2');
        deepFreeze(doc);
        const deploy = withEditor((c) => {
            c.params.max_total_current = 1;
            delete c.devices.E2;
        });
        assert.doesNotThrow(() => reconcile(deepFreeze(deploy), doc));
    });

    it('leaves the other store sections alone', () => {
        const doc = started();
        doc.users.push({ id: '1', name: 'A' });
        doc.variables.push({ name: 'x', expr: 1 });
        doc.counters.E1 = { total_energy: 5 };
        doc.adminPasswordHash = 'scrypt$x';
        const result = reconcile(
            withEditor((c) => (c.params.title = 'changed')),
            doc,
        );
        assert.deepEqual(result.storeDoc.users, doc.users);
        assert.deepEqual(result.storeDoc.variables, doc.variables);
        assert.deepEqual(result.storeDoc.counters, doc.counters);
        assert.equal(result.storeDoc.adminPasswordHash, 'scrypt$x');
    });

    describe('users (per user id, RFIDs included)', () => {
        const anna = { id: '1001', name: 'Anna', rfids: [{ id: 'A1' }] };
        const ben = { id: '1002', name: 'Ben', rfids: [{ id: 'B1' }] };
        const withUsers: EditorConfig = { ...editor, users: { '1001': anna, '1002': ben } };

        it('stored API versions of users stay while the editor leaves them alone', () => {
            const doc = reconcile(withUsers, emptyDocument()).storeDoc;
            doc.users.push({ ...anna, rfids: [{ id: 'A1' }, { id: 'A2' }] });
            doc.users.push({ id: '1003', name: 'Carla (API)' });
            const result = reconcile({ ...withUsers, params: { title: 'other' } }, doc);
            assert.deepEqual(result.replaced, []);
            assert.deepEqual(
                result.effective.users.map((u) => [u.id, u.rfids?.map((r) => r.id)]),
                [
                    ['1001', ['A1', 'A2']],
                    ['1002', ['B1']],
                    ['1003', undefined],
                ],
            );
            assert.equal(result.storeDoc.editorBaseline[userItem('1003')], '-');
        });

        it('a user changed in the editor replaces its API version; the others stay', () => {
            const doc = reconcile(withUsers, emptyDocument()).storeDoc;
            doc.users.push({ ...anna, name: 'Anna (API)' });
            doc.users.push({ ...ben, name: 'Ben (API)' });
            const deploy: EditorConfig = {
                ...withUsers,
                users: { '1001': { ...anna, rfids: [{ id: 'A9' }] }, '1002': ben },
            };
            const result = reconcile(deploy, doc);
            assert.deepEqual(result.replaced, [userItem('1001')]);
            const byId = new Map(result.effective.users.map((u) => [u.id, u]));
            assert.deepEqual(byId.get('1001')?.rfids, [{ id: 'A9' }]);
            assert.equal(byId.get('1001')?.name, 'Anna');
            assert.equal(byId.get('1002')?.name, 'Ben (API)');
            assert.deepEqual(
                result.storeDoc.users.map((u) => u.id),
                ['1002'],
            );
        });

        it('an editor user with the id of an API-added user replaces it', () => {
            const doc = reconcile(withUsers, emptyDocument()).storeDoc;
            doc.users.push({ id: '1003', name: 'Carla (API)' });
            const kept = reconcile(withUsers, doc).storeDoc;
            const deploy: EditorConfig = {
                ...withUsers,
                users: { ...withUsers.users, '1003': { id: '1003', name: 'Carla' } },
            };
            const result = reconcile(deploy, kept);
            assert.deepEqual(result.replaced, [userItem('1003')]);
            assert.equal(result.effective.users.find((u) => u.id === '1003')?.name, 'Carla');
        });
    });
});
