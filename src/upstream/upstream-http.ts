/**
 * @module upstream/upstream-http
 * The one HTTP client both dialects use: a keep-alive undici Agent with the three upstream timeouts
 * (connect, first byte, idle between chunks) and the translation of transport failures and HTTP
 * statuses into typed gateway errors.
 */
import { Readable } from 'node:stream';
import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import { GatewayError, RateLimitError, UpstreamError, UpstreamTimeoutError, isAbortError } from '../errors.ts';

export interface UpstreamTimeouts {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
}

export interface UpstreamHttpOptions extends UpstreamTimeouts {
  /** Cooldown used for a 429/503 that carries no Retry-After (spec §10.6). */
  defaultRetryAfterMs: number;
  userAgent: string;
}

export interface UpstreamRequest {
  url: string;
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  body?: string | Uint8Array | AsyncIterable<Uint8Array> | null;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

export interface UpstreamHttp {
  send(request: UpstreamRequest): Promise<UpstreamResponse>;
  readonly options: UpstreamHttpOptions;
  close(): Promise<void>;
}

const maxErrorBodyBytes = 64 * 1024;

export function createUpstreamHttp(options: UpstreamHttpOptions): UpstreamHttp {
  const agent = new Agent({
    connect: { timeout: options.connectTimeoutMs },
    headersTimeout: options.firstByteTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    keepAliveTimeout: 30_000,
    // No per-origin cap: every Kimi call goes to one origin, and the account pool already bounds how many
    // run at once (ACCOUNT_MAX_CONCURRENCY, QUEUE_MAX). A cap here would queue streams where no limit sees them.
    connections: null,
  });

  async function send(upstreamRequest: UpstreamRequest): Promise<UpstreamResponse> {
    try {
      const response = await request(upstreamRequest.url, {
        method: upstreamRequest.method ?? 'GET',
        headers: { 'user-agent': options.userAgent, ...upstreamRequest.headers },
        body: toRequestBody(upstreamRequest.body),
        signal: upstreamRequest.signal,
        dispatcher: agent,
      });
      return { statusCode: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      throw toTransportError(error, upstreamRequest.url);
    }
  }

  return { send, options, close: () => agent.close() };
}

/**
 * Keep-alive frames (Connect heartbeats, SSE pings) reset undici's idle timer without carrying any of the answer,
 * so an upstream that only sends them would hold the request for ever. The stream readers call `progressed()`
 * when a read carried events and `check()` when it carried none: after the first-byte timeout (nothing yet) or the
 * idle timeout (since the last events) of keep-alives only, the answer fails as an upstream timeout. The time a
 * slow client takes to read is not counted: the clock restarts when the reader resumes after handing events on.
 */
export function createProgressDeadline(timeouts: UpstreamTimeouts, url: string, now: () => number = performance.now.bind(performance)) {
  let since = now();
  let hasProgressed = false;
  return {
    progressed(): void {
      hasProgressed = true;
      since = now();
    },
    check(): void {
      const limitMs = hasProgressed ? timeouts.idleTimeoutMs : timeouts.firstByteTimeoutMs;
      if (now() - since <= limitMs) return;
      throw new UpstreamTimeoutError(
        hasProgressed
          ? `Kimi stopped sending the answer mid-way: only keep-alives for ${Math.round(limitMs / 1000)} s (${safeOrigin(url)}).`
          : `Kimi did not start answering in time: only keep-alives for ${Math.round(limitMs / 1000)} s (${safeOrigin(url)}).`,
      );
    },
  };
}

/** Maps undici and socket failures to gateway errors; abort errors pass through untouched. */
export function toTransportError(error: unknown, url: string): unknown {
  if (error instanceof GatewayError || isAbortError(error)) return error;
  const where = safeOrigin(url);
  if (error instanceof undiciErrors.HeadersTimeoutError) {
    return new UpstreamTimeoutError(`Kimi did not start answering in time (${where}).`, { cause: error });
  }
  if (error instanceof undiciErrors.BodyTimeoutError) {
    return new UpstreamTimeoutError(`Kimi stopped sending data mid-answer (${where}).`, { cause: error });
  }
  if (error instanceof undiciErrors.ConnectTimeoutError) {
    return new UpstreamTimeoutError(`Could not connect to Kimi in time (${where}).`, { cause: error });
  }
  const code = (error as { code?: string } | undefined)?.code;
  const detail = code ?? (error instanceof Error ? error.message : String(error));
  return new UpstreamError(`Connection to Kimi failed (${where}): ${detail}.`, { cause: error, isRetryable: true });
}

/** Reads a small response body as text, capped so a misbehaving upstream cannot exhaust memory. */
export async function readBodyText(body: UpstreamResponse['body'], limitBytes = maxErrorBodyBytes): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      total += buffer.length;
      if (total > limitBytes) {
        chunks.push(buffer.subarray(0, buffer.length - (total - limitBytes)));
        body.destroy();
        break;
      }
      chunks.push(buffer);
    }
  } catch (error) {
    throw toTransportError(error, 'upstream');
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Iterates a response body, handing over every chunk already received in one step: undici delivers each HTTP
 * chunk of a chunked body separately, so one TCP read of a stream is often dozens of one-event chunks, and taking
 * them together saves an async hop per event downstream. Nothing that arrived before a transport failure is lost:
 * Node's async iterator drops chunks still buffered when the stream is destroyed with an error, so a reset right
 * after a few frames (same TCP read) would hide text the client should get before the error payload. Flowing mode
 * with our own bounded queue keeps them; pausing the stream keeps backpressure.
 */
export async function* readBodyRuns(body: UpstreamResponse['body'], url: string, maxQueuedBytes = 1024 * 1024): AsyncGenerator<Uint8Array[]> {
  const queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let hasEnded = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const onData = (chunk: Uint8Array) => {
    queue.push(chunk);
    queuedBytes += chunk.byteLength;
    if (queuedBytes > maxQueuedBytes) body.pause();
    notify();
  };
  const onEnd = () => {
    hasEnded = true;
    notify();
  };
  const onError = (error: unknown) => {
    failure ??= error;
    notify();
  };
  const onClose = () => {
    if (!hasEnded) failure ??= new Error('the upstream connection closed before the body ended');
    notify();
  };
  body.on('data', onData);
  body.on('end', onEnd);
  body.on('error', onError);
  body.on('close', onClose);
  try {
    for (;;) {
      if (queue.length > 0) {
        const run = queue.splice(0);
        queuedBytes = 0;
        if (body.isPaused()) body.resume();
        yield run;
        continue;
      }
      if (failure !== undefined) throw toTransportError(failure, url);
      if (hasEnded) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    body.off('data', onData);
    body.off('end', onEnd);
    body.off('error', onError);
    body.off('close', onClose);
    if (!hasEnded && !body.destroyed) body.destroy();
  }
}

/**
 * A short, log- and client-safe description of an unexpected body: HTML pages (proxies, the SPA,
 * CDN error pages) are named, not quoted, so no markup reaches a client or a log line; binary bodies (Connect
 * frames under another content type, a protobuf answer) are measured, not quoted, since their bytes are unreadable
 * and can carry ids of the account's chats.
 */
export function describeBody(body: string | Uint8Array, contentType = ''): string {
  const binary = describeBinary(body);
  if (binary) return binary;
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const trimmed = text.replace(/\s+/g, ' ').trim();
  if (/html/i.test(contentType) || /^<(!doctype|html|head|body)/i.test(trimmed)) {
    const visible = trimmed
      .replace(/<(script|style)[^>]*>.*?<\/\1>/gi, ' ')
      .replace(/<[^>]*>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, 120);
    return visible ? `an HTML page ("${visible.replace(/[<>"]/g, '')}")` : 'an HTML page';
  }
  return trimmed.replace(/<[^>]*>/g, '').slice(0, 200);
}

/**
 * "a Connect-framed body of N bytes" when the body starts with a Connect envelope header (flag 0x00-0x03 and a
 * length, spec §3.2), "N bytes of binary data" when it holds control bytes or bytes that are not UTF-8 (U+FFFD once
 * decoded); undefined for text. For a string, N counts its UTF-8 bytes, so it is exact only for bodies read as bytes.
 */
function describeBinary(body: string | Uint8Array): string | undefined {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  const first = typeof body === 'string' ? body.charCodeAt(0) : body[0];
  if (size >= 5 && first !== undefined && first <= 0x03) return `a Connect-framed body of ${size} bytes`;
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  return /[\u0000-\u0008\u000e-\u001f\u007f\ufffd]/.test(text) ? `${size} bytes of binary data` : undefined;
}

/** A response header as one string: the first value of a repeated header, '' when absent. */
export function headerText(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

/** Parses JSON safely: returns undefined instead of throwing on a non-JSON body. */
export function parseJsonSafely(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The Retry-After hint in milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Returns undefined when absent, unparseable or not in the future (see upstreamRetryHintMs).
 */
export function retryAfterMsFromHeaders(
  headers: UpstreamResponse['headers'],
  now: number = Date.now(),
): number | undefined {
  const raw = headers['retry-after'];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (!value) return undefined;
  // A number is seconds, never a date: Date.parse("-5") is a date in 2001.
  if (/^[+-]?\d+(\.\d+)?$/.test(value)) return upstreamRetryHintMs(Number(value) * 1000);
  const date = /[a-z]/i.test(value) ? Date.parse(value) : Number.NaN;
  return Number.isNaN(date) ? undefined : upstreamRetryHintMs(date - now);
}

/** The longest wait an upstream hint can set: beyond a day it is more likely a unit mix-up than a real limit. */
export const maxUpstreamRetryHintMs = 24 * 3_600_000;

/**
 * An upstream's wait hint made safe to act on: none unless it lies in the future (a hint of 0 or a date in the past
 * would let the account be tried again at once, in a loop), and at most a day.
 */
export function upstreamRetryHintMs(ms: number): number | undefined {
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  return Math.min(Math.round(ms), maxUpstreamRetryHintMs);
}

/** What the gateway asked when a status came back, for the message: "chat" and the URL or path it called. */
export interface HttpErrorSite {
  operation: string;
  /** The URL or path called; only its path is quoted (never a query string, which could carry a token). */
  path?: string;
}

/**
 * Errors for HTTP statuses without a dialect-specific body: gateway/CDN level 429/5xx (spec §3.12 last rows). With a
 * `site` the message names the operation and path, and a 404/501 (a CDN or proxy page where an RPC used to be) says
 * the endpoint may have moved.
 */
export function errorForHttpStatus(
  statusCode: number,
  headers: UpstreamResponse['headers'],
  defaultRetryAfterMs: number,
  bodySnippet: string,
  site?: HttpErrorSite,
): GatewayError {
  const snippet = describeBody(bodySnippet);
  const where = site ? ` for ${siteText(site)}` : '';
  const moved = site && (statusCode === 404 || statusCode === 501) ? '; the endpoint may have moved; run doctor' : '';
  const suffix = snippet ? `: ${snippet}` : '';
  if (statusCode === 429) {
    return new RateLimitError('rate_limited', `Kimi is rate limiting this account (HTTP 429${where})${suffix}`, {
      retryAfterMs: retryAfterMsFromHeaders(headers) ?? defaultRetryAfterMs,
    });
  }
  if (statusCode === 503) {
    return new RateLimitError('upstream_overloaded', `Kimi is overloaded (HTTP 503${where})${suffix}`, {
      retryAfterMs: retryAfterMsFromHeaders(headers) ?? defaultRetryAfterMs,
    });
  }
  if (statusCode === 504) {
    return new UpstreamTimeoutError(`Kimi's front end timed out (HTTP 504${where})${suffix}`);
  }
  return new UpstreamError(`Kimi answered HTTP ${statusCode}${where}${suffix}${moved}`, { isRetryable: statusCode >= 500 });
}

/** "chat at /apiv2/…/Chat": the path alone, cut at any query or fragment, and bounded. */
function siteText(site: HttpErrorSite): string {
  const raw = site.path ?? '';
  let path: string;
  try {
    path = new URL(raw, 'http://upstream.invalid').pathname;
  } catch {
    path = raw.split(/[?#]/, 1)[0] ?? '';
  }
  path = path.replace(/[^\w./~%-]/g, '').slice(0, 120);
  return path && path !== '/' ? `${site.operation} at ${path}` : site.operation;
}

function toRequestBody(body: UpstreamRequest['body']): string | Uint8Array | Readable | null {
  if (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array) return body ?? null;
  return Readable.from(body, { objectMode: false });
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'upstream';
  }
}
