/**
 * @module store/resilient-store
 * Redis with a local fallback, so requests keep working when Redis goes away (issue 5).
 *
 * While Redis answers, every read and write also updates a local mirror (with the same TTL). When a command
 * fails or times out, or the client is disconnected, the store logs once and serves from the mirror; writes made
 * then are remembered, in the mirror too, so a mirror with a file (STATE_FILE) keeps them across a crash or a
 * restart. When Redis answers again (node-redis reconnected, or a new process started), the next operation first
 * replays those writes to Redis, then switches back.
 *
 * A replayed write whose key Redis held, as last seen, when the outage began is written only if Redis still holds
 * that value: a key another replica changed meanwhile keeps the other replica's value, which is the newer one. A
 * key with no value seen before the outage is simply written (last write wins). Without the persisted writes, a
 * restart read Redis first and put the refresh token rotated away before the outage back over the live one.
 *
 * Consistency trade-off, accepted on purpose: during an outage each replica has its own view. Locks are local,
 * so two replicas may both refresh the same account (the rotated-away refresh token stays usable once for a short
 * while, spec §3.4, which usually saves the loser), and cooldowns set by one replica are not seen by the others.
 * The alternative, failing requests while Redis is down, is worse for a gateway whose job is to answer.
 */
import { silentLog } from './state-store.ts';
import type { Lock, SetOptions, StateStore, StoreLog } from './state-store.ts';
import type { RedisStore } from './redis-store.ts';

export type PrimaryStore = Pick<RedisStore, 'isReady' | 'getEntry' | 'onReady'> & StateStore;

export interface ResilientStoreOptions {
  primary: PrimaryStore;
  /** Local store used as mirror and fallback (a memory store; give it a file to survive a crash during an outage). */
  fallback: StateStore;
  log?: StoreLog;
  clock?: () => number;
  /** After a failure on a still-connected client (a timeout), wait this long before trying Redis again. Default 1000 ms. */
  retryPrimaryAfterMs?: number;
}

/**
 * A write made on the fallback that Redis has not seen; `value` undefined = delete. `base` is the value the key held
 * when the outage began, when one had been seen (null: none seen, so the replay cannot tell whether Redis moved on).
 */
interface PendingWrite {
  value?: string;
  expiresAt?: number;
  base: string | null;
}

/** Where the fallback keeps the writes Redis has not seen. Never a data key: data keys have no such prefix. */
const pendingKeyPrefix = 'redis-pending-write:';

export function createResilientStore(options: ResilientStoreOptions): StateStore {
  const { primary, fallback, log = silentLog, clock = Date.now, retryPrimaryAfterMs = 1_000 } = options;
  let isUsingFallback = false;
  let retryAt = 0;
  let recovering: Promise<boolean> | undefined;
  const pending = new Map<string, PendingWrite>();
  primary.onReady(() => {
    retryAt = 0;
  });
  // Writes an earlier process made during an outage and could not replay: replayed before Redis is used again.
  const restored = restorePending().catch((error: unknown) => {
    log.error({ err: error instanceof Error ? error.message : String(error) }, 'could not read the writes kept from a redis outage');
  });

  async function restorePending(): Promise<void> {
    for (const storedKey of await fallback.scan(pendingKeyPrefix)) {
      const write = parsePendingWrite(await fallback.get(storedKey));
      if (write) pending.set(storedKey.slice(pendingKeyPrefix.length), write);
      else await fallback.delete(storedKey);
    }
    if (pending.size === 0) return;
    isUsingFallback = true;
    log.warn({ writes: pending.size }, 'writes made during a redis outage are waiting; they go to redis once it answers');
  }

  function switchToFallback(error: unknown): void {
    retryAt = clock() + retryPrimaryAfterMs;
    if (isUsingFallback) return;
    isUsingFallback = true;
    log.warn({ err: error instanceof Error ? error.message : String(error) }, 'redis unavailable; serving from local state');
  }

  async function replayPending(): Promise<boolean> {
    try {
      for (const [key, write] of pending) {
        if (!(await replayOne(key, write))) log.warn({ key: redactedKey(key) }, 'a write made during the redis outage was superseded by another replica');
        pending.delete(key);
        await fallback.delete(pendingKeyPrefix + key);
      }
      isUsingFallback = false;
      log.info({}, 'redis is back; local changes made during the outage were written to it');
      return true;
    } catch (error) {
      switchToFallback(error);
      return false;
    }
  }

  /**
   * Writes one remembered change to Redis; false when another replica had moved the key on from the value the
   * outage began with. A key Redis no longer has at all (restarted without persistence) takes the remembered write.
   */
  async function replayOne(key: string, write: PendingWrite): Promise<boolean> {
    const ttlMs = write.expiresAt === undefined ? undefined : write.expiresAt - clock();
    // Expired meanwhile (a cooldown, a session): nothing of it is left to write.
    if (ttlMs !== undefined && ttlMs <= 0) return true;
    if (write.value === undefined) {
      if (write.base === null) {
        await primary.delete(key);
        return true;
      }
      return (await primary.compareAndDelete(key, write.base)) || (await primary.get(key)) === undefined;
    }
    const setOptions = ttlMs === undefined ? {} : { ttlMs };
    if (write.base !== null) {
      if (await primary.compareAndSet(key, write.base, write.value, setOptions)) return true;
      const current = await primary.get(key);
      if (current !== undefined) return current === write.value;
    }
    await primary.set(key, write.value, setOptions);
    return true;
  }

  async function canUsePrimary(): Promise<boolean> {
    await restored;
    if (!primary.isReady) {
      if (!isUsingFallback) switchToFallback(new Error('redis client is disconnected'));
      return false;
    }
    if (!isUsingFallback) return true;
    if (clock() < retryAt) return false;
    recovering ??= replayPending().finally(() => (recovering = undefined));
    return recovering;
  }

  /** Runs `onPrimary` when Redis is usable, else (or when it fails) `onFallback`. */
  async function run<T>(onPrimary: () => Promise<T>, onFallback: () => Promise<T>): Promise<T> {
    if (await canUsePrimary()) {
      try {
        return await onPrimary();
      } catch (error) {
        switchToFallback(error);
      }
    }
    return onFallback();
  }

  /**
   * Remembers a write Redis has not seen, kept in the fallback as durably as the write itself: a rotated token on disk
   * always has the note beside it that Redis still has to get it. `valueBefore` is what the key held just before this
   * write (read from the fallback when not given); the first write of an outage sets the base.
   */
  async function remember(key: string, value: string | undefined, setOptions?: SetOptions, valueBefore?: string | null): Promise<void> {
    const expiresAt = setOptions?.ttlMs === undefined ? undefined : clock() + setOptions.ttlMs;
    const base = pending.has(key) ? pending.get(key)!.base : (valueBefore !== undefined ? valueBefore : ((await fallback.get(key)) ?? null));
    const write: PendingWrite = value === undefined ? { base } : { value, expiresAt, base };
    pending.set(key, write);
    await fallback.set(pendingKeyPrefix + key, JSON.stringify(write), { durable: setOptions?.durable });
  }

  const mirrorOptions = (setOptions?: SetOptions): SetOptions =>
    setOptions?.ttlMs === undefined ? {} : { ttlMs: setOptions.ttlMs };

  function wrapLock(lock: Lock, isPrimaryLock: boolean): Lock {
    return {
      key: lock.key,
      release: () => lock.release().catch(() => undefined),
      async extend(ms) {
        try {
          return await lock.extend(ms);
        } catch (error) {
          if (isPrimaryLock) switchToFallback(error);
          return false;
        }
      },
    };
  }

  return {
    kind: 'redis+fallback',
    get: (key) =>
      run(
        async () => {
          const entry = await primary.getEntry(key);
          if (entry) await fallback.set(key, entry.value, entry.ttlMs === undefined ? {} : { ttlMs: entry.ttlMs });
          else await fallback.delete(key);
          return entry?.value;
        },
        () => fallback.get(key),
      ),
    set: (key, value, setOptions) =>
      run(
        async () => {
          await primary.set(key, value, setOptions);
          await fallback.set(key, value, mirrorOptions(setOptions));
        },
        async () => {
          await remember(key, value, setOptions);
          await fallback.set(key, value, setOptions);
        },
      ),
    delete: (key) =>
      run(
        async () => {
          await primary.delete(key);
          await fallback.delete(key);
        },
        async () => {
          await remember(key, undefined);
          await fallback.delete(key);
        },
      ),
    compareAndSet: (key, expected, value, setOptions) =>
      run(
        async () => {
          const hasWritten = await primary.compareAndSet(key, expected, value, setOptions);
          if (hasWritten) await fallback.set(key, value, mirrorOptions(setOptions));
          return hasWritten;
        },
        async () => {
          const hasWritten = await fallback.compareAndSet(key, expected, value, setOptions);
          if (hasWritten) await remember(key, value, setOptions, expected ?? null);
          return hasWritten;
        },
      ),
    compareAndDelete: (key, expected) =>
      run(
        async () => {
          const hasDeleted = await primary.compareAndDelete(key, expected);
          if (hasDeleted) await fallback.delete(key);
          return hasDeleted;
        },
        async () => {
          const hasDeleted = await fallback.compareAndDelete(key, expected);
          if (hasDeleted) await remember(key, undefined, undefined, expected);
          return hasDeleted;
        },
      ),
    acquireLock: (key, ttlMs) =>
      run(
        async () => {
          const lock = await primary.acquireLock(key, ttlMs);
          return lock && wrapLock(lock, true);
        },
        async () => {
          const lock = await fallback.acquireLock(key, ttlMs);
          return lock && wrapLock(lock, false);
        },
      ),
    scan: (prefix) =>
      run(
        () => primary.scan(prefix),
        () => fallback.scan(prefix),
      ),
    async close() {
      await Promise.allSettled([primary.close(), fallback.close()]);
    },
    // Redis has every write already; the fallback's file may not.
    flush: () => fallback.flush?.() ?? Promise.resolve(),
  };
}

function parsePendingWrite(text: string | undefined): PendingWrite | undefined {
  try {
    const parsed = JSON.parse(text ?? '') as Partial<PendingWrite>;
    if (parsed.base !== null && typeof parsed.base !== 'string') return undefined;
    if (parsed.value !== undefined && typeof parsed.value !== 'string') return undefined;
    if (parsed.expiresAt !== undefined && typeof parsed.expiresAt !== 'number') return undefined;
    return { value: parsed.value, expiresAt: parsed.expiresAt, base: parsed.base };
  } catch {
    return undefined;
  }
}

/** Keys name accounts by hash already; only the kind and a short prefix go to the log. */
function redactedKey(key: string): string {
  return key.length > 40 ? `${key.slice(0, 40)}…` : key;
}
