/**
 * @module store/journal-file
 * An append-only file of key changes beside the state file, for the many short-lived keys of temporary chats
 * (conversation records and pending deletions, protocol spec §10.3). Rewriting the whole state file once a
 * second cost time in proportion to every chat kept for CHAT_RETENTION_SECONDS; appending costs only what
 * changed. One JSON line per change; the file is compacted (rewritten atomically with the live entries only)
 * once its lines outnumber twice the live entries. A torn last line, from a crash mid-append, is skipped.
 */
import { open, readFile } from 'node:fs/promises';
import { writeFileAtomically, type StoredEntry } from './state-file.ts';
import type { StoreLog } from './state-store.ts';

/** One line: a set (`v`, optional expiry `x`) or a deletion (`d`). */
type JournalLine = { k: string; v: string; x?: number } | { k: string; d: 1 };

export interface JournalFile {
  /** Replays the file: the entries as of the last complete line; `exists` is false when there is no file yet. */
  load(): Promise<{ entries: Map<string, StoredEntry>; exists: boolean }>;
  /**
   * Records `changes` (undefined = deleted). Compacts instead when the file has grown past twice the live
   * entries (`live` is walked only when the file may have); `sync` waits until the bytes are on disk.
   */
  write(changes: ReadonlyMap<string, StoredEntry | undefined>, live: () => Iterable<[string, StoredEntry]>, sync: boolean): Promise<void>;
}

/** Lines allowed beyond twice the live entries before a compaction (small journals are never rewritten). */
const compactionSlackLines = 1_000;

export function openJournalFile(path: string, log: StoreLog): JournalFile {
  let lineCount = 0;
  /** The file ends inside a line (a crash mid-append): the next append starts on a fresh line. */
  let endsMidLine = false;
  /** An append failed part-way: the next write replaces the file. */
  let mustCompact = false;
  /**
   * Live entries when last counted. Counting walks them all, so it happens only once the file has grown past
   * twice this many lines: at most once per doubling, not on every flush.
   */
  let countedLive = 0;

  return {
    async load() {
      const entries = new Map<string, StoredEntry>();
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { entries, exists: false };
        throw error;
      }
      endsMidLine = text.length > 0 && !text.endsWith('\n');
      let skipped = 0;
      for (const raw of text.split('\n')) {
        if (!raw) continue;
        const line = parseLine(raw);
        if (!line) {
          skipped += 1;
          continue;
        }
        lineCount += 1;
        if ('d' in line) entries.delete(line.k);
        else entries.set(line.k, line.x === undefined ? { value: line.v } : { value: line.v, expiresAt: line.x });
      }
      if (skipped > 0) log.warn({ path, skipped }, 'state journal had unreadable lines (a write cut short by a crash); skipped them');
      return { entries, exists: true };
    },

    async write(changes, live, sync) {
      const isOverdue = () => lineCount + changes.size > 2 * countedLive + compactionSlackLines;
      if (mustCompact || isOverdue()) {
        const entries = [...live()];
        countedLive = entries.length;
        if (mustCompact || isOverdue()) {
          await writeFileAtomically(path, entries.map(([key, entry]) => formatLine(key, entry)).join(''));
          lineCount = entries.length;
          endsMidLine = false;
          mustCompact = false;
          return;
        }
      }
      let text = endsMidLine ? '\n' : '';
      for (const [key, entry] of changes) text += formatLine(key, entry);
      try {
        const handle = await open(path, 'a', 0o600);
        try {
          await handle.appendFile(text, 'utf8');
          if (sync) await handle.sync();
        } finally {
          await handle.close();
        }
      } catch (error) {
        // Part of the text may be on disk (a full disk, an I/O error): the retry rewrites the file whole instead
        // of appending after a fragment that would swallow the next line.
        mustCompact = true;
        throw error;
      }
      lineCount += changes.size;
      endsMidLine = false;
    },
  };
}

function formatLine(key: string, entry: StoredEntry | undefined): string {
  const line: JournalLine = !entry ? { k: key, d: 1 } : entry.expiresAt === undefined ? { k: key, v: entry.value } : { k: key, v: entry.value, x: entry.expiresAt };
  return `${JSON.stringify(line)}\n`;
}

function parseLine(raw: string): JournalLine | undefined {
  try {
    const line = JSON.parse(raw) as Partial<{ k: unknown; v: unknown; x: unknown; d: unknown }>;
    if (typeof line.k !== 'string') return undefined;
    if (line.d === 1) return { k: line.k, d: 1 };
    if (typeof line.v !== 'string') return undefined;
    return typeof line.x === 'number' ? { k: line.k, v: line.v, x: line.x } : { k: line.k, v: line.v };
  } catch {
    return undefined;
  }
}
