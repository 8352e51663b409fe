/**
 * @module http/http-context
 * What a route handler receives: the raw request/response, a request id, an abort signal that fires
 * when the client goes away (or the server shuts down), and helpers to answer JSON or text.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RequestRecord {
  /** The route pattern that answered (`/v1/models/*`), for metrics: a fixed set, unlike the paths clients send. */
  route?: string;
  model?: string;
  account?: string;
  firstByteAt?: number;
  outcome?: string;
  errorCode?: string;
}

export interface HttpContext {
  request: IncomingMessage;
  response: ServerResponse;
  /** The request target as a URL on the gateway (path and query; never a host the client named). */
  url: URL;
  /** The path routes are matched by: dot segments resolved, repeated and trailing slashes dropped. */
  path: string;
  requestId: string;
  signal: AbortSignal;
  /** Fields for the one log line written per request. */
  record: RequestRecord;
  /** Extra response headers (CORS, request id) every answer carries. */
  baseHeaders: Record<string, string>;
}

export type RouteHandler = (context: HttpContext) => Promise<void> | void;

/** The client left before any answer (closed its socket mid-body or while queued): nothing to answer, no gateway fault. */
export function isClientGone(context: HttpContext): boolean {
  return !context.response.headersSent && (context.response.destroyed || context.request.socket?.destroyed === true);
}

export function sendJson(context: HttpContext, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  context.record.firstByteAt ??= Date.now();
  context.response.writeHead(status, {
    ...context.baseHeaders,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  context.response.end(text);
}

export function sendText(context: HttpContext, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  context.record.firstByteAt ??= Date.now();
  context.response.writeHead(status, { ...context.baseHeaders, 'content-type': contentType, 'content-length': String(Buffer.byteLength(text)) });
  context.response.end(text);
}

/**
 * The headers every answer of a chat route carries: the base headers, and `x-kimi-model-fallback` when the requested
 * model was unknown. The model name is client input: outside printable ASCII it is escaped (`\u2014`), since a
 * header cannot carry it and node:http throws on it, which once cost a 500 and a leaked account slot.
 */
export function answerHeaders(context: HttpContext, requested: { model: string; isFallback: boolean }): Record<string, string> {
  const headers: Record<string, string> = { ...context.baseHeaders };
  if (requested.isFallback) headers['x-kimi-model-fallback'] = `unknown model "${headerSafe(requested.model.slice(0, 80))}"; answered with the default model`;
  return headers;
}

function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
