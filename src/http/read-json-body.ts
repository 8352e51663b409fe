/**
 * @module http/read-json-body
 * Reads a JSON request body with a byte limit enforced while reading, a content-type check and a
 * strict UTF-8 decode, so bad input becomes a 400/413/415 envelope and never a crash. The spooling
 * variant writes large base64 attachment strings to private temporary files while reading, so a big
 * attachment sent inline is never held in memory as a string (issue 4).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { SpooledDataUrl } from '../chat/chat-request.ts';
import { GatewayError, InvalidRequestError } from '../errors.ts';
import { temporaryFilePath } from '../files/spool-file.ts';
import type { HttpContext } from './http-context.ts';
import { createLargeStringScanner, type ScanEvent } from './spool-large-strings.ts';

/** Attachment strings longer than this (in characters) are spooled to disk by the chat routes. */
export const spoolThresholdBytes = 256 * 1024;

export interface SpoolRegistry {
  /** The file behind a placeholder this request issued; undefined for anything else. */
  resolve(placeholder: string): SpooledDataUrl | undefined;
  /** Deletes every file; safe to call more than once. */
  release(): Promise<void>;
}

export interface SpoolOptions {
  /** Characters an attachment string must reach before it is spooled. */
  thresholdBytes: number;
  /** Where the files go; default os.tmpdir(). */
  tempDirectory?: string;
}

export async function readJsonBody(request: IncomingMessage, limitBytes: number): Promise<unknown> {
  checkHeaders(request, limitBytes);
  return parseJsonText(await collectBody(request, limitBytes));
}

/**
 * The whole body as bytes, stopping at the limit. Event listeners rather than an async iterator: this runs
 * once per request and the iterator's promise per chunk was a visible share of a small request's CPU.
 */
function collectBody(request: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const settle = (error: unknown, body?: Buffer) => {
      request.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error === undefined) resolve(body!);
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total <= limitBytes) return void chunks.push(chunk);
      settle(tooLarge(limitBytes));
      request.resume(); // drain the rest so the 413 can still be written on this connection
    };
    const onEnd = () => settle(undefined, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total));
    const onError = (error: Error) => settle(error);
    const onClose = () => settle(new Error('The client closed the connection before the request body ended.'));
    if (request.destroyed) return onClose();
    request.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/**
 * readJsonBody, except that attachment strings past `thresholdBytes` are written to temporary files and
 * replaced by placeholders — `data:<type>;base64,kfa-spool:<id>` for a data URL, `kfa-spool:<id>` for bare
 * base64 — whose `kfa-spool:<id>` part `spool.resolve` maps back. The caller owns the registry and
 * must release it (releaseWhenClosed); on any error here it is released before the error is thrown.
 */
export async function readJsonBodyWithSpool(
  request: IncomingMessage,
  limitBytes: number,
  options: SpoolOptions,
): Promise<{ value: unknown; spool: SpoolRegistry }> {
  checkHeaders(request, limitBytes);
  // A body shorter than the threshold cannot hold a string that long: skip the byte scanner.
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared < options.thresholdBytes) {
    return { value: parseJsonText(await collectBody(request, limitBytes)), spool: emptySpool };
  }
  // os.tmpdir() reads the environment on every call; only a body that spools needs it.
  const spool = createSpoolRegistry(() => options.tempDirectory ?? tmpdir());
  const scanner = createLargeStringScanner({ thresholdBytes: options.thresholdBytes });
  const text: Uint8Array[] = [];
  let writer: SpoolWriter | undefined;
  // Awaiting every file write before the next chunk is read is the backpressure: the socket waits for the disk.
  const apply = async (events: ScanEvent[]) => {
    for (const event of events) {
      if (event.type === 'text') text.push(event.bytes);
      else if (event.type === 'spool-start') {
        writer = await spool.create(event.mediaType);
        // A data URL stays a data URL (so nothing downstream mistakes it for bare base64 and wraps it again);
        // bare base64 stays bare. The media type passed the header check, so it is safe inside the JSON string.
        const header = event.isDataUrl ? `data:${event.mediaType ?? ''};base64,` : '';
        text.push(Buffer.from(header + writer.placeholder, 'latin1'));
      } else if (event.type === 'spool-data') await writer?.write(event.bytes);
      else {
        await writer?.finish();
        writer = undefined;
      }
    }
  };
  try {
    let total = 0;
    for await (const chunk of request) {
      total += (chunk as Buffer).length;
      if (total > limitBytes) {
        request.resume();
        throw tooLarge(limitBytes);
      }
      try {
        await apply(scanner.push(chunk as Buffer));
      } catch (error) {
        request.resume();
        throw error;
      }
    }
    await apply(scanner.end());
    return { value: parseJsonText(Buffer.concat(text)), spool };
  } catch (error) {
    await writer?.abandon();
    await spool.release();
    throw error;
  }
}

/**
 * The chat routes' reader: spools attachment strings past spoolThresholdBytes and deletes the files once the
 * response has closed, whatever way it ends.
 */
export async function readChatBody(context: HttpContext, limitBytes: number): Promise<{ value: unknown; spool: SpoolRegistry }> {
  const read = await readJsonBodyWithSpool(context.request, limitBytes, { thresholdBytes: spoolThresholdBytes });
  if (read.spool !== emptySpool) releaseWhenClosed(context.response, read.spool);
  return read;
}

/** Releases the registry once the response has closed (finished, failed or abandoned by the client). */
export function releaseWhenClosed(response: ServerResponse, spool: SpoolRegistry): void {
  if (response.closed) void spool.release();
  else response.once('close', () => void spool.release());
}

/** The registry of a body that spooled nothing. */
const emptySpool: SpoolRegistry = { resolve: () => undefined, release: () => Promise.resolve() };

interface SpoolWriter {
  placeholder: string;
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the file and makes the placeholder resolvable. */
  finish(): Promise<void>;
  /** Closes the file without registering it (release deletes it). */
  abandon(): Promise<void>;
}

function createSpoolRegistry(directory: () => string): SpoolRegistry & { create(mediaType: string | undefined): Promise<SpoolWriter> } {
  const entries = new Map<string, SpooledDataUrl>();
  const paths: string[] = [];
  let released: Promise<void> | undefined;
  return {
    async create(mediaType) {
      if (released) throw new Error('The spool has been released.');
      const path = temporaryFilePath(directory(), 'kfa-spool');
      // 'wx' never reuses or follows an existing path; 0600 keeps other local users out.
      const handle: FileHandle = await open(path, 'wx', 0o600);
      paths.push(path);
      // The placeholder is its own random token, unrelated to the path, and is only valid in this registry.
      const placeholder = `kfa-spool:${randomBytes(18).toString('base64url')}`;
      const entry: SpooledDataUrl = { path, sizeBytes: 0, mediaType };
      let isClosed = false;
      const close = async () => {
        if (isClosed) return;
        isClosed = true;
        await handle.close();
      };
      return {
        placeholder,
        async write(bytes) {
          for (let offset = 0; offset < bytes.byteLength; ) {
            const { bytesWritten } = await handle.write(bytes, offset, bytes.byteLength - offset);
            offset += bytesWritten;
          }
          entry.sizeBytes += bytes.byteLength;
        },
        async finish() {
          await close();
          entries.set(placeholder, entry);
        },
        abandon: () => close().catch(() => undefined),
      };
    },
    resolve(placeholder) {
      return released ? undefined : entries.get(placeholder);
    },
    release() {
      released ??= (async () => {
        entries.clear();
        await Promise.all(paths.map((path) => rm(path, { force: true }).catch(() => undefined)));
      })();
      return released;
    },
  };
}

function checkHeaders(request: IncomingMessage, limitBytes: number): void {
  const contentType = String(request.headers['content-type'] ?? '').toLowerCase();
  if (!contentType.includes('application/json') && !contentType.includes('+json')) {
    throw unsupportedMediaType(`Send the body as JSON with "Content-Type: application/json" (got "${contentType.slice(0, 60) || 'none'}").`);
  }
  const encoding = String(request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== '') {
    throw unsupportedMediaType(`Send the body uncompressed: Content-Encoding "${encoding.slice(0, 40)}" is not supported.`);
  }
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw tooLarge(limitBytes);
}

/** Fatal: invalid UTF-8 is refused, never replaced. Reusable, since each decode call is complete. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function parseJsonText(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new InvalidRequestError('The request body is not valid UTF-8.', { code: 'invalid_json' });
  }
  if (!text.trim()) throw new InvalidRequestError('The request body is empty; send a JSON object.', { code: 'invalid_json' });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidRequestError(`The request body is not valid JSON${whereJsonBroke((error as Error).message)}.`, { code: 'invalid_json' });
  }
}

/**
 * Where the parser stopped, without the excerpt of the body V8 puts in its message: a body sent by mistake to the
 * wrong endpoint may be a token, and error messages never carry one (docs/errors.md).
 */
function whereJsonBroke(parserMessage: string): string {
  const position = /position (\d+)/.exec(parserMessage)?.[1];
  if (position !== undefined) return ` (at character ${position})`;
  return /end of (JSON|data)/i.test(parserMessage) ? ' (it ends too early)' : '';
}

function unsupportedMediaType(message: string): GatewayError {
  return new GatewayError({ status: 415, type: 'invalid_request_error', code: 'unsupported_media_type', message });
}

function tooLarge(limitBytes: number): GatewayError {
  return new GatewayError({ status: 413, type: 'invalid_request_error', code: 'request_too_large', message: `The request body is larger than the ${limitBytes}-byte limit (BODY_LIMIT_BYTES).` });
}
