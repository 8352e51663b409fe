// Tests for the account pool: choice, cooldown and Retry-After, failover, affinity, waiting room (issue 5; §10.6).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthenticationError, ConflictError, InvalidRequestError, NotFoundError, RateLimitError, UpstreamError } from '../errors.ts';
import { openMemoryStore } from '../store/memory-store.ts';
import { FakeKimiUpstream, fakeClock } from './__fixtures__/fake-kimi-upstream.ts';
import type { FakeClock } from './__fixtures__/fake-kimi-upstream.ts';
import { createAccountPool } from './account-pool.ts';
import type { AccountPool, AccountPoolOptions } from './account-pool.ts';
import { storeKeys } from './account.ts';

interface Setup {
  pool: AccountPool;
  upstream: FakeKimiUpstream;
  clock: FakeClock;
  ids: string[];
}

async function setup(names: string[], overrides: Partial<AccountPoolOptions> = {}): Promise<Setup> {
  const clock = fakeClock();
  const upstream = new FakeKimiUpstream({ clock: clock.now });
  for (const name of names) upstream.register(name, `${name}-refresh-0`);
  const store = overrides.store ?? (await openMemoryStore({ clock: clock.now }));
  const pool = createAccountPool({
    store,
    dialects: upstream.dialects(),
    clock: clock.now,
    reloadIntervalMs: 0,
    sweepIntervalMs: 0,
    ...overrides,
  });
  const accounts = await pool.addServerAccounts(names.map((name) => `${name}-refresh-0`));
  return { pool, upstream, clock, ids: accounts.map((account) => account.id) };
}

async function leaseAndRelease(pool: AccountPool, options = {}): Promise<string> {
  const lease = await pool.lease(options);
  lease.release();
  return lease.account.id;
}

describe('account pool choice', () => {
  test('least recently used first: A, B, C, then A again', async () => {
    const { pool, clock, ids } = await setup(['a', 'b', 'c']);
    const order: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      clock.advance(10);
      order.push(await leaseAndRelease(pool));
    }
    assert.deepEqual(order, [ids[0], ids[1], ids[2], ids[0]]);
    await pool.close();
  });

  test('a cooling account is skipped; when all cool, 429 with Retry-After = the soonest end (§10.6)', async () => {
    const { pool, clock, ids } = await setup(['a', 'b']);
    const first = await pool.lease();
    await first.reportFailure(new RateLimitError('rate_limited', 'limit', { retryAfterMs: 30_000 }));
    first.release();
    clock.advance(5);
    const second = await pool.lease();
    assert.equal(second.account.id, ids[1]);
    await second.reportFailure(new RateLimitError('upstream_overloaded', 'busy')); // no hint: configured 60 s
    second.release();
    await assert.rejects(pool.lease(), (error: unknown) => {
      assert.ok(error instanceof RateLimitError);
      assert.equal(error.code, 'rate_limited');
      assert.equal(error.retryAfterMs, 30_000 - 5);
      return true;
    });
    clock.advance(30_000);
    assert.equal(await leaseAndRelease(pool), ids[0], 'back after its cooldown');
    const snapshot = await pool.snapshot();
    assert.equal(snapshot.find((entry) => entry.id === ids[1])?.state, 'cooling');
    await pool.close();
  });

  test('insufficient_quota without a reset time cools for the quota cooldown and is reported as such', async () => {
    const { pool, clock } = await setup(['a'], { quotaCooldownMs: 7_200_000 });
    const lease = await pool.lease();
    await lease.reportFailure(new RateLimitError('insufficient_quota', 'Monthly quota used up'));
    lease.release();
    clock.advance(3_600_000);
    await assert.rejects(pool.lease(), (error: unknown) => {
      assert.ok(error instanceof RateLimitError);
      assert.equal(error.code, 'insufficient_quota');
      assert.equal(error.retryAfterMs, 3_600_000);
      return true;
    });
    await pool.close();
  });

  test('every account refused → 401 invalid_token; snapshot says invalid and never holds a token', async () => {
    const { pool, upstream } = await setup(['a']);
    const bad = await pool.addAccount('not-registered-token');
    const lease = await pool.lease({ candidates: [bad] });
    await assert.rejects(lease.session(), AuthenticationError);
    lease.release();
    await assert.rejects(pool.lease({ candidates: [bad] }), (error: unknown) => error instanceof AuthenticationError);
    const snapshot = await pool.snapshot();
    assert.equal(snapshot.find((entry) => entry.id === bad.id)?.state, 'invalid');
    assert.doesNotMatch(JSON.stringify(snapshot), /refresh-0|not-registered/);
    assert.equal(upstream.refreshCalls.length, 1);
    await pool.close();
  });
});

describe('conversation affinity', () => {
  test('a bound conversation always goes back to its account, cooling or not', async () => {
    const { pool, clock, ids } = await setup(['a', 'b']);
    await pool.bindConversation('chat-1', ids[1], { createdByGateway: true, parentMessageId: 'm1' });
    for (let index = 0; index < 3; index += 1) {
      clock.advance(10);
      assert.equal(await leaseAndRelease(pool, { conversationId: 'chat-1' }), ids[1]);
    }
    const lease = await pool.lease({ conversationId: 'chat-1' });
    await lease.reportFailure(new RateLimitError('rate_limited', 'limit', { retryAfterMs: 9_000 }));
    lease.release();
    await assert.rejects(pool.lease({ conversationId: 'chat-1' }), (error: unknown) => {
      return error instanceof RateLimitError && error.retryAfterMs === 9_000;
    });
    assert.equal(await leaseAndRelease(pool), ids[0], 'other requests still use account a');
    await pool.close();
  });

  test('a conversation of an account the request does not hold is not found; a second stream in it conflicts', async () => {
    const { pool, ids } = await setup(['a', 'b']);
    await pool.bindConversation('chat-2', ids[0], { createdByGateway: true });
    const [onlyB] = (await pool.serverAccounts()).filter((account) => account.id === ids[1]);
    await assert.rejects(pool.lease({ candidates: [onlyB], conversationId: 'chat-2' }), (error: unknown) => {
      return error instanceof NotFoundError && error.code === 'conversation_not_found';
    });
    const running = await pool.lease({ conversationId: 'chat-2' });
    await assert.rejects(pool.lease({ conversationId: 'chat-2' }), ConflictError);
    running.release();
    assert.equal(await leaseAndRelease(pool, { conversationId: 'chat-2' }), ids[0]);
    await pool.close();
  });
});

describe('waiting room', () => {
  test('busy accounts queue FIFO, a full queue is a 429, a wait times out with Retry-After', async () => {
    const { pool } = await setup(['a'], { accountMaxConcurrency: 1, queueMax: 2, queueTimeoutMs: 200, busyRetryAfterMs: 1_500 });
    const holder = await pool.lease();
    const order: number[] = [];
    const second = pool.lease().then((lease) => (order.push(2), lease));
    const third = pool.lease().then((lease) => (order.push(3), lease));
    await assert.rejects(pool.lease(), (error: unknown) => error instanceof RateLimitError && error.retryAfterMs === 1_500);
    holder.release();
    const secondLease = await second;
    secondLease.release();
    (await third).release();
    assert.deepEqual(order, [2, 3]);
    const blocker = await pool.lease();
    const started = performance.now();
    await assert.rejects(pool.lease(), (error: unknown) => error instanceof RateLimitError && /Timed out/.test(error.message));
    assert.ok(performance.now() - started >= 190);
    blocker.release();
    await pool.close();
  });

  test('a request waiting while one account cools and the other is busy gets the first when its cooldown ends, before any newcomer', async () => {
    const { pool, ids } = await setup(['a', 'b'], { accountMaxConcurrency: 1, queueTimeoutMs: 3_000, clock: Date.now });
    const [a, b] = ids;
    const limited = await pool.lease();
    assert.equal(limited.account.id, a);
    await limited.reportFailure(new RateLimitError('rate_limited', 'limit', { retryAfterMs: 300 }));
    limited.release();
    const busy = await pool.lease();
    assert.equal(busy.account.id, b);
    const started = performance.now();
    const waiter = await pool.lease();
    assert.equal(waiter.account.id, a, 'the waiter got the account whose cooldown ended');
    assert.ok(performance.now() - started < 1_500, `served at the cooldown's end, not at the queue timeout (${Math.round(performance.now() - started)} ms)`);
    const newcomer = pool.lease();
    busy.release();
    assert.equal((await newcomer).account.id, b, 'the newcomer waited for the next free slot');
    waiter.release();
    (await newcomer).release();
    await pool.close();
  });

  test('a waiter whose only account starts cooling is answered at once with the cooldown', async () => {
    const { pool } = await setup(['a'], { accountMaxConcurrency: 1, queueTimeoutMs: 5_000 });
    const holder = await pool.lease();
    const waiting = pool.lease();
    await holder.reportFailure(new RateLimitError('rate_limited', 'limit', { retryAfterMs: 4_000 }));
    await assert.rejects(waiting, (error: unknown) => error instanceof RateLimitError && error.retryAfterMs === 4_000);
    holder.release();
    await pool.close();
  });
});

describe('accounts from outside', () => {
  test('an account added by another process appears after a reload; bearer accounts stay out of the server pool', async () => {
    const clock = fakeClock();
    const store = await openMemoryStore({ clock: clock.now });
    const { pool } = await setup(['a'], { store });
    const upstream = new FakeKimiUpstream();
    const other = createAccountPool({ store, dialects: upstream.dialects(), reloadIntervalMs: 0, sweepIntervalMs: 0 });
    const added = await other.addAccount('z-refresh-0');
    const [bearer] = await other.accountsFromBearer(['y-refresh-0']);
    assert.equal(bearer.source, 'bearer');
    await pool.reload();
    const serverIds = pool.serverAccounts().map((account) => account.id);
    assert.ok(serverIds.includes(added.id));
    assert.ok(!serverIds.includes(bearer.id));
    await other.close();
    await pool.close();
  });

  test('the background reload picks an added account up by itself', async () => {
    const store = await openMemoryStore();
    const upstream = new FakeKimiUpstream();
    const pool = createAccountPool({ store, dialects: upstream.dialects(), reloadIntervalMs: 30, sweepIntervalMs: 0 });
    const other = createAccountPool({ store, dialects: upstream.dialects(), reloadIntervalMs: 0, sweepIntervalMs: 0 });
    const added = await other.addAccount('late-refresh-0');
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.deepEqual(pool.serverAccounts().map((account) => account.id), [added.id]);
    await other.close();
    await pool.close();
  });

  test('a bearer token keeps its rotation: the next request with the original token uses the rotated one', async () => {
    const { pool, upstream, clock } = await setup([]);
    upstream.register('bea', 'bea-refresh-0');
    const [account] = await pool.accountsFromBearer(['bea-refresh-0']);
    const lease = await pool.lease({ candidates: [account] });
    await lease.session();
    lease.release();
    clock.advance(900_000);
    const [again] = await pool.accountsFromBearer(['bea-refresh-0']);
    assert.equal(again.id, account.id);
    const next = await pool.lease({ candidates: [again] });
    assert.equal((await next.session()).accessToken, 'bea-access-2');
    next.release();
    assert.deepEqual(upstream.refreshCalls.map((call) => call.token), ['bea-refresh-0', 'bea-refresh-1']);
    await pool.close();
  });

  test('addServerAccounts on restart keeps the rotated token rather than the configured original', async () => {
    const store = await openMemoryStore();
    const first = await setup(['kim'], { store });
    const lease = await first.pool.lease();
    await lease.session();
    lease.release();
    await first.pool.close();
    await store.delete(storeKeys.session(first.ids[0]));
    const second = createAccountPool({ store, dialects: first.upstream.dialects(), reloadIntervalMs: 0, sweepIntervalMs: 0 });
    await second.addServerAccounts(['kim-refresh-0']);
    const again = await second.lease();
    assert.equal((await again.session()).accessToken, 'kim-access-2');
    again.release();
    await second.close();
  });

  test('checkAccounts probes live and reports a profile and the state', async () => {
    const { pool, ids } = await setup(['a']);
    const bad = await pool.addAccount('never-registered');
    const checks = await pool.checkAccounts();
    const byId = Object.fromEntries(checks.map((check) => [check.id, check]));
    assert.equal(byId[ids[0]].state, 'live');
    assert.equal(byId[ids[0]].profile?.userId, 'a');
    assert.ok(byId[ids[0]].accessExpiresAt);
    assert.equal(byId[bad.id].state, 'invalid');
    assert.match(byId[bad.id].error ?? '', /invalid/);
    await pool.close();
  });
});
