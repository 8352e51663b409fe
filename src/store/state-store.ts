/**
 * @module store/state-store
 * The StateStore contract (types plus two small helpers). Backends: memory-store.ts (in-process, optional
 * state file), redis-store.ts (shared by replicas) and resilient-store.ts (Redis with a local fallback).
 *
 * Values are strings (callers JSON-encode). Keys are plain strings; a backend may add its own namespace.
 * There is no change feed: a process that must notice keys written by another process (an account added by
 * `add-account`, contract.md "picked up within 5 s") re-reads with `scan(prefix)` on an interval.
 */

export interface SetOptions {
  /** Time to live; the key disappears afterwards. Undefined keeps it until deleted. */
  ttlMs?: number;
  /**
   * Resolve only once the value is as durable as this backend can make it (state file written and fsynced,
   * Redis acknowledged). Used for rotated refresh tokens, which must be safe before they are used (§10.2).
   */
  durable?: boolean;
}

/** A short exclusive lock. It expires by itself after its TTL so a crashed holder never blocks for long. */
export interface Lock {
  readonly key: string;
  /** Frees the lock if this holder still owns it; never throws. */
  release(): Promise<void>;
  /** Pushes the expiry to now + ms; false when the lock was lost (expired and possibly taken by another). */
  extend(ms: number): Promise<boolean>;
}

export interface StateStore {
  /** Short backend name for logs and the status page: `memory`, `redis`, `redis+fallback`. */
  readonly kind: string;
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, options?: SetOptions): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Writes `value` only when the current value equals `expected` (undefined = the key must be absent).
   * Returns whether it wrote.
   */
  compareAndSet(key: string, expected: string | undefined, value: string, options?: SetOptions): Promise<boolean>;
  /** Deletes the key only when its value equals `expected`. Returns whether it deleted. */
  compareAndDelete(key: string, expected: string): Promise<boolean>;
  /** Takes `key` exclusively for `ttlMs`; undefined when another holder has it. Lock keys are not data keys. */
  acquireLock(key: string, ttlMs: number): Promise<Lock | undefined>;
  /** All live keys starting with `prefix` (no particular order). */
  scan(prefix: string): Promise<string[]>;
  /** Flushes pending writes and releases connections and timers. */
  close(): Promise<void>;
  /**
   * Writes pending local changes now without closing (the memory store's state file and journal), for an exit that
   * cannot wait for close(). Stores that write through (Redis) have nothing to write.
   */
  flush?(): Promise<void>;
}

/**
 * Logger shape the store and account modules accept: pino's argument order (details first, then message), so a
 * pino logger (or a child of one) can be passed as is. Details never contain tokens, only account ids (hashes).
 */
export interface StoreLog {
  info(details: Record<string, unknown>, message: string): void;
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

export const silentLog: StoreLog = { info() {}, warn() {}, error() {} };

/** Reads a JSON value; a value that does not parse is treated as absent (and reported), never thrown. */
export async function getJson<T>(store: StateStore, key: string, log: StoreLog = silentLog): Promise<T | undefined> {
  return parseStoredJson<T>(await store.get(key), key, log);
}

/** getJson's parsing, for a caller that also needs the stored text (to compare-and-set it later). */
export function parseStoredJson<T>(text: string | undefined, key: string, log: StoreLog = silentLog): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    log.warn({ key }, 'state store value is not JSON; ignoring it');
    return undefined;
  }
}

export async function setJson(store: StateStore, key: string, value: unknown, options?: SetOptions): Promise<void> {
  await store.set(key, JSON.stringify(value), options);
}
