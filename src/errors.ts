/**
 * @module errors
 * Typed gateway errors: every failure the gateway can report is one of these, and one renderer
 * (http/error-envelope.ts) turns it into the OpenAI envelope. Status, type, code and retry hints
 * live on the error so that no caller has to re-derive them.
 */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'api_error'
  | 'timeout_error'
  | 'server_error';

export interface GatewayErrorOptions {
  message: string;
  status: number;
  type: ErrorType;
  code: string;
  param?: string | null;
  /** True when the same request may succeed on another account or a later attempt. */
  isRetryable?: boolean;
  /** Milliseconds the caller should wait (upstream hint or configured cooldown). */
  retryAfterMs?: number;
  /** Upstream reason string (e.g. REASON_SERVER_OVERLOADED_FOR_FREE_USER), for logs and metrics. */
  upstreamReason?: string;
  /** True when the account that made the request should cool down or be disabled. */
  blamesAccount?: boolean;
  cause?: unknown;
}

export interface ErrorEnvelope {
  error: { message: string; type: ErrorType; code: string; param: string | null };
}

export class GatewayError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string;
  readonly param: string | null;
  readonly isRetryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly upstreamReason: string | undefined;
  readonly blamesAccount: boolean;

  constructor(options: GatewayErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = options.status;
    this.type = options.type;
    this.code = options.code;
    this.param = options.param ?? null;
    this.isRetryable = options.isRetryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.upstreamReason = options.upstreamReason;
    this.blamesAccount = options.blamesAccount ?? false;
  }

  toEnvelope(): ErrorEnvelope {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

type Extra = Partial<Omit<GatewayErrorOptions, 'message' | 'status' | 'type'>>;

export class InvalidRequestError extends GatewayError {
  constructor(message: string, extra: Extra = {}) {
    super({ code: 'invalid_request', ...extra, message, status: 400, type: 'invalid_request_error' });
  }
}

export type AttachmentErrorCode =
  | 'attachment_invalid'
  | 'attachment_url_forbidden'
  | 'attachment_too_large'
  | 'attachment_unreachable'
  | 'attachment_type_unsupported'
  | 'attachment_parse_failed';

export class AttachmentError extends GatewayError {
  constructor(code: AttachmentErrorCode, message: string, extra: Omit<Extra, 'code'> = {}) {
    super({ param: 'messages', ...extra, code, message, status: 400, type: 'invalid_request_error' });
  }
}

export class AuthenticationError extends GatewayError {
  /** code: `invalid_api_key` (gateway key) or `invalid_token` (Kimi token refused). */
  constructor(message: string, extra: Extra = {}) {
    super({ code: 'invalid_token', ...extra, message, status: 401, type: 'authentication_error' });
  }
}

export class ForbiddenError extends GatewayError {
  constructor(message: string, extra: Extra = {}) {
    super({ code: 'upstream_forbidden', ...extra, message, status: 403, type: 'permission_error' });
  }
}

export class NotFoundError extends GatewayError {
  constructor(message: string, extra: Extra = {}) {
    super({ code: 'not_found', ...extra, message, status: 404, type: 'not_found_error' });
  }
}

export class ConflictError extends GatewayError {
  constructor(message: string, extra: Extra = {}) {
    super({ code: 'conversation_busy', isRetryable: false, ...extra, message, status: 409, type: 'conflict_error' });
  }
}

export type RateLimitCode = 'rate_limited' | 'upstream_overloaded' | 'insufficient_quota';

export class RateLimitError extends GatewayError {
  constructor(code: RateLimitCode, message: string, extra: Omit<Extra, 'code'> = {}) {
    super({
      isRetryable: true,
      blamesAccount: true,
      ...extra,
      code,
      message,
      status: 429,
      type: code === 'insufficient_quota' ? 'insufficient_quota' : 'rate_limit_error',
    });
  }
}

export class UpstreamError extends GatewayError {
  constructor(message: string, extra: Extra = {}) {
    super({ code: 'upstream_error', ...extra, message, status: 502, type: 'api_error' });
  }
}

export class UpstreamTimeoutError extends GatewayError {
  constructor(message: string, extra: Extra = {}) {
    super({ code: 'upstream_timeout', isRetryable: true, ...extra, message, status: 504, type: 'timeout_error' });
  }
}

export class ServiceUnavailableError extends GatewayError {
  constructor(message: string, extra: Extra = {}) {
    super({ code: 'service_unavailable', ...extra, message, status: 503, type: 'server_error' });
  }
}

export function isGatewayError(value: unknown): value is GatewayError {
  return value instanceof GatewayError;
}

/** True for the errors a caller's abort produces (client gone), which are not failures to report. */
export function isAbortError(value: unknown): boolean {
  if (!(value instanceof Error)) return false;
  return value.name === 'AbortError' || (value as { code?: unknown }).code === 'UND_ERR_ABORTED';
}
