/**
 * @module files/spool-file
 * A private temporary file for a response of unknown length: written while the bytes are counted
 * (the upload needs the size before its first byte), read back in bounded chunks, deleted on release.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SpooledFile {
  path: string;
  sizeBytes: number;
}

/**
 * Writes every chunk to a new 0600 file. The source refuses (throws) before handing on a chunk that
 * breaks the cap, so nothing over the cap lands on disk; the file is removed when anything fails.
 */
export async function spoolToTempFile(
  chunks: AsyncIterable<Uint8Array>,
  directory: string = tmpdir(),
): Promise<SpooledFile> {
  const path = temporaryFilePath(directory, 'kimi-attachment');
  // 'wx' refuses to follow or reuse an existing path; 0600 keeps other local users out.
  const handle = await open(path, 'wx', 0o600);
  let sizeBytes = 0;
  try {
    for await (const chunk of chunks) {
      await handle.write(chunk);
      sizeBytes += chunk.byteLength;
    }
    await handle.close();
    return { path, sizeBytes };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await removeSpooledFile(path);
    throw error;
  }
}

/** A re-iterable body that streams the file in 64 KiB reads. */
export function spooledFileBody(path: string): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
      try {
        for await (const chunk of stream) yield chunk as Uint8Array;
      } finally {
        stream.destroy();
      }
    },
  };
}

export async function removeSpooledFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** A fresh path for one of this gateway's temporary files; the sweep below recognises exactly these names. */
export function temporaryFilePath(directory: string, kind: 'kimi-attachment' | 'kfa-spool'): string {
  return join(directory, `${kind}-${randomBytes(12).toString('hex')}`);
}

const temporaryFileName = /^(?:kimi-attachment|kfa-spool)-[0-9a-f]{24}$/;

/**
 * Deletes temporary files left by a process that crashed mid-request. Every such file lives only as long as one
 * request, so one older than `olderThanMs` belongs to no running request; younger ones may belong to a replica
 * on the same machine and are left alone. Returns how many were deleted; failures are skipped, never thrown.
 */
export async function sweepOrphanedTempFiles(options: { directory?: string; olderThanMs?: number; now?: number } = {}): Promise<number> {
  const directory = options.directory ?? tmpdir();
  const cutoff = (options.now ?? Date.now()) - (options.olderThanMs ?? 60 * 60_000);
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return 0;
  }
  let deleted = 0;
  for (const name of names) {
    if (!temporaryFileName.test(name)) continue;
    const path = join(directory, name);
    try {
      const info = await lstat(path);
      if (!info.isFile() || info.mtimeMs > cutoff || (typeof process.getuid === 'function' && info.uid !== process.getuid())) continue;
      await rm(path, { force: true });
      deleted += 1;
    } catch {
      // Gone meanwhile or not ours to touch.
    }
  }
  return deleted;
}
