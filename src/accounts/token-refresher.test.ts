// Tests for sessions and refresh: single flight, proactive refresh, durable rotation before use (§3.4, §10.1, §10.2).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AuthenticationError, ServiceUnavailableError } from '../errors.ts';
import { openMemoryStore } from '../store/memory-store.ts';
import type { StateStore } from '../store/state-store.ts';
import { FakeKimiUpstream, fakeClock, makeJwt } from './__fixtures__/fake-kimi-upstream.ts';
import { newAccountRecord, readAccountRecord, storeKeys } from './account.ts';
import { classifyCredential } from './classify-credential.ts';
import { createTokenRefresher } from './token-refresher.ts';

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'token-refresher-'));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function seed(store: StateStore, token: string, now = Date.now()): Promise<string> {
  const record = newAccountRecord(classifyCredential(token, { now }), 'server', now);
  await store.set(storeKeys.account(record.id), JSON.stringify(record));
  return record.id;
}

describe('token refresher', () => {
  test('100 concurrent callers on a cold account cause exactly one refresh (§3.4 single flight)', async () => {
    const upstream = new FakeKimiUpstream({ refreshDelayMs: 50 });
    upstream.register('alice', 'alice-refresh-0');
    const store = await openMemoryStore();
    const id = await seed(store, 'alice-refresh-0');
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects() });
    const sessions = await Promise.all(Array.from({ length: 100 }, () => refresher.getSession(id)));
    assert.equal(upstream.refreshCalls.length, 1);
    assert.ok(sessions.every((session) => session.accessToken === 'alice-access-1'));
    await store.close();
  });

  test('two refreshers over one store (replicas) share one refresh through the lock and the shared session', async () => {
    const upstream = new FakeKimiUpstream({ refreshDelayMs: 80 });
    upstream.register('bob', 'bob-refresh-0');
    const store = await openMemoryStore();
    const id = await seed(store, 'bob-refresh-0');
    const replicas = [0, 1].map(() => createTokenRefresher({ store, dialects: upstream.dialects() }));
    const sessions = await Promise.all(Array.from({ length: 40 }, (_, index) => replicas[index % 2].getSession(id)));
    assert.equal(upstream.refreshCalls.length, 1);
    assert.equal(new Set(sessions.map((session) => session.accessToken)).size, 1);
    await store.close();
  });

  test('the session is reused until accessExpiresAt minus the skew, then refreshed with the rotated token', async () => {
    const clock = fakeClock();
    const upstream = new FakeKimiUpstream({ clock: clock.now, accessLifetimeMs: 900_000 });
    upstream.register('carol', 'carol-refresh-0');
    const store = await openMemoryStore({ clock: clock.now });
    const id = await seed(store, 'carol-refresh-0', clock.now());
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects(), clock: clock.now, skewMs: 120_000 });
    assert.equal((await refresher.getSession(id)).accessToken, 'carol-access-1');
    clock.advance(779_000);
    assert.equal((await refresher.getSession(id)).accessToken, 'carol-access-1');
    clock.advance(2_000);
    assert.equal((await refresher.getSession(id)).accessToken, 'carol-access-2');
    assert.deepEqual(
      upstream.refreshCalls.map((call) => call.token),
      ['carol-refresh-0', 'carol-refresh-1'],
    );
    await store.close();
  });

  test('the rotated refresh token is on disk before the session is returned, and a restart uses it (§10.2)', async () => {
    const filePath = join(directory, 'rotation.json');
    const upstream = new FakeKimiUpstream();
    upstream.register('dave', 'dave-refresh-0');
    const store = await openMemoryStore({ filePath, flushDelayMs: 60_000 });
    const id = await seed(store, 'dave-refresh-0');
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects() });
    await refresher.getSession(id);
    // Read the file itself (the debounce is a minute): the rotation must already be there.
    const onDisk = JSON.parse(await readFile(filePath, 'utf8'));
    assert.equal(JSON.parse(onDisk.entries[storeKeys.account(id)].value).token, 'dave-refresh-1');
    // "Crash": a new process over the same file, with the old access session gone.
    const restarted = await openMemoryStore({ filePath });
    await restarted.delete(storeKeys.session(id));
    const afterRestart = createTokenRefresher({ store: restarted, dialects: upstream.dialects() });
    assert.equal((await afterRestart.getSession(id)).accessToken, 'dave-access-2');
    assert.equal(upstream.refreshCalls.at(-1)?.token, 'dave-refresh-1');
    await restarted.close();
    await store.close();
  });

  test('when the rotation cannot be saved the new access token is not used, and the rotation is saved first next time', async () => {
    const upstream = new FakeKimiUpstream();
    upstream.register('erin', 'erin-refresh-0');
    const inner = await openMemoryStore();
    let isFailing = false;
    const store: StateStore = {
      ...inner,
      async compareAndSet(key, expected, value, options) {
        if (isFailing && key.startsWith('account:')) throw new Error('disk full');
        return inner.compareAndSet(key, expected, value, options);
      },
    };
    const id = await seed(inner, 'erin-refresh-0');
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects() });
    isFailing = true;
    await assert.rejects(refresher.getSession(id), ServiceUnavailableError);
    assert.equal(await inner.get(storeKeys.session(id)), undefined, 'the unsaved session was not shared');
    isFailing = false;
    assert.equal((await refresher.getSession(id)).accessToken, 'erin-access-2');
    assert.equal(upstream.refreshCalls[1].token, 'erin-refresh-1', 'the second refresh used the rotated token');
    assert.equal((await readAccountRecord(inner, id))?.token, 'erin-refresh-2');
  });

  test('a user-center refresh JWT refused by legacy falls back to the current dialect and stays there (§10.1)', async () => {
    const token = makeJwt({ iss: 'user-center', typ: 'refresh', sub: 'frank' });
    const upstream = new FakeKimiUpstream();
    upstream.register('frank', token);
    upstream.refused.add('legacy');
    const store = await openMemoryStore();
    const id = await seed(store, token);
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects() });
    const session = await refresher.getSession(id);
    assert.equal(session.dialect, 'current');
    assert.deepEqual(upstream.refreshCalls.map((call) => call.dialect), ['legacy', 'current']);
    const record = await readAccountRecord(store, id);
    assert.equal(record?.dialect, 'current');
    assert.equal(record?.fallbackDialect, undefined);
  });

  test('a refused refresh marks the account invalid once; later calls fail without calling upstream', async () => {
    const upstream = new FakeKimiUpstream();
    const store = await openMemoryStore();
    const id = await seed(store, 'unknown-token');
    const invalid: string[] = [];
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects(), onInvalid: (accountId) => invalid.push(accountId) });
    await assert.rejects(refresher.getSession(id), (error: unknown) => {
      assert.ok(error instanceof AuthenticationError);
      assert.doesNotMatch(error.message, /unknown-token/);
      return true;
    });
    await assert.rejects(refresher.getSession(id), AuthenticationError);
    assert.equal(upstream.refreshCalls.length, 1);
    assert.deepEqual(invalid, [id]);
    assert.ok(await store.get(storeKeys.invalid(id)));
  });

  test('after a 401, concurrent callers with the same stale session cause one refresh (§3.4 reactive)', async () => {
    const upstream = new FakeKimiUpstream({ refreshDelayMs: 20 });
    upstream.register('gina', 'gina-refresh-0');
    const store = await openMemoryStore();
    const id = await seed(store, 'gina-refresh-0');
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects() });
    const stale = await refresher.getSession(id);
    const renewed = await Promise.all(Array.from({ length: 5 }, () => refresher.refreshAfterAuthFailure(id, stale)));
    assert.equal(upstream.refreshCalls.length, 2);
    assert.ok(renewed.every((session) => session.accessToken === 'gina-access-2'));
  });

  test('a pasted access token is used until it expires, then the account is invalid with advice (§9 D2)', async () => {
    const clock = fakeClock();
    const exp = Math.floor(clock.now() / 1000) + 900;
    const token = makeJwt({ iss: 'user-center', typ: 'access', iat: exp - 900, exp });
    const upstream = new FakeKimiUpstream();
    const store = await openMemoryStore({ clock: clock.now });
    const id = await seed(store, token, clock.now());
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects(), clock: clock.now });
    assert.equal((await refresher.getSession(id)).accessToken, token);
    clock.advance(901_000);
    await assert.rejects(refresher.getSession(id), /refresh token/);
    assert.equal(upstream.refreshCalls.length, 0);
    assert.ok(await store.get(storeKeys.invalid(id)));
  });

  test('a caller that gives up (abort) does not cancel the shared refresh', async () => {
    const upstream = new FakeKimiUpstream({ refreshDelayMs: 60 });
    upstream.register('hana', 'hana-refresh-0');
    const store = await openMemoryStore();
    const id = await seed(store, 'hana-refresh-0');
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects() });
    const controller = new AbortController();
    const impatient = refresher.getSession(id, controller.signal);
    const patient = refresher.getSession(id);
    controller.abort(new Error('client went away'));
    await assert.rejects(impatient, /client went away/);
    assert.equal((await patient).accessToken, 'hana-access-1');
    assert.equal(upstream.refreshCalls.length, 1);
  });
});

describe('token refresher clock safety', () => {
  test('an access token that already looks expired (clock ahead of Kimi) is still used 30 s, not refreshed in a loop', async () => {
    const clock = fakeClock();
    const upstream = new FakeKimiUpstream({ clock: () => clock.now() - 3_600_000 }); // Kimi's clock is an hour behind
    upstream.register('ivy', 'ivy-refresh-0');
    const store = await openMemoryStore({ clock: clock.now });
    const id = await seed(store, 'ivy-refresh-0', clock.now());
    const refresher = createTokenRefresher({ store, dialects: upstream.dialects(), clock: clock.now });
    await refresher.getSession(id);
    clock.advance(29_000);
    await refresher.getSession(id);
    assert.equal(upstream.refreshCalls.length, 1);
    clock.advance(2_000);
    await refresher.getSession(id);
    assert.equal(upstream.refreshCalls.length, 2);
  });
});
