/**
 * @module files/fetch-attachment
 * Turns one user attachment URL (data: or http(s)) into an UploadSource: type from magic bytes,
 * size known before the upload starts, bytes streamed with bounded buffers and the size cap
 * enforced while streaming. Every http(s) hop goes through the guarded agent.
 */
import type { UploadSource } from '../upstream/dialect.ts';
import { AttachmentError } from '../errors.ts';
import { decodeHead, decodedSlices, isDataUrl, parseDataUrl } from './data-url.ts';
import { detectMediaType, sniffBytes, type AttachmentKind } from './detect-media-type.ts';
import { fileNameFromContentDisposition, fileNameFromUrl, finalFileName, sanitizeFileName } from './file-name.ts';
import { openHttpResponse, transferFailure, type HttpResponse, type TransferDeadline } from './http-transfer.ts';
import type { GuardedAgent } from './ssrf-agent.ts';
import { removeSpooledFile, spooledFileBody, spoolToTempFile } from './spool-file.ts';

export interface OpenAttachmentOptions {
  agent: GuardedAgent;
  kind: AttachmentKind;
  /** Size cap in bytes; default 104857600 (`ATTACHMENT_MAX_BYTES`). */
  maxBytes?: number;
  /** Whole transfer, from the first request to the last body byte; default 120000. */
  totalTimeoutMs?: number;
  /** Redirect hops followed, each re-checked; default 3. */
  maxRedirects?: number;
  signal?: AbortSignal;
  /** Used when neither Content-Disposition nor the URL path names the file. */
  fileNameHint?: string;
  /** N in the generated `attachment-N.ext`; default 1. */
  ordinal?: number;
  /** Where bodies without Content-Length are spooled; default os.tmpdir(). */
  tempDirectory?: string;
}

export type OpenedAttachment = UploadSource & {
  /** Frees the connection, the timer and any temporary file; safe to call more than once. */
  release(): void;
};

export const defaultMaxBytes = 104_857_600;
const defaultTotalTimeoutMs = 120_000;
const defaultMaxRedirects = 3;

export async function openAttachment(url: string, options: OpenAttachmentOptions): Promise<OpenedAttachment> {
  const maxBytes = options.maxBytes ?? defaultMaxBytes;
  if (isDataUrl(url)) return openDataUrl(url, options, maxBytes);
  return openHttpUrl(url, options, maxBytes);
}

async function openDataUrl(url: string, options: OpenAttachmentOptions, maxBytes: number): Promise<OpenedAttachment> {
  const parsed = parseDataUrl(url, maxBytes);
  const head = decodeHead(parsed.payload, sniffBytes);
  const fileNameHint = sanitizeFileName(options.fileNameHint ?? '');
  const detected = await detectMediaType(
    head,
    { kind: options.kind, declaredType: parsed.declaredType, fileName: fileNameHint },
    head.byteLength >= parsed.sizeBytes,
  );
  return {
    fileName: finalFileName([fileNameHint], detected, options.ordinal ?? 1),
    mediaType: detected.mediaType,
    sizeBytes: parsed.sizeBytes,
    kind: options.kind,
    body: decodedSlices(parsed.payload),
    release: () => undefined,
  };
}

async function openHttpUrl(url: string, options: OpenAttachmentOptions, maxBytes: number): Promise<OpenedAttachment> {
  const deadline = startDeadline(options.totalTimeoutMs ?? defaultTotalTimeoutMs, options.signal);
  let response: HttpResponse | undefined;
  try {
    response = await openHttpResponse(url, {
      agent: options.agent,
      maxRedirects: options.maxRedirects ?? defaultMaxRedirects,
      maxBytes,
      deadline,
    });
    const counter = byteCounter(maxBytes);
    const { head, rest, isDone } = await peek(response.chunks, counter.add, deadline);
    const nameFromServer =
      fileNameFromContentDisposition(response.contentDisposition) ?? fileNameFromUrl(response.finalUrl);
    const fileNameHint = sanitizeFileName(options.fileNameHint ?? '');
    const detected = await detectMediaType(
      head,
      { kind: options.kind, declaredType: response.contentType, fileName: nameFromServer ?? fileNameHint },
      isDone,
    );
    const base = {
      fileName: finalFileName([nameFromServer, fileNameHint], detected, options.ordinal ?? 1),
      mediaType: detected.mediaType,
      kind: options.kind,
    };
    if (response.contentLength !== undefined) {
      const close = response.close;
      const body = singleUse(countedStream(head, rest, counter.add, response.contentLength, deadline));
      return { ...base, sizeBytes: response.contentLength, body, release: () => deadline.finish(close) };
    }
    // No Content-Length: the size must be known before the upload starts, so spool to disk (never memory).
    const spooled = await spoolToTempFile(prepend(head, rest, counter.add, deadline), options.tempDirectory);
    deadline.finish(response.close);
    return {
      ...base,
      sizeBytes: spooled.sizeBytes,
      body: spooledFileBody(spooled.path),
      release: () => void removeSpooledFile(spooled.path).catch(() => undefined),
    };
  } catch (error) {
    deadline.finish(response?.close);
    throw transferFailure(error, deadline);
  }
}

/** The whole-transfer timer, combined with the caller's signal; `finish` stops it and frees the socket. */
function startDeadline(totalTimeoutMs: number, callerSignal: AbortSignal | undefined): TransferDeadline {
  const controller = new AbortController();
  const state = { hasTimedOut: false };
  const timer = setTimeout(() => {
    state.hasTimedOut = true;
    controller.abort(new AttachmentError('attachment_unreachable', 'The attachment transfer timed out.'));
  }, totalTimeoutMs);
  const signal = callerSignal === undefined ? controller.signal : AbortSignal.any([callerSignal, controller.signal]);
  return {
    signal,
    callerSignal,
    hasTimedOut: () => state.hasTimedOut,
    finish(close?: () => void) {
      clearTimeout(timer);
      close?.();
    },
  };
}

function byteCounter(maxBytes: number): { add: (chunk: Uint8Array) => void } {
  let total = 0;
  return {
    add(chunk) {
      total += chunk.byteLength;
      if (total > maxBytes) {
        throw new AttachmentError('attachment_too_large', `The attachment is larger than the ${maxBytes}-byte limit.`);
      }
    },
  };
}

/** Reads until at least sniffBytes are in hand (or the body ends); the chunks are kept for the body. */
async function peek(
  chunks: AsyncIterator<Uint8Array>,
  count: (chunk: Uint8Array) => void,
  deadline: TransferDeadline,
): Promise<{ head: Uint8Array; rest: AsyncIterator<Uint8Array>; isDone: boolean }> {
  const parts: Uint8Array[] = [];
  let length = 0;
  while (length < sniffBytes) {
    const next = await chunks.next().catch((error: unknown) => {
      throw transferFailure(error, deadline);
    });
    if (next.done) return { head: Buffer.concat(parts), rest: chunks, isDone: true };
    count(next.value);
    parts.push(next.value);
    length += next.value.byteLength;
  }
  return { head: Buffer.concat(parts), rest: chunks, isDone: false };
}

/** The peeked bytes, then the rest of the body, counted before each chunk is handed on. */
async function* prepend(
  head: Uint8Array,
  rest: AsyncIterator<Uint8Array>,
  count: (chunk: Uint8Array) => void,
  deadline: TransferDeadline,
): AsyncGenerator<Uint8Array> {
  if (head.byteLength > 0) yield head;
  while (true) {
    const next = await rest.next().catch((error: unknown) => {
      throw transferFailure(error, deadline);
    });
    if (next.done) return;
    count(next.value);
    yield next.value;
  }
}

/** The streamed body when Content-Length is known: counts as it goes and refuses more than declared. */
async function* countedStream(
  head: Uint8Array,
  rest: AsyncIterator<Uint8Array>,
  count: (chunk: Uint8Array) => void,
  contentLength: number,
  deadline: TransferDeadline,
): AsyncGenerator<Uint8Array> {
  let received = head.byteLength;
  try {
    if (head.byteLength > 0) yield head;
    while (true) {
      const next = await rest.next().catch((error: unknown) => {
        throw transferFailure(error, deadline);
      });
      if (next.done) break;
      count(next.value);
      received += next.value.byteLength;
      if (received > contentLength) {
        throw new AttachmentError('attachment_unreachable', 'The attachment server sent more bytes than it declared.');
      }
      yield next.value;
    }
    if (received !== contentLength) {
      throw new AttachmentError('attachment_unreachable', 'The attachment transfer ended before the declared length.');
    }
  } finally {
    // Runs on completion, on error and when the consumer stops early: the socket and timer are freed.
    await rest.return?.();
    deadline.finish();
  }
}

/** A network stream can be read once; a second reader gets a clear error instead of silence. */
function singleUse(generator: AsyncGenerator<Uint8Array>): AsyncIterable<Uint8Array> {
  let isTaken = false;
  return {
    [Symbol.asyncIterator]() {
      if (isTaken) throw new Error('This attachment body streams from the network and can be read only once.');
      isTaken = true;
      return generator;
    },
  };
}
