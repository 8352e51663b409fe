// The chat service's failover policy with the real account pool (issue 5; spec §3.4 reactive refresh, §10.6):
// which failures move to another account, the one refresh after a 401, and the attempt and time bounds.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeKimiUpstream, fakeClock, type FakeClock } from '../accounts/__fixtures__/fake-kimi-upstream.ts';
import { createAccountPool, type AccountPool } from '../accounts/account-pool.ts';
import { createChatAccounts } from '../chat-accounts.ts';
import { AuthenticationError, ConflictError, InvalidRequestError, RateLimitError, UpstreamError } from '../errors.ts';
import { openMemoryStore } from '../store/memory-store.ts';
import type { StateStore } from '../store/state-store.ts';
import { eachEvent, type ChatEvent, type DialectName, type KimiDialect, type KimiPrompt, type Session } from '../upstream/dialect.ts';
import { createChatService, type ChatService } from './chat-service.ts';
import { foldChatEvents } from './fold-chat-events.ts';
import { createModelCatalog } from './model-catalog.ts';

/**
 * Decides what one upstream reply does; `name` is the account, from its access token (`a-access-1`). Each item is
 * one batch: an event alone, or an array of events that arrived together.
 */
type Reply = (name: string, accessToken: string, call: number) => (ChatEvent | ChatEvent[] | Error)[] | Error;

interface Setup {
  chat: ChatService;
  pool: AccountPool;
  upstream: FakeKimiUpstream;
  clock: FakeClock;
  ids: string[];
  calls: string[];
  /** The prompt of each upstream call, in order. */
  prompts: KimiPrompt[];
  /** The pool's state store (unwrapped). */
  store: StateStore;
  /** Upstream replies whose stream has been closed (ended, failed or abandoned by the consumer). */
  closedReplies: () => number;
}

const silentLog = { info() {}, warn() {} };

interface SetupOptions {
  maxAttempts?: number;
  attemptBudgetMs?: number;
  retentionSeconds?: number;
  /** Wraps the pool's state store (to watch its calls). */
  wrapStore?: (store: StateStore) => StateStore;
  accountMaxConcurrency?: number;
}

async function setup(names: string[], reply: Reply, limits: SetupOptions = {}): Promise<Setup> {
  const clock = fakeClock();
  const upstream = new FakeKimiUpstream({ clock: clock.now });
  for (const name of names) upstream.register(name, `${name}-refresh-0`);
  const calls: string[] = [];
  const prompts: KimiPrompt[] = [];
  let closedReplies = 0;
  const withReplies = (dialect: KimiDialect): KimiDialect => ({
    ...dialect,
    async *streamReply(session: Session, prompt: KimiPrompt) {
      const name = session.accessToken.split('-')[0];
      calls.push(session.accessToken);
      prompts.push(prompt);
      const outcome = reply(name, session.accessToken, calls.length);
      if (outcome instanceof Error) throw outcome;
      try {
        for (const item of outcome) {
          if (item instanceof Error) throw item;
          yield Array.isArray(item) ? item : [item];
        }
      } finally {
        closedReplies += 1;
      }
    },
  });
  const base = upstream.dialects();
  const dialects: Record<DialectName, KimiDialect> = { current: withReplies(base.current), legacy: withReplies(base.legacy) };
  const store = await openMemoryStore({ clock: clock.now });
  const pool = createAccountPool({ store: limits.wrapStore?.(store) ?? store, accountMaxConcurrency: limits.accountMaxConcurrency, dialects, clock: clock.now, reloadIntervalMs: 0, sweepIntervalMs: 0 });
  const accounts = await pool.addServerAccounts(names.map((name) => `${name}-refresh-0`));
  const chat = createChatService({
    dialects,
    accounts: createChatAccounts(pool),
    attachments: { open: () => Promise.reject(new Error('no attachments in these tests')) },
    catalog: createModelCatalog({ chatModel: 'k2d6-chat', chatScenario: 'SCENARIO_CHAT', thinkingEffort: 'REASONING_EFFORT_LOW' }),
    retentionSeconds: limits.retentionSeconds ?? -1,
    maxAttempts: limits.maxAttempts ?? 3,
    attemptBudgetMs: limits.attemptBudgetMs ?? 20_000,
    log: silentLog,
    clock: clock.now,
  });
  return { chat, pool, upstream, clock, ids: accounts.map((account) => account.id), calls, prompts, store, closedReplies: () => closedReplies };
}

function answer(text: string): ChatEvent[] {
  return [{ type: 'conversation-start', conversationId: `chat-${text}` }, { type: 'text-delta', text }, { type: 'finish', reason: 'stop' }];
}

function ask(chat: ChatService, conversationId?: string) {
  return foldChatEvents(eachEvent(chat.streamChat({ messages: [{ role: 'user', content: 'hi' }], conversationId }, new AbortController().signal).batches));
}

describe('temporary chats (§10.3, CHAT_RETENTION_SECONDS)', () => {
  test('a new chat is scheduled for deletion as soon as Kimi names it: a process that dies mid-turn still has it deleted a day later', async () => {
    const { chat, pool, store, upstream, clock, ids } = await setup(['a'], () => [{ type: 'conversation-start', conversationId: 'chat-mid' }, { type: 'text-delta', text: 'partial' }, { type: 'finish', reason: 'stop' }], { retentionSeconds: 1 });
    const batches = chat.streamChat({ messages: [{ role: 'user', content: 'hi' }] }, new AbortController().signal).batches[Symbol.asyncIterator]();
    await batches.next(); // the answer is streaming; the process "dies" here, never finishing the turn
    await new Promise((resolve) => setImmediate(resolve));
    const job = JSON.parse((await store.get('del:chat-mid')) ?? 'null') as { accountId: string; atMs: number } | null;
    assert.ok(job, 'a deletion job exists before the answer ends');
    assert.equal(job.accountId, ids[0]);
    assert.equal(job.atMs, clock.now() + 24 * 3_600_000, 'a day out (longer than the 1 s retention: the turn may run long)');
    // A restarted process on the same store: the sweeper finds the job and deletes the chat.
    const restarted = createAccountPool({ store, dialects: upstream.dialects(), clock: clock.now, reloadIntervalMs: 0, sweepIntervalMs: 0 });
    await restarted.addServerAccounts(['a-refresh-0']);
    clock.advance(24 * 3_600_000);
    assert.equal(await restarted.sweepDeletions(), 1);
    assert.deepEqual(upstream.deleted.map((entry) => entry.conversationId), ['chat-mid']);
    await restarted.close();
    await pool.close();
  });

  test('an answered chat is kept for the retention, then the sweeper deletes it', async () => {
    const { chat, pool, upstream, clock, ids } = await setup(['a'], (_name, token) => answer(token), { retentionSeconds: 600 });
    assert.equal((await ask(chat)).text, 'a-access-1');
    assert.deepEqual(await pool.getConversation('chat-a-access-1'), { accountId: ids[0], createdByGateway: true, deleteAfter: clock.now() + 600_000 });
    assert.equal(await pool.sweepDeletions(), 0);
    clock.advance(600_000);
    assert.equal(await pool.sweepDeletions(), 1);
    assert.deepEqual(upstream.deleted.map((entry) => entry.conversationId), ['chat-a-access-1']);
    await pool.close();
  });

  test('a continued turn that fails before answering keeps the chat and schedules its deletion again, so the client can retry', async () => {
    let turn = 0;
    const { chat, pool, upstream, clock, ids } = await setup(['a'], (_name, token) => {
      turn += 1;
      return turn === 1 ? answer(token) : new RateLimitError('upstream_overloaded', 'busy', { retryAfterMs: 1_000 });
    }, { retentionSeconds: 600 });
    await ask(chat);
    clock.advance(60_000);
    await assert.rejects(ask(chat, 'chat-a-access-1'), RateLimitError);
    await chat.idle();
    assert.deepEqual(upstream.deleted, [], 'the earlier turns are still there to continue');
    assert.deepEqual(await pool.getConversation('chat-a-access-1'), { accountId: ids[0], createdByGateway: true, deleteAfter: clock.now() + 600_000 });
    clock.advance(600_000);
    assert.equal(await pool.sweepDeletions(), 1, 'and it is still deleted once the retention has passed');
    await pool.close();
  });

  test('a continued turn that failed after Kimi started its answer moves the parent there (§3.8: the next turn must follow it); one that failed before leaves it', async () => {
    const { chat, pool, prompts } = await setup(['a'], (_name, _token, call) => {
      if (call === 1) return [{ type: 'conversation-start', conversationId: 'chat-1' }, { type: 'message-start', messageId: 'answer-1' }, { type: 'text-delta', text: 'one' }, { type: 'finish', reason: 'stop' }];
      if (call === 2) return [new UpstreamError('Kimi answered HTTP 500', { isRetryable: true })];
      if (call === 3) return [{ type: 'message-start', messageId: 'interrupted-3' }, new UpstreamError('Kimi stopped sending data mid-answer', { isRetryable: true })];
      return [{ type: 'message-start', messageId: 'answer-4' }, { type: 'text-delta', text: 'four' }, { type: 'finish', reason: 'stop' }];
    }, { retentionSeconds: 600 });
    await ask(chat);
    await assert.rejects(ask(chat, 'chat-1'), UpstreamError);
    await assert.rejects(ask(chat, 'chat-1'), UpstreamError);
    await ask(chat, 'chat-1');
    assert.deepEqual(prompts.map((prompt) => prompt.conversation?.parentMessageId), [undefined, 'answer-1', 'answer-1', 'interrupted-3']);
    assert.equal((await pool.getConversation('chat-1'))?.parentMessageId, 'answer-4');
    await pool.close();
  });

  test('a continued turn refused before it gets its account (the account is cooling down) leaves the deletion where it was', async () => {
    const { chat, pool, upstream, clock, ids, calls } = await setup(['a'], (_name, token, call) =>
      call === 1 ? answer(token) : new RateLimitError('upstream_overloaded', 'busy', { retryAfterMs: 60_000 }), { retentionSeconds: 600 });
    await ask(chat);
    const scheduled = await pool.getConversation('chat-a-access-1');
    await assert.rejects(ask(chat), RateLimitError); // a new chat: the account cools down for a minute
    await assert.rejects(ask(chat, 'chat-a-access-1'), RateLimitError);
    assert.equal(calls.length, 2, 'the continued turn made no upstream call');
    await chat.idle();
    assert.deepEqual(await pool.getConversation('chat-a-access-1'), scheduled);
    assert.deepEqual(scheduled, { accountId: ids[0], createdByGateway: true, deleteAfter: clock.now() + 600_000 });
    clock.advance(600_000);
    assert.equal(await pool.sweepDeletions(), 1, 'deleted on time');
    assert.deepEqual(upstream.deleted.map((entry) => entry.conversationId), ['chat-a-access-1']);
    await pool.close();
  });

  test('while a continued turn runs, its deletion is a day out (never mid-turn, still after a crash); its end sets the retention again', async () => {
    const { chat, pool, store, clock } = await setup(['a'], (_name, token) => [answer(token)[0], answer(token)[1], answer(token)[2]], { retentionSeconds: 600 });
    await ask(chat);
    const jobTime = async () => (JSON.parse((await store.get('del:chat-a-access-1')) ?? 'null') as { atMs: number } | null)?.atMs;
    clock.advance(60_000);
    const turn = chat.streamChat({ messages: [{ role: 'user', content: 'again' }], conversationId: 'chat-a-access-1' }, new AbortController().signal).batches[Symbol.asyncIterator]();
    await turn.next(); // the turn's first text: the answer is under way
    assert.equal(await jobTime(), clock.now() + 24 * 3_600_000);
    assert.equal(await pool.sweepDeletions(), 0);
    clock.advance(30_000);
    while (!(await turn.next()).done);
    assert.equal(await jobTime(), clock.now() + 600_000);
    await pool.close();
  });

  test('a continued turn waiting for its account\'s only slot keeps the chat busy: the sweeper leaves it, a second turn on it gets 409 at once', async () => {
    const { chat, pool, upstream, clock } = await setup(['a'], (_name, _token, call) => answer(`call-${call}`), { retentionSeconds: 600, accountMaxConcurrency: 1 });
    await ask(chat);
    clock.advance(599_000);
    const holder = chat.streamChat({ messages: [{ role: 'user', content: 'other' }] }, new AbortController().signal).batches[Symbol.asyncIterator]();
    await holder.next(); // holds the account's only slot
    const continued = ask(chat, 'chat-call-1');
    await new Promise((resolve) => setTimeout(resolve, 10)); // the turn is now waiting for the slot
    await assert.rejects(ask(chat, 'chat-call-1'), ConflictError);
    clock.advance(2_000); // the chat is due
    assert.equal(await pool.sweepDeletions(), 0);
    while (!(await holder.next()).done);
    assert.equal((await continued).text, 'call-3');
    assert.deepEqual(upstream.deleted, []);
    assert.equal((await pool.getConversation('chat-call-1'))?.deleteAfter, clock.now() + 600_000);
    await pool.close();
  });

  test('a chat made in the web app, continued here, never gets a deletion job: not while a turn runs, not after, not when it fails', async () => {
    let call = 0;
    const { chat, pool, store, upstream, clock, ids } = await setup(['a'], () => {
      call += 1;
      return call === 1 ? [{ type: 'text-delta', text: 'ok' }, { type: 'finish', reason: 'stop' }] : new RateLimitError('upstream_overloaded', 'busy', { retryAfterMs: 1_000 });
    }, { retentionSeconds: 600 });
    await pool.bindConversation('web-1', ids[0], { createdByGateway: false });
    const turn = chat.streamChat({ messages: [{ role: 'user', content: 'hi' }], conversationId: 'web-1' }, new AbortController().signal).batches[Symbol.asyncIterator]();
    await turn.next();
    assert.equal(await store.get('del:web-1'), undefined, 'while the turn runs');
    while (!(await turn.next()).done);
    assert.equal(await store.get('del:web-1'), undefined, 'after it');
    await assert.rejects(ask(chat, 'web-1'), RateLimitError);
    await chat.idle();
    assert.equal(await store.get('del:web-1'), undefined, 'after a failed turn');
    assert.deepEqual(await pool.getConversation('web-1'), { accountId: ids[0], createdByGateway: false });
    clock.advance(30 * 24 * 3_600_000);
    assert.equal(await pool.sweepDeletions(), 0);
    assert.deepEqual(upstream.deleted, []);
    await pool.close();
  });

  test('a chat that failed before answering is deleted at once and never recorded', async () => {
    const { chat, pool, upstream } = await setup(['a'], () => [{ type: 'conversation-start', conversationId: 'chat-broken' }, new InvalidRequestError('refused')], { retentionSeconds: 600 });
    await assert.rejects(ask(chat), InvalidRequestError);
    await chat.idle();
    assert.equal(await pool.getConversation('chat-broken'), undefined);
    assert.deepEqual(upstream.deleted.map((entry) => entry.conversationId), ['chat-broken']);
    await pool.close();
  });
});

/** Watches a store: each call as `<method> <key>`, and how many round trips they took (calls in flight together count once). */
function watchStore() {
  const calls: string[] = [];
  let inFlight = 0;
  let roundTrips = 0;
  const wrap = (store: StateStore): StateStore =>
    new Proxy(store, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(`${String(property)} ${String(args[0])}`);
          if (inFlight === 0) roundTrips += 1;
          inFlight += 1;
          return Promise.resolve((value as (...values: unknown[]) => unknown).apply(target, args)).finally(() => (inFlight -= 1));
        };
      },
    });
  return {
    wrap,
    calls,
    /** Calls and round trips since the last reset. */
    take() {
      const taken = { calls: calls.splice(0), roundTrips };
      roundTrips = 0;
      return taken;
    },
  };
}

describe('state store calls per turn (each a round trip on Redis)', () => {
  test('a new chat writes a provisional deletion job when it is named, then its job and record; a continued turn reads the record once and writes it once, after the job', async () => {
    const watch = watchStore();
    const { chat, pool } = await setup(['a'], (_name, _token, call) => answer(`call-${call}`), { retentionSeconds: 600, wrapStore: watch.wrap });
    await ask(chat); // the account's first session (a refresh) is not what this test counts
    watch.take();
    const chatKeys = (taken: { calls: string[]; roundTrips: number }) => ({ ...taken, calls: taken.calls.filter((call) => / (conv|del):/.test(call)) });
    await ask(chat);
    // Besides the chat's keys, each lease reads the account's cooldown and invalid marks (together: one round trip).
    // The first job is the provisional one (a crash mid-turn still deletes the chat), written while the answer streams.
    assert.deepEqual(chatKeys(watch.take()), { calls: ['set del:chat-call-2', 'set del:chat-call-2', 'set conv:chat-call-2'], roundTrips: 4 });
    await ask(chat, 'chat-call-2');
    // Read the record; the marks; move the job out while the turn runs; at its end the job, then the record.
    assert.deepEqual(chatKeys(watch.take()), { calls: ['get conv:chat-call-2', 'set del:chat-call-2', 'set del:chat-call-2', 'set conv:chat-call-2'], roundTrips: 5 });
    await pool.close();
  });
});

describe('batches', () => {
  test('a consumer that leaves after the first batch closes the upstream reply at once (found in review)', async () => {
    const { chat, pool, closedReplies } = await setup(['a'], (_name, token) => [{ type: 'conversation-start', conversationId: `chat-${token}` }, { type: 'text-delta', text: 'first' }, { type: 'text-delta', text: 'never read' }, { type: 'finish', reason: 'stop' }]);
    const batches = chat.streamChat({ messages: [{ role: 'user', content: 'hi' }] }, new AbortController().signal).batches[Symbol.asyncIterator]();
    const first = await batches.next();
    assert.deepEqual(first.value, [{ type: 'conversation-start', conversationId: 'chat-a-access-1' }, { type: 'text-delta', text: 'first' }]);
    await batches.return?.(undefined);
    assert.equal(closedReplies(), 1);
    await pool.close();
  });

  test('with a usage estimate, what arrived with the finish goes out before the count; usage and finish follow', async () => {
    const { chat, pool } = await setup(['a'], (_name, token) => [[{ type: 'conversation-start', conversationId: `chat-${token}` }, { type: 'text-delta', text: 'whole answer' }, { type: 'finish', reason: 'stop' }]]);
    const seen: string[][] = [];
    for await (const batch of chat.streamChat({ messages: [{ role: 'user', content: 'hi' }], estimateUsage: true }, new AbortController().signal).batches) seen.push(batch.map((event) => event.type));
    assert.deepEqual(seen, [['conversation-start', 'text-delta'], ['usage', 'finish']]);
    await pool.close();
  });
});

describe('failover before the first byte', () => {
  test('a limit on the first account fails over to the next and cools the first', async () => {
    const { chat, pool, ids, calls } = await setup(['a', 'b'], (name, token) =>
      name === 'a' ? new RateLimitError('rate_limited', 'limit', { retryAfterMs: 10_000 }) : answer(token),
    );
    assert.equal((await ask(chat)).text, 'b-access-1');
    assert.deepEqual(calls, ['a-access-1', 'b-access-1']);
    const states = Object.fromEntries((await pool.snapshot()).map((entry) => [entry.id, entry.state]));
    assert.equal(states[ids[0]], 'cooling');
    await pool.close();
  });

  test('an auth failure refreshes once and retries the same account (§3.4)', async () => {
    const { chat, pool, upstream, calls } = await setup(['a', 'b'], (_name, token, call) =>
      call === 1 ? new AuthenticationError('401 from upstream', { blamesAccount: true }) : answer(token),
    );
    assert.equal((await ask(chat)).text, 'a-access-2');
    assert.deepEqual(calls, ['a-access-1', 'a-access-2']);
    assert.equal(upstream.refreshCalls.length, 2, 'one refresh to start, one after the 401; b was never needed');
    await pool.close();
  });

  test('an auth failure whose refresh is refused marks the account invalid and moves on', async () => {
    let revoke: () => void = () => {};
    const { chat, pool, upstream, ids } = await setup(['a', 'b'], (name, token) => {
      if (name !== 'a') return answer(token);
      revoke();
      return new AuthenticationError('401', { blamesAccount: true });
    });
    revoke = () => upstream.revoke('a'); // the refresh after the 401 is refused
    assert.equal((await ask(chat)).text, 'b-access-1');
    const states = Object.fromEntries((await pool.snapshot()).map((entry) => [entry.id, entry.state]));
    assert.equal(states[ids[0]], 'invalid');
    await pool.close();
  });

  test('a non-retryable error is thrown at once; retryable ones stop after maxAttempts with the last error', async () => {
    const first = await setup(['a', 'b', 'c', 'd'], () => new InvalidRequestError('bad prompt'), { maxAttempts: 3 });
    await assert.rejects(ask(first.chat), InvalidRequestError);
    assert.equal(first.calls.length, 1);
    await first.pool.close();
    const second = await setup(['a', 'b', 'c', 'd'], (_name, _token, call) => new UpstreamError(`upstream 502 #${call}`, { isRetryable: true }), { maxAttempts: 3 });
    await assert.rejects(ask(second.chat), /upstream 502 #3/);
    assert.equal(second.calls.length, 3);
    await second.pool.close();
  });

  test('with every account tried, the last upstream error is the answer', async () => {
    const { chat, pool } = await setup(['a'], () => new UpstreamError('upstream down', { isRetryable: true }));
    await assert.rejects(ask(chat), /upstream down/);
    await pool.close();
  });

  test('no attempt starts after the time budget', async () => {
    let clockRef: FakeClock | undefined;
    const { chat, pool, clock, calls } = await setup(
      ['a', 'b', 'c'],
      () => {
        clockRef?.advance(1_500);
        return new UpstreamError('slow', { isRetryable: true });
      },
      { attemptBudgetMs: 1_000 },
    );
    clockRef = clock;
    await assert.rejects(ask(chat), /slow/);
    assert.equal(calls.length, 1);
    await pool.close();
  });

  test('after the first text, a failure is the client\'s error: no second account is tried', async () => {
    const { chat, pool, calls } = await setup(['a', 'b'], (name, token) =>
      name === 'a' ? [...answer(token).slice(0, 2), new UpstreamError('reset mid-answer', { isRetryable: true })] : answer(token),
    );
    await assert.rejects(ask(chat), /reset mid-answer/);
    assert.equal(calls.length, 1);
    await pool.close();
  });
});
