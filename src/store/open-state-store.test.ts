// Tests for the start-up choice of state backend (contract REDIS_URL / STATE_FILE).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startRedisServer } from '../../test/support/redis-server.ts';
import type { RedisServerHandle } from '../../test/support/redis-server.ts';
import { openStateStore } from './open-state-store.ts';

let server: RedisServerHandle;
let directory: string;
before(async () => {
  server = await startRedisServer();
  directory = await mkdtemp(join(tmpdir(), 'open-state-store-'));
});
after(async () => {
  await server?.stop();
  await rm(directory, { recursive: true, force: true });
});

test('without REDIS_URL the state lives in the state file', async () => {
  const stateFilePath = join(directory, 'state.json');
  const store = await openStateStore({ stateFilePath });
  assert.equal(store.kind, 'memory');
  await store.set('k', 'v', { durable: true });
  assert.match(await readFile(stateFilePath, 'utf8'), /"k"/);
  await store.close();
});

test('with REDIS_URL the state is shared through Redis, with a local fallback', async () => {
  const first = await openStateStore({ redisUrl: server.url, stateFilePath: join(directory, 'unused.json') });
  const second = await openStateStore({ redisUrl: server.url });
  assert.equal(first.kind, 'redis+fallback');
  await first.set('shared', 'yes');
  assert.equal(await second.get('shared'), 'yes');
  await first.close();
  await second.close();
  await assert.rejects(readFile(join(directory, 'unused.json')), { code: 'ENOENT' });
});
