/**
 * @module upstream/legacy/legacy-rest
 * The legacy dialect's settings object and its one way to make a REST call: send JSON, map any non-2xx
 * answer to a typed error (spec §2.8), parse the JSON reply.
 */
import { UpstreamError } from '../../errors.ts';
import { parseJsonSafely, readBodyText, type UpstreamHttp, type UpstreamResponse } from '../upstream-http.ts';
import { legacyErrorFromResponse, type LegacyCallKind } from './legacy-errors.ts';
import type { LegacyUnknownHandler } from './legacy-sse.ts';

/** Everything the legacy modules share; built once by createLegacyDialect. */
export interface LegacyContext {
  /** Origin without a trailing slash, e.g. `https://kimi.moonshot.cn`. */
  baseUrl: string;
  http: UpstreamHttp;
  timeZone: string;
  defaultRetryAfterMs: number;
  onUnknown: LegacyUnknownHandler;
}

export interface LegacyCall {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path under baseUrl (`/api/user`) or an absolute URL (a pre-signed upload target). */
  path: string;
  headers: Record<string, string>;
  body?: unknown;
  signal: AbortSignal;
  kind?: LegacyCallKind;
  isConversationLookup?: boolean;
  /** Statuses that count as success besides 2xx (e.g. 404 for an idempotent delete). */
  acceptStatuses?: number[];
}

/** Sends the call and returns the response when it succeeded; otherwise throws the mapped error. */
export async function sendLegacy(context: LegacyContext, call: LegacyCall): Promise<UpstreamResponse> {
  const hasJsonBody = call.body !== undefined;
  const response = await context.http.send({
    url: call.path.startsWith('/') ? `${context.baseUrl}${call.path}` : call.path,
    method: call.method,
    headers: hasJsonBody ? { ...call.headers, 'Content-Type': 'application/json' } : call.headers,
    body: hasJsonBody ? JSON.stringify(call.body) : undefined,
    signal: call.signal,
  });
  if (isSuccess(response.statusCode) || call.acceptStatuses?.includes(response.statusCode)) return response;
  throw await legacyErrorFromResponse(response, {
    kind: call.kind ?? 'request',
    defaultRetryAfterMs: context.defaultRetryAfterMs,
    isConversationLookup: call.isConversationLookup,
  });
}

/** Sends the call and parses its JSON answer; a 2xx that is not JSON is an upstream fault. */
export async function callLegacyJson(context: LegacyContext, call: LegacyCall): Promise<unknown> {
  const response = await sendLegacy(context, call);
  const text = await readBodyText(response.body, 4 * 1024 * 1024);
  const value = parseJsonSafely(text);
  if (value === undefined) {
    throw new UpstreamError(`Kimi answered ${call.method} ${pathOnly(call.path)} with something that is not JSON.`, {
      isRetryable: true,
    });
  }
  return value;
}

/** Drains and discards a body so the keep-alive connection can be reused. */
export async function discardBody(response: UpstreamResponse): Promise<void> {
  try {
    await response.body.dump();
  } catch {
    // The connection is not reusable; undici replaces it.
  }
}

export function isSuccess(statusCode: number): boolean {
  return statusCode >= 200 && statusCode < 300;
}

/** The path of a URL for messages: pre-signed URLs carry signatures in their query, which must not leak. */
export function pathOnly(pathOrUrl: string): string {
  if (pathOrUrl.startsWith('/')) return pathOrUrl.split('?')[0];
  try {
    return new URL(pathOrUrl).pathname;
  } catch {
    return 'upload URL';
  }
}
