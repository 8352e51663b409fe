// Tests for the Redis StateStore against a real redis-server on a free loopback port (issue 5, shared state).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startRedisServer } from '../../test/support/redis-server.ts';
import type { RedisServerHandle } from '../../test/support/redis-server.ts';
import { escapeGlob, openRedisStore } from './redis-store.ts';
import type { RedisStore } from './redis-store.ts';

let server: RedisServerHandle;
let store: RedisStore;
let other: RedisStore;

before(async () => {
  server = await startRedisServer();
  store = await openRedisStore({ url: server.url, keyPrefix: 'test:' });
  other = await openRedisStore({ url: server.url, keyPrefix: 'test:' });
});
after(async () => {
  await store?.close();
  await other?.close();
  await server?.stop();
});

describe('redis store', () => {
  test('get, set with TTL, getEntry and delete', async () => {
    assert.equal(store.isReady, true);
    await store.set('plain', 'v');
    await store.set('short', 'v', { ttlMs: 80 });
    assert.equal(await other.get('plain'), 'v', 'a second client (replica) sees it');
    const entry = await store.getEntry('short');
    assert.ok(entry?.ttlMs !== undefined && entry.ttlMs > 0 && entry.ttlMs <= 80);
    assert.deepEqual(await store.getEntry('plain'), { value: 'v' });
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(await store.get('short'), undefined);
    await store.delete('plain');
    assert.equal(await store.get('plain'), undefined);
  });

  test('compareAndSet and compareAndDelete are atomic across clients', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) => (index % 2 ? store : other).compareAndSet('cas', undefined, `w${index}`)),
    );
    assert.equal(results.filter(Boolean).length, 1, 'exactly one creator wins');
    const winner = await store.get('cas');
    assert.equal(await other.compareAndSet('cas', 'not-it', 'x'), false);
    assert.equal(await other.compareAndSet('cas', winner, 'next', { ttlMs: 5_000 }), true);
    assert.ok(((await store.getEntry('cas'))?.ttlMs ?? 0) > 4_000);
    assert.equal(await store.compareAndDelete('cas', 'old'), false);
    assert.equal(await store.compareAndDelete('cas', 'next'), true);
    assert.equal(await store.get('cas'), undefined);
  });

  test('locks: SET NX PX, owner-only release and extend, expiry frees them', async () => {
    const lock = await store.acquireLock('lock:refresh:acc', 150);
    assert.ok(lock);
    assert.equal(await other.acquireLock('lock:refresh:acc', 150), undefined);
    assert.equal(await lock.extend(400), true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await other.acquireLock('lock:refresh:acc', 150), undefined, 'extended');
    await new Promise((resolve) => setTimeout(resolve, 250));
    const next = await other.acquireLock('lock:refresh:acc', 5_000);
    assert.ok(next, 'expired lock can be taken');
    assert.equal(await lock.extend(1_000), false, 'the old holder lost it');
    await lock.release();
    assert.equal(await store.acquireLock('lock:refresh:acc', 150), undefined, 'old holder could not free it');
    await next.release();
    assert.ok(await store.acquireLock('lock:refresh:acc', 150));
    assert.deepEqual(await store.scan('lock:'), [], 'lock keys are not data keys');
  });

  test('scan matches a prefix literally', async () => {
    await store.set('account:a', '1');
    await store.set('account:b', '2');
    await store.set('accounts*weird', '3');
    await store.set('conv:1', '4');
    assert.deepEqual((await store.scan('account:')).sort(), ['account:a', 'account:b']);
    assert.deepEqual(await store.scan('accounts*'), ['accounts*weird']);
    assert.equal(escapeGlob('a*b?[c]\\'), 'a\\*b\\?\\[c\\]\\\\');
  });
});
