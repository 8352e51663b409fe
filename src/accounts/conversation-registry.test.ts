// Tests for temporary-chat deletion (protocol spec §10.3, contract CHAT_RETENTION_SECONDS) through the pool.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConflictError } from '../errors.ts';
import { openMemoryStore } from '../store/memory-store.ts';
import type { StateStore } from '../store/state-store.ts';
import { FakeKimiUpstream, fakeClock } from './__fixtures__/fake-kimi-upstream.ts';
import type { FakeClock } from './__fixtures__/fake-kimi-upstream.ts';
import { createAccountPool } from './account-pool.ts';
import type { AccountPool } from './account-pool.ts';
import { deletionTimeFor, type DeleteConversation } from './conversation-registry.ts';

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'conversation-registry-'));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

interface Setup {
  pool: AccountPool;
  upstream: FakeKimiUpstream;
  accountId: string;
  deletions: string[];
}

/** `deleteConversation` replaces the default upstream delete (which fails `flaky-1` twice, then records deletions). */
async function setup(store: StateStore, clock: FakeClock, deleteConversation?: DeleteConversation): Promise<Setup> {
  const upstream = new FakeKimiUpstream({ clock: clock.now });
  upstream.register('ann', 'ann-refresh-0');
  const deletions: string[] = [];
  const failuresLeft = new Map<string, number>([['flaky-1', 2]]);
  const pool = createAccountPool({
    store,
    dialects: upstream.dialects(),
    clock: clock.now,
    reloadIntervalMs: 0,
    sweepIntervalMs: 0,
    deleteConversation:
      deleteConversation ??
      (async (accountId, conversationId) => {
        const failures = failuresLeft.get(conversationId) ?? 0;
        if (failures > 0) {
          failuresLeft.set(conversationId, failures - 1);
          throw new Error('upstream 502');
        }
        deletions.push(`${accountId}/${conversationId}`);
      }),
  });
  const [account] = await pool.addServerAccounts(['ann-refresh-0']);
  return { pool, upstream, accountId: account.id, deletions };
}

describe('temporary chat deletion (§10.3)', () => {
  test('deletionTimeFor: -1 keeps, 0 is now, otherwise now + seconds', () => {
    assert.equal(deletionTimeFor(-1, 1_000), undefined);
    assert.equal(deletionTimeFor(0, 1_000), 1_000);
    assert.equal(deletionTimeFor(600, 1_000), 601_000);
  });

  test('a due chat is deleted once by the sweeper and forgotten; an early sweep deletes nothing', async () => {
    const clock = fakeClock();
    const { pool, accountId, deletions } = await setup(await openMemoryStore({ clock: clock.now }), clock);
    await pool.bindConversation('chat-1', accountId, { createdByGateway: true, deleteAt: clock.now() + 600_000 });
    assert.equal(await pool.sweepDeletions(), 0);
    clock.advance(600_000);
    assert.equal(await pool.sweepDeletions(), 1);
    assert.equal(await pool.sweepDeletions(), 0);
    assert.deepEqual(deletions, [`${accountId}/chat-1`]);
    assert.equal(await pool.getConversation('chat-1'), undefined);
    await pool.close();
  });

  test('binding a new chat with deleteAt schedules it in the same step; a chat not ours is never scheduled that way', async () => {
    const clock = fakeClock();
    const { pool, accountId, deletions } = await setup(await openMemoryStore({ clock: clock.now }), clock);
    await pool.bindConversation('chat-new', accountId, { createdByGateway: true, parentMessageId: 'm-1', deleteAt: clock.now() + 600_000 });
    await pool.bindConversation('chat-web', accountId, { createdByGateway: false, deleteAt: clock.now() + 600_000 });
    assert.deepEqual(await pool.getConversation('chat-new'), { accountId, createdByGateway: true, parentMessageId: 'm-1', deleteAfter: clock.now() + 600_000 });
    assert.equal((await pool.getConversation('chat-web'))?.deleteAfter, undefined);
    clock.advance(599_999);
    assert.equal(await pool.sweepDeletions(), 0);
    clock.advance(1);
    assert.equal(await pool.sweepDeletions(), 1);
    assert.deepEqual(deletions, [`${accountId}/chat-new`]);
    await pool.close();
  });

  test('a new chat\'s record is written only once its deletion job is stored, and not at all if that write fails', async () => {
    const clock = fakeClock();
    const memory = await openMemoryStore({ clock: clock.now });
    const issued: string[] = [];
    let settled = 0;
    let failJobs = false;
    // The store contract seen by the registry; a store that falls back or replays (resilient-store.ts) may
    // reorder concurrent calls, so only a finished job write may let the record go.
    const store: StateStore = Object.assign(Object.create(memory) as StateStore, {
      set: async (...args: Parameters<StateStore['set']>) => {
        issued.push(`${args[0]} after ${settled}`);
        if (failJobs && args[0].startsWith('del:')) throw new Error('the store did not answer');
        await memory.set(...args);
        settled += 1;
      },
    });
    const { pool, accountId } = await setup(store, clock);
    issued.length = 0;
    settled = 0;
    await pool.bindConversation('chat-new', accountId, { createdByGateway: true, deleteAt: clock.now() + 600_000 });
    assert.deepEqual(issued, ['del:chat-new after 0', 'conv:chat-new after 1']);
    failJobs = true;
    await assert.rejects(pool.bindConversation('chat-two', accountId, { createdByGateway: true, deleteAt: clock.now() + 600_000 }));
    assert.equal(await pool.getConversation('chat-two'), undefined);
    await pool.close();
  });

  test('continuing a chat resets its clock; a chat in use is not deleted under its feet', async () => {
    const clock = fakeClock();
    const { pool, accountId, deletions } = await setup(await openMemoryStore({ clock: clock.now }), clock);
    await pool.bindConversation('chat-2', accountId, { createdByGateway: true, deleteAt: clock.now() + 600_000 });
    clock.advance(500_000);
    await pool.bindConversation('chat-2', accountId, { createdByGateway: true, deleteAt: clock.now() + 600_000 }); // the continued turn ended
    clock.advance(200_000);
    assert.equal(await pool.sweepDeletions(), 0, 'the old deadline no longer applies');
    clock.advance(400_000);
    const lease = await pool.lease({ conversationId: 'chat-2' });
    assert.equal(await pool.sweepDeletions(), 0, 'busy');
    lease.release();
    assert.equal(await pool.sweepDeletions(), 1);
    assert.deepEqual(deletions, [`${accountId}/chat-2`]);
    await pool.close();
  });

  test('a pending deletion survives a restart: a new pool over the same state file deletes it', async () => {
    const clock = fakeClock();
    const filePath = join(directory, 'restart.json');
    const firstStore = await openMemoryStore({ filePath, clock: clock.now });
    const first = await setup(firstStore, clock);
    await first.pool.bindConversation('chat-3', first.accountId, { createdByGateway: true, deleteAt: clock.now() + 600_000 });
    await first.pool.close();
    await firstStore.close();
    clock.advance(700_000);
    const secondStore = await openMemoryStore({ filePath, clock: clock.now });
    const second = await setup(secondStore, clock);
    assert.equal(await second.pool.sweepDeletions(), 1);
    assert.deepEqual(second.deletions, [`${second.accountId}/chat-3`]);
    await second.pool.close();
    await secondStore.close();
  });

  test('a failed deletion is retried later with growing backoff (60 s, then 120 s)', async () => {
    const clock = fakeClock();
    const { pool, accountId, deletions } = await setup(await openMemoryStore({ clock: clock.now }), clock);
    await pool.bindConversation('flaky-1', accountId, { createdByGateway: true, deleteAt: clock.now() });
    assert.equal(await pool.sweepDeletions(), 0, 'first attempt fails');
    assert.ok(await pool.getConversation('flaky-1'), 'kept for a retry');
    clock.advance(59_000);
    assert.equal(await pool.sweepDeletions(), 0, 'not yet due');
    clock.advance(1_000);
    assert.equal(await pool.sweepDeletions(), 0, 'second attempt fails');
    clock.advance(119_000);
    assert.equal(await pool.sweepDeletions(), 0, 'backoff doubled');
    clock.advance(1_000);
    assert.equal(await pool.sweepDeletions(), 1);
    assert.deepEqual(deletions, [`${accountId}/flaky-1`]);
    await pool.close();
  });

  test('a failed deletion does not overwrite a job that a turn moved out meanwhile (the chat continued on another replica)', async () => {
    const clock = fakeClock();
    const store = await openMemoryStore({ clock: clock.now });
    const dayOut = clock.now() + 24 * 3_600_000;
    const { pool, accountId } = await setup(store, clock, async (accountId, conversationId) => {
      await pool.postponeDeletion(conversationId, accountId, dayOut); // while the delete call is in flight
      throw new Error('upstream 502');
    });
    await pool.bindConversation('chat-7', accountId, { createdByGateway: true, deleteAt: clock.now() });
    assert.equal(await pool.sweepDeletions(), 0);
    assert.equal((JSON.parse((await store.get('del:chat-7'))!) as { atMs: number }).atMs, dayOut, 'not the retry a minute later');
    clock.advance(60_000);
    assert.equal(await pool.sweepDeletions(), 0, 'nothing due');
    await pool.close();
  });

  test('a turn that arrives while its chat is being deleted gets 409 conversation_busy; the chat is gone afterwards', async () => {
    const clock = fakeClock();
    let finishDelete: () => void = () => undefined;
    let deleteStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (deleteStarted = resolve));
    const { pool, accountId } = await setup(await openMemoryStore({ clock: clock.now }), clock, () =>
      new Promise<void>((resolve) => {
        finishDelete = resolve;
        deleteStarted();
      }),
    );
    await pool.bindConversation('chat-8', accountId, { createdByGateway: true, deleteAt: clock.now() });
    const sweeping = pool.sweepDeletions();
    await started;
    await assert.rejects(pool.lease({ conversationId: 'chat-8', conversationAccountId: accountId }), ConflictError);
    finishDelete();
    assert.equal(await sweeping, 1);
    assert.equal(await pool.getConversation('chat-8'), undefined);
    const lease = await pool.lease({ conversationId: 'chat-8' });
    lease.release();
    await pool.close();
  });

  test('giving up on a chat after five failed deletes keeps it if a turn moved its job out meanwhile', async () => {
    const clock = fakeClock();
    const store = await openMemoryStore({ clock: clock.now });
    let attempts = 0;
    let dayOut = 0;
    const { pool, accountId } = await setup(store, clock, async (accountId, conversationId) => {
      attempts += 1;
      if (attempts === 5) {
        dayOut = clock.now() + 24 * 3_600_000;
        await pool.postponeDeletion(conversationId, accountId, dayOut);
      }
      throw new Error('upstream 502');
    });
    await pool.bindConversation('chat-9', accountId, { createdByGateway: true, deleteAt: clock.now() });
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      assert.equal(await pool.sweepDeletions(), 0);
      clock.advance(60_000 * 2 ** (attempt - 1));
    }
    assert.equal(attempts, 5);
    assert.ok(await pool.getConversation('chat-9'), 'the record stays for the running turn');
    assert.equal((JSON.parse((await store.get('del:chat-9'))!) as { atMs: number }).atMs, dayOut);
    await pool.close();
  });

  test('by default the account dialect deletes the chat with a fresh session; "not found" is success', async () => {
    const clock = fakeClock();
    const upstream = new FakeKimiUpstream({ clock: clock.now });
    upstream.register('bo', 'bo-refresh-0');
    const pool = createAccountPool({
      store: await openMemoryStore({ clock: clock.now }),
      dialects: upstream.dialects(),
      clock: clock.now,
      reloadIntervalMs: 0,
      sweepIntervalMs: 0,
    });
    const [account] = await pool.addServerAccounts(['bo-refresh-0']);
    for (const conversationId of ['chat-4', 'gone-5']) {
      await pool.bindConversation(conversationId, account.id, { createdByGateway: true, deleteAt: clock.now() });
    }
    assert.equal(await pool.sweepDeletions(), 2);
    assert.deepEqual(upstream.deleted, [{ accessToken: 'bo-access-1', conversationId: 'chat-4' }]);
    await pool.close();
  });
});
