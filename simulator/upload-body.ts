/**
 * @module simulator/upload-body
 * Streams an upload body (multipart part or raw PUT) into a size count and a sha256 without keeping the bytes,
 * stopping early (and draining the rest) when it grows past the limit.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { boundaryOf, dispositionOf, MultipartError, MultipartParser } from './multipart.ts';

export interface ReceivedFile {
  fileName: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

export type ReceiveResult = { ok: true; file: ReceivedFile } | { ok: false; reason: 'too-large' | 'malformed' | 'no-file-part'; message: string };

class FileDigest {
  readonly #hash = createHash('sha256');
  sizeBytes = 0;

  add(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.sizeBytes += chunk.length;
  }

  hex(): string {
    return this.#hash.digest('hex');
  }
}

/** Feeds each chunk to `onChunk` until it returns false; the rest of the body is drained, not parsed. */
function consume(req: IncomingMessage, onChunk: (chunk: Buffer) => boolean): Promise<'ended' | 'stopped' | 'aborted'> {
  return new Promise((resolve) => {
    let stopped = false;
    req.on('data', (chunk: Buffer) => {
      if (stopped) return;
      if (!onChunk(chunk)) {
        stopped = true;
        resolve('stopped');
      }
    });
    req.once('end', () => resolve(stopped ? 'stopped' : 'ended'));
    req.once('error', () => resolve('aborted'));
    req.once('close', () => resolve(stopped ? 'stopped' : req.complete ? 'ended' : 'aborted'));
  });
}

function tooLarge(limit: number): ReceiveResult {
  return { ok: false, reason: 'too-large', message: `file exceeds the upload limit of ${limit} bytes` };
}

/** Reads the `file` part of a multipart/form-data upload (spec §3.10). */
export async function receiveMultipartFile(req: IncomingMessage, maxBytes: number): Promise<ReceiveResult> {
  const boundary = boundaryOf(req.headers['content-type']);
  if (!boundary) return { ok: false, reason: 'malformed', message: 'expected multipart/form-data with a boundary' };
  let digest: FileDigest | undefined;
  let inFilePart = false;
  let file: ReceivedFile | undefined;
  let failure: ReceiveResult | undefined;
  const parser = new MultipartParser(boundary, {
    onPartStart(headers) {
      const disposition = dispositionOf(headers['content-disposition']);
      inFilePart = disposition.name === 'file' && file === undefined;
      if (inFilePart) {
        digest = new FileDigest();
        file = { fileName: disposition.filename ?? 'file', contentType: headers['content-type'] ?? 'application/octet-stream', sizeBytes: 0, sha256: '' };
      }
    },
    onPartData(chunk) {
      if (inFilePart) digest?.add(chunk);
    },
    onPartEnd() {
      if (inFilePart && file && digest) Object.assign(file, { sizeBytes: digest.sizeBytes, sha256: digest.hex() });
      inFilePart = false;
    },
  });
  const outcome = await consume(req, (chunk) => {
    try {
      parser.write(chunk);
    } catch (error) {
      failure = { ok: false, reason: 'malformed', message: error instanceof MultipartError ? error.message : 'malformed multipart body' };
      return false;
    }
    if (digest && digest.sizeBytes > maxBytes) {
      failure = tooLarge(maxBytes);
      return false;
    }
    return true;
  });
  if (failure) return failure;
  if (outcome === 'aborted' || !parser.isFinished) return { ok: false, reason: 'malformed', message: 'multipart body ended before the closing boundary' };
  if (!file || file.sha256 === '') return { ok: false, reason: 'no-file-part', message: 'multipart body has no part named "file"' };
  return { ok: true, file };
}

/** Reads a raw PUT body (legacy pre-signed upload, spec §2.3). */
export async function receiveRawFile(req: IncomingMessage, fileName: string, maxBytes: number): Promise<ReceiveResult> {
  const digest = new FileDigest();
  const outcome = await consume(req, (chunk) => {
    digest.add(chunk);
    return digest.sizeBytes <= maxBytes;
  });
  if (outcome === 'stopped') return tooLarge(maxBytes);
  if (outcome === 'aborted') return { ok: false, reason: 'malformed', message: 'upload aborted' };
  return { ok: true, file: { fileName, contentType: req.headers['content-type'] ?? 'application/octet-stream', sizeBytes: digest.sizeBytes, sha256: digest.hex() } };
}
