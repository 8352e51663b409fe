/**
 * @module store/open-state-store
 * Chooses the state backend once at start-up (contract `REDIS_URL` / `STATE_FILE`): Redis with a local
 * fallback when a Redis URL is given, otherwise the memory store persisted to the state file.
 */
import { openMemoryStore } from './memory-store.ts';
import { openRedisStore } from './redis-store.ts';
import { createResilientStore } from './resilient-store.ts';
import { silentLog } from './state-store.ts';
import type { StateStore, StoreLog } from './state-store.ts';

export interface OpenStateStoreOptions {
  /** `REDIS_URL`; when set, state is shared through Redis. */
  redisUrl?: string;
  /** `STATE_FILE` (default ./data/state.json is the caller's to apply); used when there is no Redis URL. */
  stateFilePath?: string;
  /**
   * With Redis: a local file for the fallback, so a token rotated while Redis is down survives a crash before
   * Redis returns. Default none (the fallback is memory only).
   */
  fallbackFilePath?: string;
  /** Key prefixes kept in the append-only journal beside the file (memory store only; see memory-store.ts). */
  journalPrefixes?: readonly string[];
  log?: StoreLog;
}

export async function openStateStore(options: OpenStateStoreOptions): Promise<StateStore> {
  const log = options.log ?? silentLog;
  if (!options.redisUrl) return openMemoryStore({ filePath: options.stateFilePath, journalPrefixes: options.journalPrefixes, log });
  // 1.5 s: short enough that an outage falls back quickly, long enough that a busy event loop (many open
  // streams on a small machine) does not look like an outage and split the replicas' state.
  const primary = await openRedisStore({ url: options.redisUrl, log, commandTimeoutMs: 1500 });
  const fallback = await openMemoryStore({ filePath: options.fallbackFilePath, journalPrefixes: options.journalPrefixes, log });
  return createResilientStore({ primary, fallback, log });
}
