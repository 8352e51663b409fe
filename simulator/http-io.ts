/**
 * @module simulator/http-io
 * Small HTTP helpers shared by the route files: the per-request context, bounded body reading (recorded for
 * tests), Connect and legacy error bodies, and abortable waits so that no timer outlives a closed simulator.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ScenarioBook } from './scenarios.ts';
import type { AccountRecord, SimulatorState } from './state.ts';
import type { RecordedRequest } from './simulator-types.ts';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  state: SimulatorState;
  scenarios: ScenarioBook;
  record: RecordedRequest;
  /** Aborted when the client goes away or the simulator closes. */
  signal: AbortSignal;
  /** The simulator's origin, for URLs it hands out (pre-signed uploads, file links). */
  baseUrl: string;
}

export type RouteHandler = (context: RouteContext) => Promise<void> | void;

const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

/** Reads the whole body (bounded) and records it; JSON-like bodies are kept as text and parsed JSON. */
export async function readBody(context: RouteContext, limitBytes = DEFAULT_BODY_LIMIT): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of context.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) {
      sendConnectError(context.res, 'resource_exhausted', 'request body too large');
      context.req.resume();
      return undefined;
    }
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  context.record.bodyBytes = body.length;
  const type = context.req.headers['content-type'] ?? '';
  if (/json|text/.test(type) && !/connect\+json/.test(type)) recordText(context.record, body.toString('utf8'));
  return body;
}

export function recordText(record: RecordedRequest, text: string): void {
  record.bodyText = text;
  try {
    record.bodyJson = JSON.parse(text);
  } catch {
    record.bodyJson = undefined;
  }
}

/** Reads a JSON object body; answers 400 invalid_argument (Connect shape) and returns undefined on bad JSON. */
export async function readJsonObject(context: RouteContext): Promise<Record<string, unknown> | undefined> {
  const body = await readBody(context);
  if (!body) return undefined;
  if (body.length === 0) return {};
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    if (isObject(value)) return value;
  } catch {
    // fall through to the error below
  }
  sendConnectError(context.res, 'invalid_argument', 'request body is not a JSON object');
  return undefined;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** First present value among snake_case / camelCase spellings (protobuf JSON accepts both, spec §3.2). */
export function field(source: unknown, ...names: string[]): unknown {
  if (!isObject(source)) return undefined;
  for (const name of names) if (source[name] !== undefined) return source[name];
  return undefined;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Connect code → HTTP status (Connect spec, protocol spec §3.12). */
export const CONNECT_HTTP_STATUS: Record<string, number> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

export const ERROR_DETAIL_TYPE = 'kimi.gateway.common.v1.ErrorDetail';

/** A Connect error JSON body `{code,message,details:[{type,debug}]}` (spec §3.12). */
export function connectErrorBody(code: string, message: string | undefined, debug?: Record<string, unknown>): Record<string, unknown> {
  return {
    code,
    ...(message === undefined ? {} : { message }),
    ...(debug ? { details: [{ type: ERROR_DETAIL_TYPE, debug }] } : {}),
  };
}

export function sendConnectError(res: ServerResponse, code: string, message: string, debug?: Record<string, unknown>, status?: number): void {
  sendJson(res, status ?? CONNECT_HTTP_STATUS[code] ?? 500, connectErrorBody(code, message, debug));
}

export const UNAUTHENTICATED_DEBUG = { reason: 'REASON_INVALID_AUTH_TOKEN' };

/** HTTP 401 in the Connect shape of spec §3.14 (e). */
export function sendUnauthenticated(res: ServerResponse, message = 'invalid auth token'): void {
  sendConnectError(res, 'unauthenticated', message, UNAUTHENTICATED_DEBUG);
}

/** A legacy REST error body `{error_type,message,detail}` (spec §2.2, §2.8). */
export function sendLegacyError(res: ServerResponse, status: number, errorType: string, message: string, detail = ''): void {
  sendJson(res, status, { error_type: errorType, message, detail });
}

export const LEGACY_AUTH_MESSAGE = '您的授权已过期，请重新登录';

/** Authenticates the Bearer access token; on failure answers 401 in the requested shape and returns undefined. */
export function requireAccount(context: RouteContext, shape: 'connect' | 'legacy', token: string | undefined): AccountRecord | undefined {
  const outcome = context.state.authenticate(token);
  if (outcome.ok) {
    context.record.userId = outcome.account.userId;
    return outcome.account;
  }
  const message = outcome.problem === 'expired' ? 'token is expired' : 'invalid auth token';
  if (shape === 'connect') sendUnauthenticated(context.res, message);
  else sendLegacyError(context.res, 401, 'auth.token.invalid', LEGACY_AUTH_MESSAGE, message);
  return undefined;
}

/** Waits `ms`; resolves false early (and clears the timer) when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return new Promise((resolve) => setImmediate(() => resolve(!signal.aborted)));
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves when `signal` aborts (used by stall scenarios). */
export function waitForAbort(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
