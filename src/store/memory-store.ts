/**
 * @module store/memory-store
 * The default StateStore: an in-process map with TTLs, optionally persisted to a local state file
 * (contract `STATE_FILE`) so a single instance keeps rotated refresh tokens, cooldowns, conversation
 * affinity and pending chat deletions across restarts.
 *
 * Writes are debounced (`flushDelayMs`); `set(..., { durable: true })` resolves only after the file holding
 * the value is fsynced and renamed into place. Another process (the `add-account` command) may write the same
 * file: each flush and a periodic sync merge the file three-way (last file version we saw, the file now, our
 * memory), taking the other process's change for any key we did not change ourselves. Locks live only in
 * memory: a lock exists to serialise work in this process and must not survive a crash.
 *
 * Keys under `journalPrefixes` (temporary chats' records) are kept out of the state file and appended to
 * `<file>.journal` instead (journal-file.ts): they change with every answer, and only the gateway writes them.
 */
import { randomUUID } from 'node:crypto';
import { openJournalFile } from './journal-file.ts';
import { ensureDirectory, formatStateFile, readStateFile, sameStamp, statStamp, withFileLock, writeFileAtomically } from './state-file.ts';
import type { FileStamp, StoredEntry } from './state-file.ts';
import { silentLog } from './state-store.ts';
import type { Lock, SetOptions, StateStore, StoreLog } from './state-store.ts';

export interface MemoryStoreOptions {
  /** State file path; undefined keeps everything in memory only. */
  filePath?: string;
  /** Epoch-millisecond clock used for TTLs (tests inject one). Default Date.now. */
  clock?: () => number;
  log?: StoreLog;
  /** Delay before a non-durable change is written (durable ones are written at once). Default 1000 ms: each flush rewrites the whole file. */
  flushDelayMs?: number;
  /** How often to look for changes another process made to the file. Default 1000 ms; 0 disables. */
  syncIntervalMs?: number;
  /** Keys starting with one of these go to the append-only `<file>.journal`, not the state file. */
  journalPrefixes?: readonly string[];
}

export interface MemoryStore extends StateStore {
  /** Writes pending changes now (no-op without a file). */
  flush(): Promise<void>;
  /** Merges changes another process wrote to the state file. */
  syncFromFile(): Promise<void>;
}

export async function openMemoryStore(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
  const { filePath, clock = Date.now, log = silentLog, flushDelayMs = 1_000, syncIntervalMs = 1_000, journalPrefixes = [] } = options;
  const entries = new Map<string, StoredEntry>();
  const isJournalKey = (key: string) => journalPrefixes.some((prefix) => key.startsWith(prefix));
  const journal = filePath && journalPrefixes.length > 0 ? openJournalFile(`${filePath}.journal`, log) : undefined;
  /** Journal keys changed since the last flush. */
  const journalChanges = new Set<string>();
  let isSnapshotDirty = false;
  let isDurablePending = false;
  const locks = new Map<string, { token: string; expiresAt: number }>();
  /** The file content as we last read or wrote it, for the three-way merge. */
  let baseline = new Map<string, StoredEntry>();
  let lastStamp: FileStamp | undefined;
  let isDirty = false;
  let flushTimer: NodeJS.Timeout | undefined;
  let fileQueue: Promise<unknown> = Promise.resolve();
  let isClosed = false;

  const isLive = (entry: StoredEntry | undefined): entry is StoredEntry =>
    entry !== undefined && (entry.expiresAt === undefined || entry.expiresAt > clock());

  function read(key: string): StoredEntry | undefined {
    const entry = entries.get(key);
    if (isLive(entry)) return entry;
    if (entry) entries.delete(key);
    return undefined;
  }

  function serialized(entry: StoredEntry | undefined): string | undefined {
    return isLive(entry) ? JSON.stringify([entry.value, entry.expiresAt ?? null]) : undefined;
  }

  /** Live entries that belong in the state file (journal keys live in the journal). */
  function liveEntries(): Map<string, StoredEntry> {
    const result = new Map<string, StoredEntry>();
    for (const [key, entry] of entries) {
      if (!isLive(entry)) entries.delete(key);
      else if (!journal || !isJournalKey(key)) result.set(key, entry);
    }
    return result;
  }

  function* liveJournalEntries(): Generator<[string, StoredEntry]> {
    for (const [key, entry] of entries) if (isJournalKey(key) && isLive(entry)) yield [key, entry];
  }

  /** Applies another process's changes for keys we have not changed since the baseline. */
  function mergeFromDisk(disk: Map<string, StoredEntry>): void {
    for (const key of new Set([...disk.keys(), ...baseline.keys()])) {
      if (journal && isJournalKey(key)) continue; // only this process writes those, in the journal
      const incoming = disk.get(key);
      const onDisk = serialized(incoming);
      const before = serialized(baseline.get(key));
      if (onDisk === before) continue;
      if (serialized(entries.get(key)) !== before) continue; // we changed it too: ours is newer for us
      if (onDisk === undefined || !incoming) entries.delete(key);
      else entries.set(key, incoming);
    }
    baseline = new Map(disk);
  }

  async function loadIfChanged(path: string): Promise<void> {
    const stamp = await statStamp(path);
    if (stamp === undefined || sameStamp(stamp, lastStamp)) return;
    const loaded = await readStateFile(path, log);
    mergeFromDisk(loaded.entries);
    lastStamp = loaded.stamp;
    if (!loaded.stamp) {
      // The file was corrupt and moved aside: write ours back.
      isDirty = true;
      isSnapshotDirty = true;
    }
  }

  async function writeNow(path: string): Promise<void> {
    if (!isDirty) return;
    isDirty = false;
    const sync = isDurablePending;
    isDurablePending = false;
    const changed = new Map<string, StoredEntry | undefined>();
    for (const key of journalChanges) changed.set(key, read(key));
    journalChanges.clear();
    const wroteSnapshot = isSnapshotDirty;
    isSnapshotDirty = false;
    try {
      if (journal && changed.size > 0) {
        await journal.write(changed, liveJournalEntries, sync);
      }
      if (!wroteSnapshot) return;
      await withFileLock(path, log, async () => {
        await loadIfChanged(path);
        const snapshot = liveEntries();
        lastStamp = await writeFileAtomically(path, formatStateFile(snapshot));
        baseline = snapshot;
      });
    } catch (error) {
      isDirty = true;
      isDurablePending ||= sync;
      for (const key of changed.keys()) journalChanges.add(key);
      isSnapshotDirty ||= wroteSnapshot;
      throw error;
    }
  }

  /** File operations run one at a time, in order. */
  function enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = fileQueue.then(task);
    fileQueue = result.catch(() => undefined);
    return result;
  }

  function flush(): Promise<void> {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (!filePath) return Promise.resolve();
    return enqueue(() => writeNow(filePath));
  }

  function markDirty(key: string): void {
    if (journal && isJournalKey(key)) journalChanges.add(key);
    else isSnapshotDirty = true;
    scheduleFlush();
  }

  /** The state file must be rewritten even though no key of its own changed (journal keys moved out of it). */
  function markSnapshotDirty(): void {
    isSnapshotDirty = true;
    scheduleFlush();
  }

  function scheduleFlush(): void {
    if (!filePath) return;
    isDirty = true;
    if (flushTimer || isClosed) return;
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      flush().catch((error: unknown) => log.error({ err: String(error) }, 'state file write failed; will retry'));
    }, flushDelayMs);
  }

  async function write(key: string, value: string, options: SetOptions = {}): Promise<void> {
    const entry: StoredEntry = options.ttlMs === undefined ? { value } : { value, expiresAt: clock() + options.ttlMs };
    entries.set(key, entry);
    markDirty(key);
    if (options.durable) {
      isDurablePending = true;
      await flush();
    }
  }

  function syncFromFile(): Promise<void> {
    if (!filePath) return Promise.resolve();
    return enqueue(async () => {
      // The cheap check first: most of the time nobody else has written, and no lock file is needed.
      if (sameStamp(await statStamp(filePath), lastStamp)) return;
      await withFileLock(filePath, log, () => loadIfChanged(filePath));
    });
  }

  if (filePath) {
    await ensureDirectory(filePath);
    const loaded = await readStateFile(filePath, log);
    for (const [key, entry] of loaded.entries) if (isLive(entry)) entries.set(key, entry);
    if (journal) {
      const replayed = await journal.load();
      if (replayed.exists) {
        // The journal is the truth for its keys; a copy left in the state file (a migration whose state-file
        // write never happened) must not bring back what the journal has since deleted.
        let hasStaleCopies = false;
        for (const key of loaded.entries.keys()) {
          if (!isJournalKey(key)) continue;
          entries.delete(key);
          hasStaleCopies = true;
        }
        if (hasStaleCopies) markSnapshotDirty();
      } else {
        // A state file from before the journal holds these keys itself: move them over on the first flush.
        for (const key of loaded.entries.keys()) if (isJournalKey(key) && entries.has(key)) markDirty(key);
        if (journalChanges.size > 0) markSnapshotDirty();
      }
      for (const [key, entry] of replayed.entries) if (isLive(entry)) entries.set(key, entry);
    }
    baseline = liveEntries();
    lastStamp = loaded.stamp;
  }
  const syncTimer =
    filePath && syncIntervalMs > 0
      ? setInterval(() => {
          syncFromFile().catch((error: unknown) => log.warn({ err: String(error) }, 'state file sync failed'));
        }, syncIntervalMs)
      : undefined;
  syncTimer?.unref();

  function makeLock(key: string, token: string): Lock {
    return {
      key,
      async release() {
        if (locks.get(key)?.token === token) locks.delete(key);
      },
      async extend(ms: number) {
        const held = locks.get(key);
        if (held?.token !== token || held.expiresAt <= clock()) return false;
        held.expiresAt = clock() + ms;
        return true;
      },
    };
  }

  return {
    kind: 'memory',
    async get(key) {
      return read(key)?.value;
    },
    set: write,
    async delete(key) {
      if (entries.delete(key)) markDirty(key);
    },
    async compareAndSet(key, expected, value, options) {
      if (read(key)?.value !== expected) return false;
      await write(key, value, options);
      return true;
    },
    async compareAndDelete(key, expected) {
      if (read(key)?.value !== expected) return false;
      entries.delete(key);
      markDirty(key);
      return true;
    },
    async acquireLock(key, ttlMs) {
      const held = locks.get(key);
      if (held && held.expiresAt > clock()) return undefined;
      const token = randomUUID();
      locks.set(key, { token, expiresAt: clock() + ttlMs });
      return makeLock(key, token);
    },
    async scan(prefix) {
      const keys: string[] = [];
      for (const key of entries.keys()) if (key.startsWith(prefix) && read(key)) keys.push(key);
      return keys;
    },
    flush,
    syncFromFile,
    async close() {
      isClosed = true;
      if (syncTimer) clearInterval(syncTimer);
      await flush();
    },
  };
}
