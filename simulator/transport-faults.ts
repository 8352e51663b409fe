/**
 * @module simulator/transport-faults
 * Faults that happen before a stream is produced (HTTP status pages, resets, stalls, 401), shared by the
 * Connect Chat and the legacy completion routes. Returns a plan for stream-writer.ts, or undefined.
 */
import type { ScenarioName } from './scenarios.ts';
import type { StreamPlan } from './stream-writer.ts';
import { connectErrorBody, LEGACY_AUTH_MESSAGE, UNAUTHENTICATED_DEBUG } from './http-io.ts';

export type Dialect = 'connect' | 'legacy';

function bodyPlan(status: number, contentType: string, body: string, headers: Record<string, string> = {}): StreamPlan {
  const bytes = Buffer.from(body, 'utf8');
  return {
    status,
    headers: { 'content-type': contentType, 'content-length': String(bytes.length), ...headers },
    steps: [{ type: 'write', bytes }],
    delayMs: 0,
    splitWrites: false,
  };
}

const JSON_TYPE = 'application/json; charset=utf-8';
const HTML_TYPE = 'text/html; charset=utf-8';

export function transportFaultPlan(scenario: ScenarioName, dialect: Dialect): StreamPlan | undefined {
  switch (scenario) {
    case 'unauthenticated':
      return dialect === 'connect'
        ? bodyPlan(401, JSON_TYPE, JSON.stringify(connectErrorBody('unauthenticated', 'invalid auth token', UNAUTHENTICATED_DEBUG)))
        : bodyPlan(401, JSON_TYPE, JSON.stringify({ error_type: 'auth.token.invalid', message: LEGACY_AUTH_MESSAGE, detail: 'simulated' }));
    case 'http-429':
      return bodyPlan(429, 'text/plain; charset=utf-8', 'Too Many Requests', { 'retry-after': '7' });
    case 'http-429-no-hint':
      return bodyPlan(429, 'text/plain; charset=utf-8', 'Too Many Requests');
    case 'http-503':
      return bodyPlan(503, HTML_TYPE, '<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>');
    case 'http-500':
      return dialect === 'connect'
        ? bodyPlan(500, JSON_TYPE, JSON.stringify(connectErrorBody('internal', 'simulated internal error')))
        : bodyPlan(500, JSON_TYPE, JSON.stringify({ error_type: 'system.internal', message: '系统错误 (simulated)', detail: '' }));
    case 'html-200':
      return bodyPlan(200, HTML_TYPE, '<!DOCTYPE html><html><head><title>Kimi</title></head><body><div id="root">simulated SPA page</div></body></html>');
    case 'reset-before-first-byte':
      return { status: 200, headers: {}, steps: [{ type: 'reset' }], delayMs: 0, splitWrites: false };
    case 'stall-before-first-byte':
      return { status: 200, headers: {}, steps: [{ type: 'stall' }], delayMs: 0, splitWrites: false };
    default:
      return undefined;
  }
}
