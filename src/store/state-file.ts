/**
 * @module store/state-file
 * The local state file under memory-store.ts: atomic replace (temp file in the same directory, fsync, rename),
 * a small lock file so `add-account` and a running gateway never interleave a read-merge-write, and loading
 * that moves a corrupt file aside instead of dropping it. The file holds tokens, so it is created with mode 0600.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { StoreLog } from './state-store.ts';
import { isPlainObject } from '../plain-object.ts';

export interface StoredEntry {
  value: string;
  /** Epoch milliseconds on the store's clock; absent = no expiry. */
  expiresAt?: number;
}

/** Identity of one written version of the file; every atomic write makes a new inode, so this changes. */
export interface FileStamp {
  mtimeMs: number;
  size: number;
  ino: number;
}

export function sameStamp(a: FileStamp | undefined, b: FileStamp | undefined): boolean {
  return a?.mtimeMs === b?.mtimeMs && a?.size === b?.size && a?.ino === b?.ino;
}

export async function statStamp(path: string): Promise<FileStamp | undefined> {
  try {
    const info = await stat(path);
    return { mtimeMs: info.mtimeMs, size: info.size, ino: info.ino };
  } catch (error) {
    if (isMissingFile(error)) return undefined;
    throw error;
  }
}

export async function ensureDirectory(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
}

/**
 * Reads the state file. A missing file is an empty state. A file that does not parse is renamed to
 * `<file>.corrupt-<time>` with a warning (an operator may still recover tokens from it) and reads as empty.
 */
export async function readStateFile(
  path: string,
  log: StoreLog,
): Promise<{ entries: Map<string, StoredEntry>; stamp: FileStamp | undefined }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isMissingFile(error)) return { entries: new Map(), stamp: undefined };
    throw error;
  }
  const stamp = await statStamp(path);
  const entries = parseStateFile(text);
  if (entries) return { entries, stamp };
  const asidePath = `${path}.corrupt-${Date.now()}`;
  await rename(path, asidePath);
  log.warn({ path, movedTo: asidePath }, 'state file is corrupt; moved it aside and started with an empty state');
  return { entries: new Map(), stamp: undefined };
}

/** Parses the file text; undefined when it is not a state file we wrote. */
export function parseStateFile(text: string): Map<string, StoredEntry> | undefined {
  let content: unknown;
  try {
    content = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isPlainObject(content) || content.version !== 1 || !isPlainObject(content.entries)) return undefined;
  const entries = new Map<string, StoredEntry>();
  for (const [key, raw] of Object.entries(content.entries)) {
    if (!isPlainObject(raw) || typeof raw.value !== 'string') return undefined;
    const expiresAt = typeof raw.expiresAt === 'number' ? raw.expiresAt : undefined;
    entries.set(key, expiresAt === undefined ? { value: raw.value } : { value: raw.value, expiresAt });
  }
  return entries;
}

/**
 * Entries are replaced, never mutated, so each one's JSON is computed once and reused by every later
 * flush: the file is rewritten whole, but only changed entries cost a JSON.stringify.
 */
const serializedEntries = new WeakMap<StoredEntry, string>();

function serializeEntry(key: string, entry: StoredEntry): string {
  let json = serializedEntries.get(entry);
  if (json === undefined) {
    json = JSON.stringify(entry.expiresAt === undefined ? { value: entry.value } : { value: entry.value, expiresAt: entry.expiresAt });
    serializedEntries.set(entry, json);
  }
  return `${JSON.stringify(key)}:${json}`;
}

/** The same compact JSON as `JSON.stringify({ version: 1, entries })`, built from cached entry texts. */
export function formatStateFile(entries: Iterable<[string, StoredEntry]>): string {
  const parts: string[] = [];
  for (const [key, entry] of entries) parts.push(serializeEntry(key, entry));
  return `{"version":1,"entries":{${parts.join(',')}}}\n`;
}

/** Replaces `path` atomically: a reader sees the old file or the new one, never a torn write. */
export async function writeFileAtomically(path: string, text: string): Promise<FileStamp> {
  const directory = dirname(path);
  const temporaryPath = join(directory, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temporaryPath, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporaryPath, path);
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }
  await syncDirectory(directory);
  const stamp = await statStamp(path);
  if (!stamp) throw new Error('state file vanished right after it was written');
  return stamp;
}

/** fsync of the directory makes the rename itself durable; some file systems refuse it, which is harmless. */
async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort only.
  }
}

export interface FileLockOptions {
  /** Give up waiting after this long and proceed without the lock (a warning is logged). */
  waitMs?: number;
  /** A lock file older than this belongs to a crashed process and is removed. */
  staleMs?: number;
}

/** Runs `task` while holding `<path>.lock` (created with O_EXCL), so two processes never merge-and-write at once. */
export async function withFileLock<T>(
  path: string,
  log: StoreLog,
  task: () => Promise<T>,
  { waitMs = 3_000, staleMs = 10_000 }: FileLockOptions = {},
): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + waitMs;
  let isHeld = false;
  while (!isHeld) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      isHeld = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const info = await stat(lockPath).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > staleMs) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        log.warn({ lockPath }, 'state file lock is busy for too long; writing without it');
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  try {
    return await task();
  } finally {
    if (isHeld) await rm(lockPath, { force: true });
  }
}

function isMissingFile(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
