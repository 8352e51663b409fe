/**
 * @module http/anthropic/anthropic-errors
 * Any thrown value in Anthropic's error envelope `{"type":"error","error":{"type","message"}}`: the status
 * and headers come from the one renderer (error-envelope.ts); only the body's shape and type names differ.
 * Our stable `code` rides along inside `error` so that tooling can tell the cases apart.
 */
import { renderError, type RenderedError } from '../error-envelope.ts';

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error'
  | 'timeout_error';

export interface AnthropicErrorBody {
  type: 'error';
  /** `details.error_code` repeats `code` where Anthropic's SDKs look for a machine-readable code (thread_not_found). */
  error: { type: AnthropicErrorType; message: string; code: string; details: { error_code: string } };
}

export interface RenderedAnthropicError {
  status: number;
  headers: Record<string, string>;
  body: AnthropicErrorBody;
  isExpected: boolean;
}

export function renderAnthropicError(error: unknown): RenderedAnthropicError {
  return toAnthropic(renderError(error));
}

export function toAnthropic(rendered: RenderedError): RenderedAnthropicError {
  const { message, code } = rendered.body.error;
  return {
    status: rendered.status,
    headers: rendered.headers,
    body: { type: 'error', error: { type: anthropicType(rendered.status), message, code, details: { error_code: code } } },
    isExpected: rendered.isExpected,
  };
}

/** Anthropic names errors by status; statuses it does not use map to the nearest meaning. */
export function anthropicType(status: number): AnthropicErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  if (status === 504) return 'timeout_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'api_error';
}

/**
 * Whether a request target belongs to the Anthropic Messages API: `/v1/messages` and everything under it, so that
 * a wrong method, an unknown sub-route (`/v1/messages/batches`) or a refusal by Node is answered in the shape the
 * Anthropic SDK parses. Takes a routed path or a raw target (query, repeated slashes and dot segments are read as
 * app.ts routes them).
 */
export function isAnthropicPath(target: string): boolean {
  let path: string;
  try {
    path = new URL(`http://gateway.local${target.startsWith('/') ? target : `/${target}`}`).pathname.replace(/\/{2,}/g, '/');
  } catch {
    return false;
  }
  return path === '/v1/messages' || path.startsWith('/v1/messages/');
}

/** The one choice of envelope for errors raised outside a route's own handler (app dispatch, Node's refusals). */
export function renderErrorFor(target: string, error: unknown): RenderedError | RenderedAnthropicError {
  return isAnthropicPath(target) ? renderAnthropicError(error) : renderError(error);
}
