/**
 * @module files/http-transfer
 * The http(s) side of an attachment fetch: follows redirects by hand (each hop re-checked by the
 * guarded agent, at most N), refuses non-2xx, compressed and declared-oversize responses before
 * reading a body byte, and maps transport failures to attachment error codes.
 */
import { request } from 'undici';
import { AttachmentError, GatewayError, isAbortError } from '../errors.ts';
import type { GuardedAgent } from './ssrf-agent.ts';

export interface TransferDeadline {
  /** Aborts on the whole-transfer timeout or when the caller's signal aborts. */
  signal: AbortSignal;
  callerSignal: AbortSignal | undefined;
  hasTimedOut(): boolean;
  /** Stops the timer and runs `close` (frees the socket); idempotent. */
  finish(close?: () => void): void;
}

export interface HttpResponse {
  /** The URL after redirects, for the file name. */
  finalUrl: URL;
  contentType: string | undefined;
  contentDisposition: string | undefined;
  /** Declared length, already checked against the cap; undefined when the server sent none. */
  contentLength: number | undefined;
  chunks: AsyncIterator<Uint8Array>;
  close(): void;
}

export interface OpenHttpOptions {
  agent: GuardedAgent;
  maxRedirects: number;
  maxBytes: number;
  deadline: TransferDeadline;
}

const redirectStatuses: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

const requestHeaders = {
  accept: '*/*',
  // Compressed bodies would let a small transfer expand past the cap; ask for none and refuse any.
  'accept-encoding': 'identity',
  'user-agent': 'kimi-free-api attachment fetcher',
};

export async function openHttpResponse(url: string, options: OpenHttpOptions): Promise<HttpResponse> {
  let current = parseUrl(url);
  for (let hop = 0; ; hop += 1) {
    options.agent.checkUrl(current);
    const response = await request(current, {
      method: 'GET',
      headers: requestHeaders,
      dispatcher: options.agent,
      signal: options.deadline.signal,
    });
    const headers = response.headers;
    // Destroying an unread undici body emits 'error' (aborted); nobody listens for it once we let go.
    const close = () => void response.body.on('error', ignore).destroy();
    if (redirectStatuses.has(response.statusCode)) {
      close();
      if (hop >= options.maxRedirects) {
        throw unreachable(`The attachment URL redirected more than ${options.maxRedirects} times.`);
      }
      current = redirectTarget(headerValue(headers, 'location'), current);
      continue;
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      close();
      throw unreachable(`The attachment URL answered HTTP ${response.statusCode}.`, String(response.statusCode));
    }
    const encoding = headerValue(headers, 'content-encoding')?.trim().toLowerCase();
    if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
      close();
      throw unreachable(`The attachment server sent a compressed body (Content-Encoding: ${encoding.slice(0, 40)}); only uncompressed transfers are accepted.`);
    }
    const contentLength = parseContentLength(headerValue(headers, 'content-length'));
    if (contentLength !== undefined && contentLength > options.maxBytes) {
      close();
      throw new AttachmentError(
        'attachment_too_large',
        `The attachment is ${contentLength} bytes, over the ${options.maxBytes}-byte limit.`,
      );
    }
    return {
      finalUrl: current,
      contentType: headerValue(headers, 'content-type'),
      contentDisposition: headerValue(headers, 'content-disposition'),
      contentLength,
      chunks: (response.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator](),
      close,
    };
  }
}

/** Maps any failure during a transfer to the error the client should see; a caller abort passes through. */
export function transferFailure(error: unknown, deadline: TransferDeadline): unknown {
  if (error instanceof AttachmentError && error.code !== 'attachment_unreachable') return error;
  if (deadline.hasTimedOut()) {
    return new AttachmentError('attachment_unreachable', 'The attachment transfer timed out.', { cause: error });
  }
  if (deadline.callerSignal?.aborted === true && isAbortError(error)) return error;
  if (error instanceof GatewayError) return error;
  if (deadline.callerSignal?.aborted === true) return deadline.callerSignal.reason ?? error;
  return unreachable(`The attachment could not be fetched (${describeTransportError(error)}).`, undefined, error);
}

function describeTransportError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection closed by the server';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'could not connect in time';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'the server stopped answering';
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return 'the body did not match its declared length';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return 'network error';
  }
}

function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new AttachmentError('attachment_invalid', 'The attachment URL is not a valid URL.');
  }
}

function redirectTarget(location: string | undefined, base: URL): URL {
  if (location === undefined) throw unreachable('The attachment URL redirected without a Location.');
  try {
    return new URL(location, base);
  } catch {
    throw unreachable('The attachment URL redirected to an invalid location.');
  }
}

function parseContentLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  return Number(value);
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function ignore(): void {}

function unreachable(message: string, upstreamReason?: string, cause?: unknown): AttachmentError {
  return new AttachmentError('attachment_unreachable', message, { upstreamReason, cause });
}
