// Tests for Redis-with-fallback: Redis killed or hung mid-test, requests keep working, then it reconnects (issue 5).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startRedisServer } from '../../test/support/redis-server.ts';
import type { RedisServerHandle } from '../../test/support/redis-server.ts';
import { openMemoryStore } from './memory-store.ts';
import { openRedisStore } from './redis-store.ts';
import type { RedisStore } from './redis-store.ts';
import { createResilientStore } from './resilient-store.ts';
import type { StateStore, StoreLog } from './state-store.ts';

let server: RedisServerHandle;
const closers: Array<() => Promise<void>> = [];

before(async () => {
  server = await startRedisServer();
});
after(async () => {
  for (const close of closers) await close();
  await server?.stop();
});

function recordingLog(): StoreLog & { lines: string[] } {
  const lines: string[] = [];
  const push = (_details: Record<string, unknown>, message: string): void => void lines.push(message);
  return { lines, info: push, warn: push, error: push };
}

async function openPair(log: StoreLog): Promise<{ redis: RedisStore; store: StateStore }> {
  const redis = await openRedisStore({ url: server.url, keyPrefix: 'resilient:', commandTimeoutMs: 200, initialConnectWaitMs: 500 });
  const store = createResilientStore({ primary: redis, fallback: await openMemoryStore(), log, retryPrimaryAfterMs: 100 });
  closers.push(() => store.close());
  return { redis, store };
}

async function openPairWithFile(filePath: string, log: StoreLog = recordingLog()): Promise<{ redis: RedisStore; fallback: StateStore; store: StateStore }> {
  const redis = await openRedisStore({ url: server.url, keyPrefix: 'resilient:', commandTimeoutMs: 200, initialConnectWaitMs: 500 });
  const fallback = await openMemoryStore({ filePath, syncIntervalMs: 0 });
  return { redis, fallback, store: createResilientStore({ primary: redis, fallback, log, retryPrimaryAfterMs: 100 }) };
}

async function timed<T>(operation: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await operation();
  return { value, ms: performance.now() - started };
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('resilient store', () => {
  test('Redis killed mid-test: operations succeed from local state quickly, then replay to Redis after restart', async () => {
    const log = recordingLog();
    const { redis, store } = await openPair(log);
    await store.set('account:a', 'refresh-1');
    await store.set('cool:a', 'x', { ttlMs: 60_000 });
    assert.equal(await store.get('account:a'), 'refresh-1');

    await server.stop();
    const read = await timed(() => store.get('account:a'));
    assert.equal(read.value, 'refresh-1', 'served from the local mirror');
    assert.ok(read.ms < 500, `read took ${read.ms} ms`);
    const rotated = await timed(() => store.set('account:a', 'refresh-2', { durable: true }));
    assert.ok(rotated.ms < 500, `write took ${rotated.ms} ms`);
    assert.equal(await store.compareAndSet('account:b', undefined, 'refresh-b'), true);
    const lock = await store.acquireLock('lock:refresh:a', 1_000);
    assert.ok(lock, 'local lock while Redis is down');
    assert.equal(await store.acquireLock('lock:refresh:a', 1_000), undefined);
    await lock.release();
    assert.deepEqual((await store.scan('account:')).sort(), ['account:a', 'account:b']);
    assert.equal(log.lines.filter((line) => /unavailable/.test(line)).length, 1, 'logged once');

    await server.restart();
    await waitFor(() => redis.isReady);
    await waitFor(async () => (await store.get('account:a')) === 'refresh-2' && log.lines.some((line) => /back/.test(line)));
    const direct = await openRedisStore({ url: server.url, keyPrefix: 'resilient:' });
    assert.equal(await direct.get('account:a'), 'refresh-2', 'the rotation made during the outage reached Redis');
    assert.equal(await direct.get('account:b'), 'refresh-b');
    await direct.set('account:a', 'refresh-3');
    assert.equal(await store.get('account:a'), 'refresh-3', 'reads come from Redis again');
    await direct.close();
  });

  test('Redis hung (no answers): a command times out and falls back within the short timeout', async () => {
    const { store } = await openPair(recordingLog());
    await store.set('k', 'before');
    server.pause();
    try {
      const read = await timed(() => store.get('k'));
      assert.equal(read.value, 'before');
      assert.ok(read.ms < 1_000, `read took ${read.ms} ms (command timeout 200 ms)`);
      const next = await timed(() => store.set('k', 'during'));
      assert.ok(next.ms < 150, `the next write skipped the hung Redis (${next.ms} ms)`);
    } finally {
      server.resume();
    }
    await waitFor(async () => {
      await store.get('k');
      const direct = await openRedisStore({ url: server.url, keyPrefix: 'resilient:' });
      const value = await direct.get('k');
      await direct.close();
      return value === 'during';
    });
  });

  test('starts while Redis is down and serves from local state', async () => {
    const port = server.port;
    await server.stop();
    try {
      const redis = await openRedisStore({ url: `redis://127.0.0.1:${port}`, initialConnectWaitMs: 100 });
      const store = createResilientStore({ primary: redis, fallback: await openMemoryStore() });
      closers.push(() => store.close());
      assert.equal(redis.isReady, false);
      await store.set('k', 'v');
      assert.equal(await store.get('k'), 'v');
    } finally {
      await server.restart();
    }
  });

  test('a token rotated during an outage survives a crash and a restart: the next process replays it over the rotated-away one', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'kfa-resilient-'));
    const filePath = join(folder, 'state.json');
    try {
      const first = await openPairWithFile(filePath);
      await first.store.set('account:crash', 'refresh-before', { durable: true });
      await server.stop();
      await first.store.set('account:crash', 'refresh-rotated', { durable: true });
      // The process dies before Redis is back: nothing replays. Redis comes back with the token Kimi has rotated away
      // (restored from its own persistence; this test Redis keeps nothing, so the test puts it back).
      await first.redis.close();
      await first.fallback.close();
      await server.restart();
      const direct = await openRedisStore({ url: server.url, keyPrefix: 'resilient:' });
      await direct.set('account:crash', 'refresh-before');

      const log = recordingLog();
      const second = await openPairWithFile(filePath, log);
      assert.equal(await second.store.get('account:crash'), 'refresh-rotated', 'the restarted gateway uses the live token');
      assert.equal(await direct.get('account:crash'), 'refresh-rotated', 'and Redis has it again');
      assert.ok(log.lines.some((line) => /waiting/.test(line)) && log.lines.some((line) => /back/.test(line)), log.lines.join(' | '));
      await second.store.close();
      const file = await openMemoryStore({ filePath, syncIntervalMs: 0 });
      assert.deepEqual(await file.scan('redis-pending-write:'), [], 'the note is gone once Redis has the write');
      await file.close();
      await direct.close();
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('a write made during an outage does not overwrite a newer value another replica put in Redis meanwhile', async () => {
    const log = recordingLog();
    const { store } = await openPair(log);
    await store.set('account:race', 'refresh-0');
    server.pause();
    try {
      await store.set('account:race', 'refresh-mine');
    } finally {
      server.resume();
    }
    const other = await openRedisStore({ url: server.url, keyPrefix: 'resilient:' });
    await other.set('account:race', 'refresh-other');
    await new Promise((resolve) => setTimeout(resolve, 150)); // past retryPrimaryAfterMs
    assert.equal(await store.get('account:race'), 'refresh-other');
    assert.equal(await other.get('account:race'), 'refresh-other');
    assert.ok(log.lines.some((line) => /superseded/.test(line)), log.lines.join(' | '));
    await other.close();
  });
});
