/**
 * @module files/spool-file
 * A private temporary file for a response of unknown length: written while the bytes are counted
 * (the upload needs the size before its first byte), read back in bounded chunks, deleted on release.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
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
  const path = join(directory, `kimi-attachment-${randomBytes(12).toString('hex')}`);
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
