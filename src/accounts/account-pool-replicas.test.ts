// Two gateway replicas (two pools) sharing one real redis-server: one refresh, no lost token, shared cooldowns,
// and Redis killed mid-test (issue 5; protocol spec §3.4 rotation, §10.2).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startRedisServer } from '../../test/support/redis-server.ts';
import type { RedisServerHandle } from '../../test/support/redis-server.ts';
import { RateLimitError } from '../errors.ts';
import { openMemoryStore } from '../store/memory-store.ts';
import { openRedisStore } from '../store/redis-store.ts';
import type { RedisStore } from '../store/redis-store.ts';
import { createResilientStore } from '../store/resilient-store.ts';
import type { StateStore } from '../store/state-store.ts';
import { FakeKimiUpstream } from './__fixtures__/fake-kimi-upstream.ts';
import { createAccountPool } from './account-pool.ts';
import type { AccountPool } from './account-pool.ts';
import { readAccountRecord } from './account.ts';

let server: RedisServerHandle;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  server = await startRedisServer();
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await server?.stop();
});

interface Replica {
  pool: AccountPool;
  store: StateStore;
  redis: RedisStore;
}

async function startReplica(upstream: FakeKimiUpstream, keyPrefix: string): Promise<Replica> {
  const redis = await openRedisStore({ url: server.url, keyPrefix, commandTimeoutMs: 300 });
  const store = createResilientStore({ primary: redis, fallback: await openMemoryStore(), retryPrimaryAfterMs: 100 });
  const pool = createAccountPool({
    store,
    dialects: upstream.dialects(),
    accountMaxConcurrency: 1_000,
    reloadIntervalMs: 0,
    sweepIntervalMs: 0,
  });
  cleanups.push(async () => {
    await pool.close();
    await store.close();
  });
  return { pool, store, redis };
}

async function sessionOnce(pool: AccountPool): Promise<string> {
  const lease = await pool.lease();
  try {
    return (await lease.session()).accessToken;
  } finally {
    lease.release();
  }
}

describe('replicas over one Redis', () => {
  test('one account hammered from two replicas: exactly one refresh per expiry, and the rotated token is never lost', async () => {
    const upstream = new FakeKimiUpstream({ refreshDelayMs: 100 });
    upstream.register('ray', 'ray-refresh-0');
    const [first, second] = [await startReplica(upstream, 'hammer:'), await startReplica(upstream, 'hammer:')];
    const [account] = await first.pool.addServerAccounts(['ray-refresh-0']);
    await second.pool.addServerAccounts(['ray-refresh-0']);

    const tokens = await Promise.all(Array.from({ length: 100 }, (_, index) => sessionOnce((index % 2 ? first : second).pool)));
    assert.equal(upstream.refreshCalls.length, 1);
    assert.deepEqual(new Set(tokens), new Set(['ray-access-1']));
    assert.equal((await readAccountRecord(first.redis, account.id))?.token, 'ray-refresh-1');

    // Both replicas get a 401 with the same access token at once (e.g. it was revoked): one refresh between them.
    const leases = await Promise.all(Array.from({ length: 20 }, (_, index) => (index % 2 ? first : second).pool.lease()));
    await Promise.all(leases.map((lease) => lease.session()));
    const renewed = await Promise.all(leases.map((lease) => lease.refreshAfterAuthFailure()));
    for (const lease of leases) lease.release();
    assert.equal(upstream.refreshCalls.length, 2, 'a second rotation would have used a dead token');
    assert.deepEqual(new Set(renewed.map((session) => session.accessToken)), new Set(['ray-access-2']));
    const stored = await readAccountRecord(second.redis, account.id);
    assert.equal(stored?.token, 'ray-refresh-2');
    assert.ok(upstream.isCurrent('ray-refresh-2'), 'the stored token is the one upstream accepts');
    const states = (await first.pool.snapshot()).map((entry) => entry.state);
    assert.deepEqual(states, ['live']);
  });

  test('a cooldown set by one replica is honoured by the other, with Retry-After from the shared mark', async () => {
    const upstream = new FakeKimiUpstream();
    upstream.register('cy', 'cy-refresh-0');
    const [first, second] = [await startReplica(upstream, 'cool:'), await startReplica(upstream, 'cool:')];
    await first.pool.addServerAccounts(['cy-refresh-0']);
    await second.pool.addServerAccounts(['cy-refresh-0']);
    const lease = await first.pool.lease();
    await lease.reportFailure(new RateLimitError('rate_limited', 'limit', { retryAfterMs: 30_000 }));
    lease.release();
    await assert.rejects(second.pool.lease(), (error: unknown) => {
      assert.ok(error instanceof RateLimitError);
      assert.ok(error.retryAfterMs !== undefined && error.retryAfterMs > 29_000 && error.retryAfterMs <= 30_000);
      return true;
    });
  });

  test('Redis killed mid-test: requests are still answered, a rotation made meanwhile reaches Redis after restart', async () => {
    const upstream = new FakeKimiUpstream();
    upstream.register('di', 'di-refresh-0');
    const first = await startReplica(upstream, 'outage:');
    const [account] = await first.pool.addServerAccounts(['di-refresh-0']);
    assert.equal(await sessionOnce(first.pool), 'di-access-1');

    await server.stop();
    const started = performance.now();
    assert.equal(await sessionOnce(first.pool), 'di-access-1', 'answered from local state');
    const lease = await first.pool.lease();
    await lease.session();
    assert.equal((await lease.refreshAfterAuthFailure()).accessToken, 'di-access-2', 'refresh works during the outage');
    lease.release();
    assert.ok(performance.now() - started < 2_000, 'no long hangs on the dead Redis');

    await server.restart();
    const deadline = Date.now() + 5_000;
    while (!first.redis.isReady && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.equal(await sessionOnce(first.pool), 'di-access-2');
    const direct = await openRedisStore({ url: server.url, keyPrefix: 'outage:' });
    let stored: string | undefined;
    while (Date.now() < deadline) {
      await first.store.get('probe'); // any operation lets the store notice Redis is back and replay
      stored = (await readAccountRecord(direct, account.id))?.token;
      if (stored === 'di-refresh-2') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await direct.close();
    assert.equal(stored, 'di-refresh-2');
    // A second replica that starts now refreshes with the rotated token.
    const second = await startReplica(upstream, 'outage:');
    await second.pool.reload();
    const next = await second.pool.lease();
    await next.session();
    assert.equal((await next.refreshAfterAuthFailure()).accessToken, 'di-access-3');
    next.release();
    assert.equal(upstream.refreshCalls.at(-1)?.token, 'di-refresh-2');
  });
});
