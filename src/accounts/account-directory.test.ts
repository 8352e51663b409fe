// Tests for the account directory: records created once, rotated tokens kept, bearer bookkeeping, reload (issue 5).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openMemoryStore } from '../store/memory-store.ts';
import { fakeClock } from './__fixtures__/fake-kimi-upstream.ts';
import { readAccountRecord, storeKeys, updateAccountRecord } from './account.ts';
import { createAccountDirectory } from './account-directory.ts';

async function setup(maxBearerAccounts = 10_000) {
  const clock = fakeClock();
  const store = await openMemoryStore({ clock: clock.now });
  const busy = new Set<string>();
  const directory = createAccountDirectory({ store, dialectMode: 'auto', clock: clock.now, maxBearerAccounts, isBusy: (id) => busy.has(id) });
  return { clock, store, busy, directory };
}

describe('account directory', () => {
  test('a configured token never overwrites the stored, rotated one; a bearer record is upgraded to server', async () => {
    const { store, directory } = await setup();
    const bearer = await directory.ensure('tok-1', 'bearer', 'Bearer token 1');
    await updateAccountRecord(store, bearer.id, (record) => ({ ...record, token: 'tok-1-rotated' }));
    const server = await directory.ensure('tok-1', 'server', 'Kimi token 1');
    assert.equal(server.id, bearer.id);
    assert.equal(server.source, 'server');
    const record = await readAccountRecord(store, bearer.id);
    assert.equal(record?.token, 'tok-1-rotated');
    assert.equal(record?.source, 'server');
    assert.deepEqual(directory.serverAccounts().map((account) => account.id), [bearer.id]);
  });

  test('a bearer record that expired from the store is re-created when the token comes back later', async () => {
    const { clock, store, directory } = await setup();
    const account = await directory.ensure('tok-2', 'bearer', 'Bearer token 1');
    await store.delete(storeKeys.account(account.id));
    clock.advance(11 * 60_000);
    await directory.ensure('tok-2', 'bearer', 'Bearer token 1');
    assert.equal((await readAccountRecord(store, account.id))?.token, 'tok-2');
  });

  test('idle bearer accounts beyond the cap are forgotten, least recently used first, busy ones kept', async () => {
    const { directory, busy } = await setup(2);
    const first = await directory.ensure('tok-a', 'bearer', 'b');
    busy.add(first.id);
    const second = await directory.ensure('tok-b', 'bearer', 'b');
    await directory.ensure('tok-c', 'bearer', 'b');
    assert.ok(directory.states.has(first.id), 'busy one kept');
    assert.ok(!directory.states.has(second.id), 'idle oldest forgotten');
    assert.equal(directory.states.size, 2);
  });

  test('reload adds new server accounts, drops removed ones, skips other clients\' bearer records, reads marks', async () => {
    const { clock, store, directory } = await setup();
    const other = createAccountDirectory({ store, dialectMode: 'auto', clock: clock.now, isBusy: () => false });
    const added = await other.ensure('tok-added', 'added', 'Kimi token');
    await other.ensure('tok-foreign', 'bearer', 'Bearer token 1');
    await store.set(storeKeys.cooldown(added.id), JSON.stringify({ until: clock.now() + 5_000, code: 'rate_limited' }), { ttlMs: 5_000 });
    await directory.reload();
    assert.deepEqual(directory.serverAccounts().map((account) => account.id), [added.id]);
    assert.equal(directory.states.get(added.id)?.coolUntil, clock.now() + 5_000);
    assert.equal(directory.states.size, 1, 'the foreign bearer account is not loaded');
    await other.remove(added.id);
    await directory.reload();
    assert.deepEqual(directory.serverAccounts(), []);
  });
});
