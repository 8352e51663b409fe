/**
 * @module upstream/connect/connect-rpc
 * Unary Connect calls (protocol spec §3.2, §3.9): POST a JSON body with the session's headers, read a
 * JSON answer, and turn any non-2xx answer into a typed error.
 */
import { UpstreamError } from '../../errors.ts';
import type { Session } from '../dialect.ts';
import { parseJsonSafely, readBodyText, type UpstreamResponse } from '../upstream-http.ts';
import { connectHeaders, type ConnectSettings } from './connect-auth.ts';
import { errorFromResponse, type ConnectErrorContext } from './connect-errors.ts';

/** ListMessages returns a whole chat in one answer; bound it anyway. */
const maxUnaryResponseBytes = 16 * 1024 * 1024;

export interface RpcContext {
  /** Words for messages: "conversation lookup", "model list". */
  operation: string;
  conversationId?: string;
  /** The RPC's path, named when a CDN or proxy page comes back instead of a Connect error (callUnary sets it). */
  path?: string;
}

export function sendUnary(settings: ConnectSettings, session: Session, url: string, body: unknown, signal: AbortSignal): Promise<UpstreamResponse> {
  return settings.http.send({
    url,
    method: 'POST',
    headers: { ...connectHeaders(settings, session.identity, session.accessToken), 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

export function errorContext(settings: ConnectSettings, context: RpcContext): ConnectErrorContext {
  return { ...context, defaultRetryAfterMs: settings.defaultRetryAfterMs, busyRetryAfterMs: settings.busyRetryAfterMs };
}

/** The JSON of a 2xx answer, or the mapped error of any other. */
export async function readUnaryJson(settings: ConnectSettings, response: UpstreamResponse, context: RpcContext): Promise<unknown> {
  if (response.statusCode < 200 || response.statusCode >= 300) {
    throw await errorFromResponse(response, errorContext(settings, context));
  }
  const json = parseJsonSafely(await readBodyText(response.body, maxUnaryResponseBytes));
  if (json === undefined) throw new UpstreamError(`Kimi answered the ${context.operation} with something that is not JSON.`, { isRetryable: true });
  return json;
}

export async function callUnary(settings: ConnectSettings, session: Session, url: string, body: unknown, context: RpcContext, signal: AbortSignal): Promise<unknown> {
  return readUnaryJson(settings, await sendUnary(settings, session, url, body, signal), { ...context, path: new URL(url).pathname });
}
