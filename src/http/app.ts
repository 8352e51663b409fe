/**
 * @module http/app
 * The OpenAI-compatible HTTP edge on node:http (dependencies.md: framework cost without benefit for
 * streams). Routing, request ids, CORS, one error handler, one log line per request, and the
 * registry of open requests that graceful shutdown drains.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NotFoundError, GatewayError, ServiceUnavailableError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { renderErrorFor } from './anthropic/anthropic-errors.ts';
import { isClientGone, sendJson, type HttpContext, type RouteHandler } from './http-context.ts';
import { refuseOversizedHeaders } from './server-options.ts';

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** An exact path, or `/prefix/*` for every path one segment below `/prefix` (the handler reads `context.path`). */
  path: string;
  handler: RouteHandler;
}

export interface AppOptions {
  routes: Route[];
  log: Logger;
  corsOrigins: readonly string[];
  /** TRUST_PROXY: take the client address from X-Forwarded-For (only behind a proxy you control). */
  trustProxy?: boolean;
  /** Called once per finished request (metrics). */
  onRequestDone?: (record: FinishedRequest) => void;
}

export interface FinishedRequest {
  /** The route pattern that answered, or `unmatched`. */
  route: string;
  method: string;
  status: number;
  model?: string;
  account?: string;
  errorCode?: string;
  timeToFirstByteMs?: number;
  durationMs: number;
}

export interface App {
  handle(request: IncomingMessage, response: ServerResponse): void;
  /** Number of requests in flight. */
  readonly openRequests: number;
  /** Stops taking new requests and resolves when open ones end or `graceMs` passes (then aborts them). */
  drain(graceMs: number): Promise<void>;
  /** Ends a drain's grace period now: open requests are aborted as if it had run out (an operator's second signal). */
  cutDrainShort(): void;
}

export function createApp(options: AppOptions): App {
  const open = new Map<ServerResponse, AbortController>();
  let isDraining = false;
  let isGraceCut = false;
  const routeTable = new Map(options.routes.map((route) => [`${route.method} ${route.path}`, route]));
  const knownPaths = new Set(options.routes.map((route) => route.path));

  function corsHeaders(request: IncomingMessage): Record<string, string> {
    const origin = request.headers.origin;
    if (!origin || options.corsOrigins.length === 0) return {};
    const isAllowed = options.corsOrigins.includes('*') || options.corsOrigins.includes(origin);
    if (!isAllowed) return {};
    return {
      'access-control-allow-origin': options.corsOrigins.includes('*') ? '*' : origin,
      // Browser SDKs add their own headers (openai-node: x-stainless-*; Anthropic's: anthropic-dangerous-direct-browser-access):
      // an allowed origin may send whatever its preflight asks for.
      'access-control-allow-headers': allowedRequestHeaders(request),
      'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
      'access-control-expose-headers': 'x-request-id, retry-after, x-kimi-model-fallback',
      // The allowed headers echo the preflight's question, so a cache must key on it too.
      vary: 'origin, access-control-request-headers',
    };
  }

  function allowedRequestHeaders(request: IncomingMessage): string {
    const asked = request.headers['access-control-request-headers'];
    const fixed = 'authorization, content-type, x-api-key, anthropic-version, openai-beta';
    return typeof asked === 'string' && asked.trim() ? `${fixed}, ${asked.slice(0, 2000)}` : fixed;
  }

  function handle(request: IncomingMessage, response: ServerResponse): void {
    const startedAt = Date.now();
    const requestId = String(request.headers['x-request-id'] ?? '').slice(0, 100) || randomUUID();
    const url = targetUrl(request.url);
    const abort = new AbortController();
    const context: HttpContext = {
      request,
      response,
      url,
      path: routedPath(url),
      requestId,
      signal: abort.signal,
      record: {},
      baseHeaders: { 'x-request-id': requestId, ...corsHeaders(request) },
    };
    response.on('close', () => {
      if (!response.writableFinished) abort.abort(new DOMException('The client closed the connection.', 'AbortError'));
      open.delete(response);
      finish(context, startedAt);
    });
    open.set(response, abort);
    void dispatch(context).catch((error: unknown) => answerError(context, error));
  }

  async function dispatch(context: HttpContext): Promise<void> {
    const { request, path } = context;
    refuseOversizedHeaders(request);
    if (request.method === 'OPTIONS') {
      context.response.writeHead(204, context.baseHeaders).end();
      return;
    }
    if (isDraining) throw new ServiceUnavailableError('The gateway is shutting down; retry on another instance.', { retryAfterMs: 1000 });
    // HEAD is GET without the body (node:http leaves the body out): what uptime checks send.
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const route = routeTable.get(`${method} ${path}`) ?? routeTable.get(`${method} ${path.slice(0, path.lastIndexOf('/'))}/*`);
    if (route) {
      context.record.route = route.path;
      return route.handler(context);
    }
    if (knownPaths.has(path)) {
      const allowed = options.routes.filter((candidate) => candidate.path === path).map((candidate) => candidate.method);
      throw new GatewayError({ status: 405, type: 'invalid_request_error', code: 'method_not_allowed', message: `${request.method} is not allowed on ${path}; use ${allowed.join(' or ')}.` });
    }
    throw new NotFoundError(routeHint(path));
  }

  function answerError(context: HttpContext, error: unknown): void {
    const { response } = context;
    // A client that left mid-request (say, while sending its body) is not a gateway fault: nothing to log or answer.
    if (isClientGone(context)) {
      context.record.outcome = 'client-closed';
      return;
    }
    // Under /v1/messages in Anthropic's envelope (wrong method, unknown sub-route), elsewhere OpenAI's.
    const rendered = renderErrorFor(context.path, error);
    context.record.errorCode = rendered.body.error.code;
    if (!rendered.isExpected) options.log.error({ err: error, requestId: context.requestId }, 'unexpected error');
    if (response.headersSent) {
      if (!response.writableEnded) response.end();
      return;
    }
    if (context.request.complete === false) context.request.resume();
    sendJson(context, rendered.status, rendered.body, rendered.headers);
  }

  function finish(context: HttpContext, startedAt: number): void {
    const { record, response, request } = context;
    const durationMs = Date.now() - startedAt;
    const finished: FinishedRequest = {
      // Unmatched paths (scanners, typos) share one value: a label per path would grow the metrics without bound.
      route: record.route ?? 'unmatched',
      method: request.method ?? 'GET',
      // 499 (as nginx logs it): the client left before any answer, so the default 200 would be a lie.
      status: response.headersSent ? response.statusCode : 499,
      model: record.model,
      account: record.account,
      errorCode: record.errorCode,
      timeToFirstByteMs: record.firstByteAt ? record.firstByteAt - startedAt : undefined,
      durationMs,
    };
    const outcome = record.outcome ?? (response.writableFinished ? 'completed' : 'client-closed');
    options.log.info({ requestId: context.requestId, ...finished, path: context.path.slice(0, 200), outcome, client: clientAddress(request, options.trustProxy === true) }, 'request');
    options.onRequestDone?.(finished);
  }

  async function drain(graceMs: number): Promise<void> {
    isDraining = true;
    const deadline = Date.now() + graceMs;
    while (open.size > 0 && Date.now() < deadline && !isGraceCut) await new Promise((resolve) => setTimeout(resolve, 50));
    const reason = new ServiceUnavailableError('The gateway is shutting down; the answer was cut short.', { code: 'shutting_down' });
    for (const controller of open.values()) controller.abort(reason);
    const hardDeadline = Date.now() + 2000;
    while (open.size > 0 && Date.now() < hardDeadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const response of open.keys()) response.destroy();
  }

  return {
    handle,
    get openRequests() {
      return open.size;
    },
    drain,
    cutDrainShort() {
      isGraceCut = true;
    },
  };
}

/**
 * The request target as a URL on the gateway. The target is appended to a fixed origin rather than resolved
 * against it: resolving `//[` treats it as a host and throws, and `//v1/models` would name host `v1`.
 */
function targetUrl(target: string | undefined): URL {
  const text = target ?? '/';
  return new URL(`http://gateway.local${text.startsWith('/') ? text : `/${text}`}`);
}

/** `//v1//chat/completions/` routes as `/v1/chat/completions`, as reverse proxies and clients with a trailing-slash base URL produce. */
function routedPath(url: URL): string {
  return url.pathname.replace(/\/{2,}/g, '/').replace(/\/+$/, '') || '/';
}

function clientAddress(request: IncomingMessage, trustProxy: boolean): string | undefined {
  const forwarded = request.headers['x-forwarded-for'];
  if (trustProxy && typeof forwarded === 'string' && forwarded.trim()) return forwarded.split(',')[0].trim().slice(0, 64);
  return request.socket?.remoteAddress;
}

function routeHint(path: string): string {
  if (/chat\/completions?$/.test(path) && path !== '/v1/chat/completions') {
    return `No route ${path}. Use POST /v1/chat/completions (set your client's base URL to http://HOST:PORT/v1).`;
  }
  if (/models$/.test(path) && path !== '/v1/models') return `No route ${path}. Use GET /v1/models.`;
  if (/responses$/.test(path)) return `No route ${path}. Use POST /v1/responses.`;
  if (/messages$/.test(path)) return `No route ${path}. Use POST /v1/messages (Anthropic Messages API).`;
  return `No route ${path}. The API lives under /v1: POST /v1/chat/completions, POST /v1/responses, POST /v1/messages, GET /v1/models.`;
}
