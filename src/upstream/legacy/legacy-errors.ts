/**
 * @module upstream/legacy/legacy-errors
 * Turns legacy `error_type` bodies, SSE `error` events and HTTP statuses into typed gateway errors
 * (protocol spec §2.8, §9 D13, §10.7; contract.md error codes).
 */
import {
  AuthenticationError,
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  RateLimitError,
  UpstreamError,
  type GatewayError,
} from '../../errors.ts';
import {
  errorForHttpStatus,
  parseJsonSafely,
  readBodyText,
  retryAfterMsFromHeaders,
  type UpstreamResponse,
} from '../upstream-http.ts';

/** Where the failure happened: the refresh call gives HTTP 400 its own meaning (banned account, §2.2). */
export type LegacyCallKind = 'refresh' | 'request' | 'stream';

export interface LegacyErrorContext {
  kind: LegacyCallKind;
  defaultRetryAfterMs: number;
  statusCode?: number;
  headers?: UpstreamResponse['headers'];
  /** Set when a missing resource means the client's conversation id is unknown. */
  isConversationLookup?: boolean;
}

export interface LegacyErrorBody {
  errorType: string | undefined;
  message: string | undefined;
}

/** Overload wording seen in legacy errors: "Kimi 现在有点累了", "算力不够，请稍后再试" (§2.8, §9 D13). */
const overloadPattern = /有点累|算力不够|服务器繁忙|系统繁忙|overload|too busy/i;
/** Frequency and quota wording: counts, "too frequent", caps and limits (§2.8 rate limits, §9 D4). */
const frequencyPattern = /次数|频繁|上限|限流|额度|limit|quota|too many|frequen/i;
const notFoundPattern = /not[._ ]?(found|exist)/i;

/** Maps one legacy failure to the error the client sees. Pure; never includes a token. */
export function legacyErrorFromBody(body: LegacyErrorBody, context: LegacyErrorContext): GatewayError {
  const errorType = body.errorType ?? '';
  const upstreamText = body.message ?? '';
  const detail = describeUpstream(body);
  const reason = { upstreamReason: errorType || undefined };
  const status = context.statusCode;
  const retryAfterMs = (context.headers && retryAfterMsFromHeaders(context.headers)) ?? context.defaultRetryAfterMs;

  if (context.kind === 'refresh' && status === 400) {
    return new AuthenticationError(
      `Kimi refused to refresh this account's session (HTTP 400); the account may be banned or blocked${detail}.`,
      { ...reason, blamesAccount: true },
    );
  }
  if (status === 401 || errorType.startsWith('auth.')) {
    return new AuthenticationError(`Kimi refused this account's token${detail}.`, { ...reason, blamesAccount: true });
  }
  if (errorType === 'chat.user_stream_pushing') {
    return new ConflictError(`Kimi is already generating an answer in this conversation${detail}.`, reason);
  }
  if (errorType === 'chat.forbidden') {
    return new ForbiddenError(`Kimi has disabled this conversation (moderation)${detail}.`, reason);
  }
  if (errorType === 'openai.completion.token_length_too_long') {
    return new InvalidRequestError(
      `The conversation is too long for Kimi (over roughly 200,000 characters); start a new conversation${detail}.`,
      { ...reason, code: 'context_length_exceeded', param: 'messages' },
    );
  }
  if (overloadPattern.test(upstreamText)) {
    return new RateLimitError('upstream_overloaded', `Kimi is overloaded right now${detail}.`, { ...reason, retryAfterMs });
  }
  if (frequencyPattern.test(upstreamText) || status === 429) {
    return new RateLimitError('rate_limited', `Kimi is rate limiting this account${detail}.`, { ...reason, retryAfterMs });
  }
  if (context.isConversationLookup && (status === 404 || notFoundPattern.test(errorType))) {
    return new NotFoundError(`Kimi does not know this conversation${detail}.`, { ...reason, code: 'conversation_not_found' });
  }
  if (status !== undefined && status >= 400 && (!errorType || status >= 500)) {
    return errorForHttpStatus(status, context.headers ?? {}, context.defaultRetryAfterMs, upstreamText || errorType);
  }
  // An SSE error without a known type is a server fault (openai.completion.stream, §2.8): worth another try.
  const isRetryable = context.kind === 'stream' || (status ?? 500) >= 500;
  return new UpstreamError(`Kimi reported an error${detail}.`, { ...reason, isRetryable });
}

/** Reads a non-2xx response (capped) and maps it; the body may be JSON with `error_type` or anything else. */
export async function legacyErrorFromResponse(
  response: UpstreamResponse,
  context: Omit<LegacyErrorContext, 'statusCode' | 'headers'>,
): Promise<GatewayError> {
  const text = await readBodyText(response.body);
  const body = errorBodyFromJson(parseJsonSafely(text)) ?? { errorType: undefined, message: text.trim() || undefined };
  return legacyErrorFromBody(body, { ...context, statusCode: response.statusCode, headers: response.headers });
}

/** Extracts `{error_type, message}` from a REST error body or an SSE `error` payload (`error:{...}`). */
export function errorBodyFromJson(value: unknown): LegacyErrorBody | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const record = value as Record<string, unknown>;
  const nested = record.error !== null && typeof record.error === 'object' ? (record.error as Record<string, unknown>) : {};
  const errorType = stringOf(nested.error_type) ?? stringOf(record.error_type);
  const message = stringOf(nested.message) ?? stringOf(record.message) ?? stringOf(record.error);
  if (errorType === undefined && message === undefined) return undefined;
  return { errorType, message };
}

/** `: chat.forbidden "此会话已被禁用"`, whitespace collapsed and capped, or an empty string. */
function describeUpstream(body: LegacyErrorBody): string {
  const message = (body.message ?? '').replace(/\s+/g, ' ').trim().slice(0, 200);
  const parts = [body.errorType, message ? `"${message}"` : undefined].filter(Boolean);
  return parts.length > 0 ? ` (upstream: ${parts.join(' ')})` : '';
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
