/**
 * @module store/redis-store
 * StateStore on Redis (node-redis, contract `REDIS_URL`), shared by gateway replicas. Locks are
 * `SET key token NX PX` with Lua compare-and-delete / compare-and-extend (a single Redis needs no Redlock);
 * compare-and-set is one Lua script. Commands fail at once while disconnected (no offline queue) and time out
 * quickly otherwise, so a caller never hangs on a dead or frozen Redis; wrap this store in resilient-store.ts to
 * keep serving then. node-redis's own command timeout only covers the wait before a command is written, so the
 * reply wait is bounded here (a late reply is simply ignored).
 */
import { randomUUID } from 'node:crypto';
import { createClient } from '@redis/client';
import { silentLog } from './state-store.ts';
import type { Lock, SetOptions, StateStore, StoreLog } from './state-store.ts';

export interface RedisStoreOptions {
  url: string;
  /** Namespace for every key this store writes. Default `kimi-free-api:`. */
  keyPrefix?: string;
  /** Per-command timeout, including the wait for the reply. Default 500 ms. */
  commandTimeoutMs?: number;
  /** TCP connect timeout. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** How long `openRedisStore` waits for the first connection before returning a not-yet-ready store. Default 2000 ms. */
  initialConnectWaitMs?: number;
  /** Upper bound of the reconnect backoff (node-redis reconnects by itself). Default 1000 ms. */
  maxReconnectDelayMs?: number;
  log?: StoreLog;
}

export interface RedisEntry {
  value: string;
  /** Remaining time to live; undefined when the key has none. */
  ttlMs?: number;
}

export interface RedisStore extends StateStore {
  /** True while connected; commands fail fast otherwise. */
  readonly isReady: boolean;
  /** Value plus remaining TTL in one round trip (resilient-store.ts mirrors entries with it). */
  getEntry(key: string): Promise<RedisEntry | undefined>;
  /** Calls `listener` each time the connection becomes ready (again). */
  onReady(listener: () => void): void;
}

const COMPARE_AND_SET = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) else redis.call('SET', KEYS[1], ARGV[3]) end
return 1`;

const COMPARE_AND_DELETE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const COMPARE_AND_EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const GET_WITH_TTL = `
local value = redis.call('GET', KEYS[1])
if not value then return false end
return { value, redis.call('PTTL', KEYS[1]) }`;

export async function openRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const {
    url,
    keyPrefix = 'kimi-free-api:',
    commandTimeoutMs = 500,
    connectTimeoutMs = 1_000,
    initialConnectWaitMs = 2_000,
    maxReconnectDelayMs = 1_000,
    log = silentLog,
  } = options;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: commandTimeoutMs },
    socket: {
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, maxReconnectDelayMs),
    },
  });
  let lastErrorLoggedAt = 0;
  client.on('error', (error: Error) => {
    // node-redis emits one error per failed reconnect; keep the log readable.
    if (Date.now() - lastErrorLoggedAt < 30_000) return;
    lastErrorLoggedAt = Date.now();
    log.warn({ err: error.message }, 'redis connection error; reconnecting');
  });
  const readyListeners: Array<() => void> = [];
  client.on('ready', () => {
    for (const listener of readyListeners) listener();
  });
  const connecting = client.connect().catch(() => undefined);
  await Promise.race([connecting, new Promise((resolve) => setTimeout(resolve, initialConnectWaitMs).unref())]);
  if (!client.isReady) log.warn({}, 'redis is not reachable yet; continuing and retrying in the background');

  const dataKey = (key: string): string => `${keyPrefix}d:${key}`;
  const lockKey = (key: string): string => `${keyPrefix}l:${key}`;
  const timed = <T>(promise: Promise<T>): Promise<T> => withTimeout(promise, commandTimeoutMs);
  const evalNumber = async (script: string, key: string, args: string[]): Promise<number> =>
    Number(await timed(client.eval(script, { keys: [key], arguments: args })));

  function makeLock(key: string, token: string): Lock {
    return {
      key,
      async release() {
        await evalNumber(COMPARE_AND_DELETE, lockKey(key), [token]).catch(() => 0);
      },
      async extend(ms: number) {
        return (await evalNumber(COMPARE_AND_EXTEND, lockKey(key), [token, String(Math.max(1, Math.ceil(ms)))])) === 1;
      },
    };
  }

  const ttlArgument = (options?: SetOptions): string =>
    options?.ttlMs === undefined ? '' : String(Math.max(1, Math.ceil(options.ttlMs)));

  return {
    kind: 'redis',
    get isReady() {
      return client.isReady;
    },
    onReady(listener) {
      readyListeners.push(listener);
    },
    async get(key) {
      return (await timed(client.get(dataKey(key)))) ?? undefined;
    },
    async getEntry(key) {
      const reply = (await timed(client.eval(GET_WITH_TTL, { keys: [dataKey(key)] }))) as [string, number] | null;
      if (!reply) return undefined;
      const ttlMs = Number(reply[1]);
      return ttlMs >= 0 ? { value: String(reply[0]), ttlMs } : { value: String(reply[0]) };
    },
    async set(key, value, setOptions) {
      const ttl = ttlArgument(setOptions);
      if (ttl === '') await timed(client.set(dataKey(key), value));
      else await timed(client.set(dataKey(key), value, { expiration: { type: 'PX', value: Number(ttl) } }));
    },
    async delete(key) {
      await timed(client.del(dataKey(key)));
    },
    async compareAndSet(key, expected, value, setOptions) {
      const args = [expected === undefined ? '1' : '0', expected ?? '', value, ttlArgument(setOptions)];
      return (await evalNumber(COMPARE_AND_SET, dataKey(key), args)) === 1;
    },
    async compareAndDelete(key, expected) {
      return (await evalNumber(COMPARE_AND_DELETE, dataKey(key), [expected])) === 1;
    },
    async acquireLock(key, ttlMs) {
      const token = randomUUID();
      const reply = await timed(
        client.set(lockKey(key), token, { condition: 'NX', expiration: { type: 'PX', value: Math.max(1, Math.ceil(ttlMs)) } }),
      );
      return reply === 'OK' ? makeLock(key, token) : undefined;
    },
    async scan(prefix) {
      const keys = new Set<string>();
      const batches = client.scanIterator({ MATCH: `${escapeGlob(dataKey(prefix))}*`, COUNT: 200 });
      for (let step = await timed(batches.next()); !step.done; step = await timed(batches.next())) {
        for (const key of step.value) keys.add(String(key).slice(dataKey('').length));
      }
      return [...keys];
    },
    async close() {
      if (client.isReady) {
        await client.close().catch(() => client.destroy());
      } else if (client.isOpen) {
        client.destroy();
      }
      await connecting;
    },
  };
}

export class RedisTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`redis did not answer within ${timeoutMs} ms`);
    this.name = 'RedisTimeoutError';
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new RedisTimeoutError(timeoutMs)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Escapes Redis glob metacharacters so a prefix matches literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (character) => `\\${character}`);
}
