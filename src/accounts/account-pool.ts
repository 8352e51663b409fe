/**
 * @module accounts/account-pool
 * The account pool (issue 5): which Kimi account serves a request. Healthy accounts first, least recently used,
 * skipping accounts that cool down (`cool:<id>`, shared through the store so replicas honour each other's) or
 * were refused (`invalid:<id>`); a conversation goes back to the account that created it; per-account
 * concurrency with a bounded FIFO waiting room. Sessions come from token-refresher.ts, conversation records and
 * temporary-chat deletion from conversation-registry.ts. Failover between accounts is the chat service's (it alone
 * knows whether a byte reached the client).
 */
import { AuthenticationError, ConflictError, GatewayError, NotFoundError, RateLimitError, ServiceUnavailableError, isAbortError } from '../errors.ts';
import type { Session } from '../upstream/dialect.ts';
import { silentLog } from '../store/state-store.ts';
import type { StoreLog } from '../store/state-store.ts';
import { storeKeys } from './account.ts';
import type { Account, CooldownMark } from './account.ts';
import { createAccountDirectory } from './account-directory.ts';
import type { AccountState } from './account-directory.ts';
import { NO_ACCOUNT_LEFT, type AccountPool, type AccountPoolOptions, type Lease, type LeaseRequest } from './account-pool-types.ts';
import { createAccountSlots } from './account-slots.ts';
import { checkAccount, describeAccounts } from './account-status.ts';
import type { StatusContext } from './account-status.ts';
import { createConversationRegistry } from './conversation-registry.ts';
import { createTokenRefresher, isAuthRefusal } from './token-refresher.ts';

export type { AccountCheck, AccountSnapshot } from './account-status.ts';
export type { AccountPool, AccountPoolOptions, Lease, LeaseRequest } from './account-pool-types.ts';

export function createAccountPool(options: AccountPoolOptions): AccountPool {
  const { store, dialects, clock = Date.now, log = silentLog, dialectMode = 'auto' } = options;
  const { cooldownMs = 60_000, quotaCooldownMs = 3_600_000 } = options;
  const accountMaxConcurrency = options.accountMaxConcurrency ?? 2;
  const busyConversations = new Set<string>();
  const directory = createAccountDirectory({ store, dialectMode, clock, log, isBusy: (id) => slots.inFlight(id) > 0 });
  const states = directory.states;

  const isCooling = (state: AccountState, now = clock()): boolean => (state.coolUntil ?? 0) > now;
  const isUsable = (id: string): boolean => {
    const state = states.get(id);
    return !!state && !state.invalidReason && !isCooling(state);
  };
  const slots = createAccountSlots({
    maxPerAccount: accountMaxConcurrency,
    queueMax: options.queueMax ?? 100,
    queueTimeoutMs: options.queueTimeoutMs ?? 30_000,
    busyRetryAfterMs: options.busyRetryAfterMs ?? 1_000,
    isUsable,
  });
  const refresher = createTokenRefresher({
    store,
    dialects,
    clock,
    log,
    skewMs: options.refreshSkewMs,
    onInvalid: (id, reason) => noteInvalid(id, reason),
    onRefresh: options.onRefresh,
  });
  const conversations = createConversationRegistry({
    store,
    clock,
    log,
    isBusy: (conversationId) => busyConversations.has(conversationId),
    hold: (conversationId) => {
      if (busyConversations.has(conversationId)) return undefined;
      busyConversations.add(conversationId);
      return () => busyConversations.delete(conversationId);
    },
    deleteConversation:
      options.deleteConversation ??
      (async (accountId, conversationId, signal) => {
        const session = await refresher.getSession(accountId, signal);
        await dialects[session.dialect].deleteConversation(session, conversationId, signal);
      }),
  });

  function noteInvalid(id: string, reason: string): void {
    const state = states.get(id);
    if (state) state.invalidReason = reason;
    slots.rejectWaiters((candidateIds) => unusableError([...candidateIds]));
  }

  /** The error for a request none of whose candidates can be used now, or undefined when one can. */
  function unusableError(ids: readonly string[]): Error | undefined {
    const now = clock();
    const known = ids.map((id) => states.get(id)).filter((state): state is AccountState => !!state);
    if (known.some((state) => !state.invalidReason && !isCooling(state, now))) return undefined;
    const cooling = known.filter((state) => !state.invalidReason);
    if (cooling.length === 0) {
      return new AuthenticationError(
        ids.length === 1
          ? `Kimi account ${ids[0]} was refused by Kimi (${known[0]?.invalidReason ?? 'unknown account'}).`
          : 'Every configured Kimi account was refused by Kimi; add a fresh refresh token.',
      );
    }
    const soonest = Math.min(...cooling.map((state) => state.coolUntil ?? now));
    const isQuota = cooling.every((state) => state.coolCode === 'insufficient_quota');
    const seconds = Math.ceil((soonest - now) / 1000);
    return new RateLimitError(
      isQuota ? 'insufficient_quota' : 'rate_limited',
      `Every Kimi account is cooling down after upstream limits; the first is expected back in ${seconds} s.`,
      { retryAfterMs: Math.max(1, soonest - now), blamesAccount: false },
    );
  }

  async function coolDown(id: string, durationMs: number, code: string): Promise<void> {
    const state = states.get(id);
    const until = clock() + durationMs;
    if (state && (state.coolUntil ?? 0) < until) {
      state.coolUntil = until;
      state.coolCode = code;
    }
    // When it ends, the account's free slots go to requests already waiting, before any newcomer.
    setTimeout(() => slots.offerFreeSlots(id), durationMs + 1).unref();
    const mark: CooldownMark = { until, code };
    await store.set(storeKeys.cooldown(id), JSON.stringify(mark), { ttlMs: durationMs }).catch((error: unknown) => {
      log.warn({ accountId: id, err: String(error) }, 'could not store a cooldown');
    });
    log.info({ accountId: id, code, cooldownMs: durationMs }, 'kimi account cooling down');
    slots.rejectWaiters((candidateIds) => unusableError([...candidateIds]));
  }

  /** Candidate ids after affinity and exclusion. */
  async function candidatesFor(request: LeaseRequest): Promise<string[]> {
    let ids = (request.candidates ?? directory.serverAccounts()).map((account) => account.id);
    if (ids.length === 0) throw new AuthenticationError('No Kimi account is configured: give a token.');
    if (request.conversationId) {
      const accountId = request.conversationAccountId ?? (await conversations.get(request.conversationId))?.accountId;
      if (accountId) {
        if (!ids.includes(accountId)) {
          throw new NotFoundError(`Conversation ${request.conversationId} was not found for these accounts.`, {
            code: 'conversation_not_found',
            param: 'conversation_id',
          });
        }
        ids = [accountId];
      }
    }
    const excluded = new Set(request.exclude ?? []);
    const remaining = ids.filter((id) => !excluded.has(id));
    if (remaining.length === 0) {
      throw new ServiceUnavailableError('Every Kimi account for this request has been tried.', { code: NO_ACCOUNT_LEFT });
    }
    return remaining;
  }

  /** Picks and reserves a slot: healthy before recently failing, then least recently used. */
  async function acquire(ids: string[], signal: AbortSignal | undefined): Promise<string> {
    for (let round = 0; round <= ids.length * 2; round += 1) {
      const unusable = unusableError(ids);
      if (unusable) throw unusable;
      const free = ids
        .filter((candidate) => isUsable(candidate) && slots.inFlight(candidate) < accountMaxConcurrency)
        .sort((a, b) => rank(a) - rank(b));
      let id: string;
      if (free.length > 0 && slots.tryTake(free[0])) id = free[0];
      // In line for any account that is not refused, cooling ones too: the first slot freed or cooldown ended is ours.
      else id = await slots.wait(ids.filter((candidate) => !states.get(candidate)?.invalidReason), signal);
      await directory.refreshMarks(id).catch(() => undefined);
      if (isUsable(id)) return id;
      slots.release(id); // another replica cooled it down or refused it meanwhile: choose again
    }
    throw unusableError(ids) ?? new ServiceUnavailableError('No Kimi account could be reserved.', { isRetryable: true });
  }

  function rank(id: string): number {
    const state = states.get(id) as AccountState;
    return (state.failures > 0 ? 1e15 : 0) + (state.lastUsedAt ?? 0);
  }

  function makeLease(id: string, conversationId: string | undefined): Lease {
    const state = states.get(id) as AccountState;
    state.lastUsedAt = clock();
    let lastSession: Session | undefined;
    let isReleased = false;
    return {
      account: state.account,
      async session(signal) {
        lastSession = await refresher.getSession(id, signal);
        state.isLive = true; // a refresh that worked, or a session still valid, means the token is live
        return lastSession;
      },
      async refreshAfterAuthFailure(signal) {
        lastSession = await refresher.refreshAfterAuthFailure(id, lastSession, signal);
        return lastSession;
      },
      reportSuccess() {
        state.failures = 0;
        state.isLive = true;
      },
      async reportFailure(error) {
        if (isAbortError(error)) return;
        if (error instanceof RateLimitError) {
          const fallbackMs = error.code === 'insufficient_quota' ? quotaCooldownMs : cooldownMs;
          await coolDown(id, error.retryAfterMs ?? fallbackMs, error.code);
        } else if (isAuthRefusal(error)) {
          if (!state.invalidReason) await refresher.markInvalid(id, 'Kimi refused the token after a refresh');
        } else if (error instanceof GatewayError && error.blamesAccount) {
          await coolDown(id, error.retryAfterMs ?? cooldownMs, error.code);
        } else {
          state.failures += 1;
        }
      },
      release() {
        if (isReleased) return;
        isReleased = true;
        if (conversationId) busyConversations.delete(conversationId);
        slots.release(id);
      },
    };
  }

  async function lease(request: LeaseRequest = {}): Promise<Lease> {
    const ids = await candidatesFor(request);
    const { conversationId } = request;
    if (conversationId) {
      // Checked and taken in one step, and from before the wait for a slot: a chat whose turn is queued is busy too,
      // so the sweeper does not delete it meanwhile and a second turn is refused at once.
      if (busyConversations.has(conversationId)) throw new ConflictError(`A reply is already being generated in conversation ${conversationId}.`);
      busyConversations.add(conversationId);
    }
    let id: string | undefined;
    try {
      id = await acquire(ids, request.signal);
      return makeLease(id, conversationId);
    } catch (error) {
      if (id !== undefined) slots.release(id);
      if (conversationId) busyConversations.delete(conversationId);
      throw error;
    }
  }

  const timers = [
    startInterval(options.reloadIntervalMs ?? 4_000, () => directory.reload(), log, 'account reload failed'),
    startInterval(options.sweepIntervalMs ?? 5_000, () => conversations.sweep(), log, 'chat deletion sweep failed'),
  ];
  const serverAccounts = (): Account[] => directory.serverAccounts();

  return {
    async addServerAccounts(tokens) {
      const accounts: Account[] = [];
      for (const [index, token] of tokens.entries()) accounts.push(await directory.ensure(token, 'server', `Kimi token ${index + 1}`));
      return accounts;
    },
    addAccount: (token, addOptions = {}) => directory.ensure(token, addOptions.source ?? 'added', 'Kimi token'),
    removeAccount: (accountId) => directory.remove(accountId),
    async accountsFromBearer(tokens) {
      const accounts: Account[] = [];
      for (const [index, token] of tokens.entries()) accounts.push(await directory.ensure(token, 'bearer', `Bearer token ${index + 1}`));
      return accounts;
    },
    serverAccounts,
    lease,
    bindConversation: (conversationId, accountId, details) => conversations.bind(conversationId, accountId, details),
    getConversation: (conversationId) => conversations.get(conversationId),
    postponeDeletion: (conversationId, accountId, atMs) => conversations.postponeDeletion(conversationId, accountId, atMs),
    cancelDeletion: (conversationId, known) => conversations.cancelDeletion(conversationId, known),
    sweepDeletions: () => conversations.sweep(),
    snapshot: (accounts) => describeAccounts(statusContext(), accounts ?? serverAccounts()),
    async checkAccounts(accounts, signal) {
      const list = accounts ?? serverAccounts();
      return Promise.all(list.map((account) => checkAccount(statusContext(), account, signal)));
    },
    reload: () => directory.reload(),
    async close() {
      for (const timer of timers) if (timer) clearInterval(timer);
      refresher.close();
      slots.rejectWaiters(() => new ServiceUnavailableError('The gateway is shutting down.'));
    },
  };

  function statusContext(): StatusContext {
    return {
      store,
      dialects,
      refresher,
      clock,
      log,
      local: (id: string) => {
        const state = states.get(id);
        return state && { ...state, inFlight: slots.inFlight(id) };
      },
      refreshMarks: directory.refreshMarks,
      noteLive: (id: string) => {
        const state = states.get(id);
        if (state) state.isLive = true;
      },
    };
  }
}

function startInterval(ms: number, task: () => Promise<unknown>, log: StoreLog, message: string): NodeJS.Timeout | undefined {
  if (ms <= 0) return undefined;
  let isRunning = false;
  const timer = setInterval(() => {
    if (isRunning) return;
    isRunning = true;
    task()
      .catch((error: unknown) => log.warn({ err: String(error) }, message))
      .finally(() => (isRunning = false));
  }, ms);
  timer.unref();
  return timer;
}
