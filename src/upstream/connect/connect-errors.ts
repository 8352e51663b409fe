/**
 * @module upstream/connect/connect-errors
 * Connect error JSON (unary non-2xx bodies and end-stream `{"error":…}`) to typed gateway errors
 * (protocol spec §3.12, §3.13, §4, §10.6, §10.7).
 */
import { z } from 'zod';
import {
  AuthenticationError,
  ForbiddenError,
  NotFoundError,
  RateLimitError,
  UpstreamError,
  UpstreamTimeoutError,
  type GatewayError,
} from '../../errors.ts';
import {
  errorForHttpStatus,
  parseJsonSafely,
  readBodyText,
  retryAfterMsFromHeaders,
  upstreamRetryHintMs,
  type UpstreamResponse,
} from '../upstream-http.ts';
import { lenientString } from './connect-frame-schema.ts';
import { isPlainObject } from '../../plain-object.ts';

export interface ConnectErrorInfo {
  /** Connect code (`resource_exhausted`, …); `unknown` when the body names none. */
  code: string;
  message?: string;
  reason?: string;
  localizedMessage?: string;
  hasPaywall: boolean;
  needsUpgrade: boolean;
  /** A retry hint stated inside the error (`retryDelay`, `resetTime`). */
  retryAfterMs?: number;
}

export interface ConnectErrorContext {
  /** What the gateway was doing, in words for the message: "chat", "file upload", "token refresh". */
  operation: string;
  defaultRetryAfterMs: number;
  /** Cooldown for "session in progress" (the account is busy with another answer). */
  busyRetryAfterMs?: number;
  /** Retry-After of the HTTP response, when there was one. */
  retryAfterMs?: number;
  /** Set when a `not_found` means this chat is gone. */
  conversationId?: string;
  /** The RPC's path, named when a bare HTTP status (a CDN or proxy page) comes back instead of a Connect error. */
  path?: string;
}

export const defaultBusyRetryAfterMs = 3_000;

const text = lenientString;
const debugSchema = z.looseObject({
  reason: text,
  localizedMessage: z.looseObject({ message: text }).optional().catch(undefined),
  paywall: z.unknown().optional(),
});
const looseDebug = debugSchema.optional().catch(undefined);
const errorSchema = z.looseObject({
  code: text,
  message: text,
  debug: looseDebug,
  details: z.array(z.looseObject({ debug: looseDebug }).catch({})).optional().catch(undefined),
});

/** Reads `{code,message,details[].debug}` or `{error:{…}}`; undefined when the value is no Connect error. */
export function parseConnectError(value: unknown, now: number = Date.now()): ConnectErrorInfo | undefined {
  const inner = isPlainObject(value) && isPlainObject(value.error) ? value.error : value;
  const parsed = errorSchema.safeParse(inner);
  if (!parsed.success) return undefined;
  const error = parsed.data;
  const debugs = [error.debug, ...(error.details ?? []).map((detail) => detail.debug)].filter((debug) => debug !== undefined);
  if (!error.code && debugs.length === 0) return undefined;
  return {
    code: error.code ?? 'unknown',
    message: error.message || undefined,
    reason: debugs.find((debug) => debug.reason)?.reason,
    localizedMessage: debugs.find((debug) => debug.localizedMessage?.message)?.localizedMessage?.message,
    hasPaywall: debugs.some((debug) => debug.paywall !== undefined && debug.paywall !== null),
    needsUpgrade: findValue(inner, 'needUpgrade') === true,
    retryAfterMs: retryHintMs(inner, now),
  };
}

/** The gateway error for a Connect error (the mapping table lives in this function). */
/** Cooldown for a used-up quota when Kimi states no reset time. */
export const defaultQuotaRetryAfterMs = 3_600_000;

export function gatewayErrorFromConnect(info: ConnectErrorInfo, context: ConnectErrorContext): GatewayError {
  const detail = describe(info);
  const upstreamReason = info.reason ?? info.code;
  const said = `${info.localizedMessage ?? ''} ${info.message ?? ''}`;
  const retryAfterMs = context.retryAfterMs ?? info.retryAfterMs ?? context.defaultRetryAfterMs;
  const common = { upstreamReason, retryAfterMs };

  if (info.code === 'unauthenticated' || info.reason === 'REASON_INVALID_AUTH_TOKEN') {
    return new AuthenticationError(`Kimi refused this account's token during ${context.operation}${detail}`, {
      code: 'invalid_token',
      blamesAccount: true,
      isRetryable: true,
      upstreamReason,
    });
  }
  if (info.hasPaywall) {
    return new ForbiddenError(`Kimi says ${context.operation} needs a paid subscription on this account${detail}`, { upstreamReason });
  }
  if (info.needsUpgrade || /quota (is )?used up|quota exhausted|monthly quota/i.test(said)) {
    // Without a stated reset, assume the hour a quota window takes rather than the short overload backoff.
    return new RateLimitError('insufficient_quota', `This Kimi account has used up its quota${detail}`, {
      upstreamReason,
      retryAfterMs: context.retryAfterMs ?? info.retryAfterMs ?? defaultQuotaRetryAfterMs,
    });
  }
  if (/session in progress/i.test(said)) {
    return new RateLimitError('rate_limited', `This Kimi account is already generating another answer${detail}`, {
      upstreamReason,
      retryAfterMs: context.retryAfterMs ?? info.retryAfterMs ?? context.busyRetryAfterMs ?? defaultBusyRetryAfterMs,
    });
  }
  if (info.reason?.includes('OVERLOADED')) {
    return new RateLimitError('upstream_overloaded', `Kimi is overloaded and refused this account for now${detail}`, common);
  }
  switch (info.code) {
    case 'resource_exhausted':
      return new RateLimitError('rate_limited', `Kimi is rate limiting this account${detail}`, common);
    case 'permission_denied':
      return new ForbiddenError(`Kimi denied this account permission for ${context.operation}${detail}`, { upstreamReason });
    case 'not_found':
      if (context.conversationId !== undefined) {
        return new NotFoundError(`Kimi has no conversation ${context.conversationId} on this account (deleted or never existed)${detail}`, {
          code: 'conversation_not_found',
          param: 'conversation_id',
          upstreamReason,
        });
      }
      return new UpstreamError(`Kimi could not find what ${context.operation} refers to${detail}`, { upstreamReason });
    case 'invalid_argument':
      return new UpstreamError(`Kimi rejected the ${context.operation} request as invalid${detail}`, { upstreamReason });
    case 'unavailable':
      return new RateLimitError('upstream_overloaded', `Kimi is temporarily unavailable${detail}`, { ...common, blamesAccount: false });
    case 'deadline_exceeded':
      return new UpstreamTimeoutError(`Kimi timed out during ${context.operation}${detail}`, { upstreamReason });
    case 'internal':
    case 'unknown':
    case 'aborted':
    case 'canceled':
    case 'data_loss':
      return new UpstreamError(`Kimi failed during ${context.operation}${detail}`, { upstreamReason, isRetryable: true });
    default:
      return new UpstreamError(`Kimi refused ${context.operation}${detail}`, { upstreamReason });
  }
}

/** The `block.exception` part of a frame (§3.12), as far as it is read. */
export interface BlockException {
  error?: { reason?: string; message?: string; localizedMessage?: { message?: string } };
}

/** `block.exception`: the generation was aborted inside the message; overload is retryable in a new turn. */
export function errorFromBlockException(exception: BlockException, defaultRetryAfterMs: number): GatewayError {
  const reason = exception.error?.reason ?? 'REASON_UNSPECIFIED';
  const said = exception.error?.localizedMessage?.message ?? exception.error?.message;
  const detail = redact(said ? `: ${said} (${reason}).` : ` (${reason}).`);
  if (reason.includes('OVERLOADED')) {
    return new RateLimitError('upstream_overloaded', `Kimi stopped the answer because it is overloaded${detail}`, { upstreamReason: reason, retryAfterMs: defaultRetryAfterMs });
  }
  return new UpstreamError(`Kimi stopped the answer with an error${detail}`, { upstreamReason: reason });
}

/** Maps a non-2xx response: a Connect JSON body when there is one, else the HTTP status alone. */
export async function errorFromResponse(response: UpstreamResponse, context: ConnectErrorContext): Promise<GatewayError> {
  const body = await readBodyText(response.body);
  const json = parseJsonSafely(body);
  const retryAfterMs = retryAfterMsFromHeaders(response.headers);
  const withHint = { ...context, retryAfterMs: retryAfterMs ?? context.retryAfterMs };
  const info = parseConnectError(json) ?? restErrorInfo(json, response.statusCode);
  if (info) return gatewayErrorFromConnect(info, withHint);
  if (response.statusCode === 401) {
    return new AuthenticationError(`Kimi refused this account's token during ${context.operation} (HTTP 401).`, {
      code: 'invalid_token',
      blamesAccount: true,
      isRetryable: true,
    });
  }
  return errorForHttpStatus(response.statusCode, response.headers, context.defaultRetryAfterMs, redact(body), { operation: context.operation, path: context.path });
}

/** The Connect code a status stands for (Connect spec table, §3.12). */
export function connectCodeForHttpStatus(status: number): string {
  const codes: Record<number, string> = {
    400: 'invalid_argument',
    401: 'unauthenticated',
    403: 'permission_denied',
    404: 'not_found',
    409: 'already_exists',
    410: 'not_found',
    429: 'resource_exhausted',
    499: 'canceled',
    501: 'unimplemented',
    503: 'unavailable',
    504: 'deadline_exceeded',
  };
  return codes[status] ?? 'unknown';
}

/** A JSON body without a Connect code (REST helpers such as `/api/user`): its code comes from the status. */
function restErrorInfo(json: unknown, status: number): ConnectErrorInfo | undefined {
  if (!isPlainObject(json)) return undefined;
  const message = [json.message, json.msg, json.error_type, json.error].find((value) => typeof value === 'string');
  return { code: connectCodeForHttpStatus(status), message: message as string | undefined, hasPaywall: false, needsUpgrade: false };
}

function describe(info: ConnectErrorInfo): string {
  const said = info.localizedMessage ?? info.message;
  const tags = [info.code, info.reason].filter((tag) => tag && tag !== 'unknown').join(', ');
  const suffix = tags ? ` (${tags})` : '';
  return redact(said ? `: ${said.trim()}${suffix}.` : `${suffix}.`);
}

/** Upstream text never echoes a token in practice; if one ever does, it must not reach logs or clients. */
export function redact(value: string): string {
  return value.replace(/eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g, '[redacted]');
}

function retryHintMs(value: unknown, now: number): number | undefined {
  const delay = findValue(value, 'retryDelay') ?? findValue(value, 'retryAfter');
  if (typeof delay === 'string' && /^\d+(\.\d+)?s$/.test(delay)) return upstreamRetryHintMs(Number.parseFloat(delay) * 1000);
  if (typeof delay === 'number') return upstreamRetryHintMs(delay * 1000);
  const reset = findValue(value, 'resetTime');
  if (typeof reset !== 'string' && typeof reset !== 'number') return undefined;
  const at = /^\d+$/.test(String(reset)) ? Number(reset) * 1000 : Date.parse(String(reset));
  return upstreamRetryHintMs(at - now);
}

/** First value under `key` anywhere in a small JSON tree (bounded depth: error bodies are tiny). */
function findValue(value: unknown, key: string, depth = 0): unknown {
  if (depth > 5 || value === null || typeof value !== 'object') return undefined;
  if (!Array.isArray(value) && key in value) return (value as Record<string, unknown>)[key];
  for (const child of Object.values(value)) {
    const found = findValue(child, key, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}
