/**
 * @module http/error-envelope
 * The one place any thrown value becomes an HTTP status, headers and the OpenAI error envelope.
 * Unknown errors become a generic 500: never a stack trace, never upstream internals.
 */
import { GatewayError, type ErrorEnvelope } from '../errors.ts';

export interface RenderedError {
  status: number;
  headers: Record<string, string>;
  body: ErrorEnvelope;
  /** False for errors we did not anticipate (logged once by the caller). */
  isExpected: boolean;
}

export function renderError(error: unknown): RenderedError {
  if (error instanceof GatewayError) {
    const headers: Record<string, string> = {};
    if (error.status === 429 || error.status === 503) {
      // contract.md: every 429 carries Retry-After (seconds, rounded up, at least 1).
      headers['retry-after'] = String(Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000)));
    }
    return { status: error.status, headers, body: error.toEnvelope(), isExpected: true };
  }
  return {
    status: 500,
    headers: {},
    body: { error: { message: 'The gateway failed unexpectedly; the error was logged.', type: 'server_error', code: 'internal_error', param: null } },
    isExpected: false,
  };
}
