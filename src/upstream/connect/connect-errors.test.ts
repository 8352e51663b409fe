import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AuthenticationError,
  ForbiddenError,
  NotFoundError,
  RateLimitError,
  UpstreamError,
  UpstreamTimeoutError,
  type GatewayError,
} from '../../errors.ts';
import type { UpstreamHttp } from '../upstream-http.ts';
import { sendJson, startLoopbackServer, testUpstreamHttp, type LoopbackServer } from './__fixtures__/loopback-server.ts';
import { errorFromResponse, gatewayErrorFromConnect, parseConnectError, type ConnectErrorContext } from './connect-errors.ts';

const context: ConnectErrorContext = { operation: 'chat', defaultRetryAfterMs: 60_000, busyRetryAfterMs: 3_000 };
const overloadText = 'Too many people are chatting with Kimi right now. Subscribe to enter a priority queue!';

interface Row {
  name: string;
  body: unknown;
  context?: Partial<ConnectErrorContext>;
  type: new (...args: never[]) => GatewayError;
  code: string;
  status: number;
  isRetryable: boolean;
  retryAfterMs?: number;
  blamesAccount?: boolean;
  message: RegExp;
}

const rows: Row[] = [
  {
    name: 'unauthenticated + REASON_INVALID_AUTH_TOKEN (§3.14 e)',
    body: { code: 'unauthenticated', message: 'token expired', details: [{ type: 't', debug: { reason: 'REASON_INVALID_AUTH_TOKEN' } }] },
    type: AuthenticationError, code: 'invalid_token', status: 401, isRetryable: true, blamesAccount: true,
    message: /refused this account's token during chat: token expired \(unauthenticated, REASON_INVALID_AUTH_TOKEN\)/,
  },
  {
    name: 'in-stream unauthenticated without message',
    body: { error: { code: 'unauthenticated' } },
    type: AuthenticationError, code: 'invalid_token', status: 401, isRetryable: true, blamesAccount: true,
    message: /token during chat \(unauthenticated\)\./,
  },
  {
    name: 'free-user overload, details[].debug layout (§3.14 d)',
    body: { error: { code: 'resource_exhausted', details: [{ type: 'x', debug: { reason: 'REASON_SERVER_OVERLOADED_FOR_FREE_USER', localizedMessage: { locale: 'en-US', message: overloadText } } }] } },
    type: RateLimitError, code: 'upstream_overloaded', status: 429, isRetryable: true, retryAfterMs: 60_000, blamesAccount: true,
    message: /overloaded.*Too many people are chatting.*REASON_SERVER_OVERLOADED_FOR_FREE_USER/,
  },
  {
    name: 'free-user overload, error.debug layout (§6 item 11)',
    body: { error: { code: 'resource_exhausted', debug: { reason: 'REASON_SERVER_OVERLOADED_FOR_FREE_USER' } } },
    type: RateLimitError, code: 'upstream_overloaded', status: 429, isRetryable: true, retryAfterMs: 60_000,
    message: /\(resource_exhausted, REASON_SERVER_OVERLOADED_FOR_FREE_USER\)/,
  },
  {
    name: 'session in progress: account busy, short retry (§3.12)',
    body: { error: { code: 'resource_exhausted', message: 'chat session in progress' } },
    type: RateLimitError, code: 'rate_limited', status: 429, isRetryable: true, retryAfterMs: 3_000, blamesAccount: true,
    message: /already generating another answer: chat session in progress/,
  },
  {
    name: 'monthly quota used up (§3.13, D12)',
    body: { error: { code: 'resource_exhausted', message: 'Monthly quota used up' } },
    type: RateLimitError, code: 'insufficient_quota', status: 429, isRetryable: true,
    message: /used up its quota: Monthly quota used up/,
  },
  {
    name: 'needUpgrade anywhere in the error, reset time as hint',
    body: { error: { code: 'resource_exhausted', details: [{ debug: { reason: 'REASON_QUOTA', notice: { needUpgrade: true, resetTime: '2030-01-01T00:02:30Z' } } }] } },
    context: {},
    type: RateLimitError, code: 'insufficient_quota', status: 429, isRetryable: true, retryAfterMs: 150_000,
    message: /quota/,
  },
  {
    name: 'paywall: forbidden with the upstream reason',
    body: { error: { code: 'resource_exhausted', details: [{ debug: { reason: 'REASON_NEED_SUBSCRIPTION', paywall: { level: 'LEVEL_ADVANCED' } } }] } },
    type: ForbiddenError, code: 'upstream_forbidden', status: 403, isRetryable: false,
    message: /needs a paid subscription.*REASON_NEED_SUBSCRIPTION/,
  },
  {
    name: 'permission_denied',
    body: { code: 'permission_denied', message: 'not allowed' },
    type: ForbiddenError, code: 'upstream_forbidden', status: 403, isRetryable: false,
    message: /denied this account permission for chat: not allowed/,
  },
  {
    name: 'not_found on a chat',
    body: { code: 'not_found', message: 'chat not found' },
    context: { conversationId: 'c-1' },
    type: NotFoundError, code: 'conversation_not_found', status: 404, isRetryable: false,
    message: /no conversation c-1/,
  },
  {
    name: 'invalid_argument says what Kimi rejected',
    body: { code: 'invalid_argument', message: 'chat_id: must not be empty' },
    type: UpstreamError, code: 'upstream_error', status: 502, isRetryable: false,
    message: /rejected the chat request as invalid: chat_id: must not be empty/,
  },
  {
    name: 'unavailable: overloaded, not the account\'s fault',
    body: { code: 'unavailable' },
    type: RateLimitError, code: 'upstream_overloaded', status: 429, isRetryable: true, retryAfterMs: 60_000, blamesAccount: false,
    message: /temporarily unavailable/,
  },
  {
    name: 'deadline_exceeded',
    body: { code: 'deadline_exceeded' },
    type: UpstreamTimeoutError, code: 'upstream_timeout', status: 504, isRetryable: true,
    message: /timed out during chat/,
  },
  {
    name: 'internal: retryable upstream error',
    body: { code: 'internal', message: 'boom' },
    type: UpstreamError, code: 'upstream_error', status: 502, isRetryable: true,
    message: /failed during chat: boom/,
  },
  {
    name: 'unknown Connect code',
    body: { code: 'weird_new_code' },
    type: UpstreamError, code: 'upstream_error', status: 502, isRetryable: false,
    message: /refused chat \(weird_new_code\)/,
  },
  {
    name: 'retryDelay hint wins over the default backoff (§10.6)',
    body: { error: { code: 'resource_exhausted', debug: { reason: 'REASON_RATE', retryDelay: '7s' } } },
    type: RateLimitError, code: 'rate_limited', status: 429, isRetryable: true, retryAfterMs: 7_000,
    message: /rate limiting/,
  },
];

describe('Connect error mapping (§3.12, §4, §10.6)', () => {
  for (const row of rows) {
    it(row.name, () => {
      const info = parseConnectError(row.body, Date.parse('2030-01-01T00:00:00Z'));
      assert.ok(info, 'parsed');
      const error = gatewayErrorFromConnect(info, { ...context, ...row.context });
      assert.ok(error instanceof row.type, `${error.constructor.name} is ${row.type.name}`);
      assert.equal(error.code, row.code);
      assert.equal(error.status, row.status);
      assert.equal(error.isRetryable, row.isRetryable);
      if (row.retryAfterMs !== undefined) assert.equal(error.retryAfterMs, row.retryAfterMs);
      if (row.blamesAccount !== undefined) assert.equal(error.blamesAccount, row.blamesAccount);
      assert.match(error.message, row.message);
    });
  }

  it('is not fooled by JSON that is no Connect error', () => {
    assert.equal(parseConnectError({ hello: 'world' }), undefined);
    assert.equal(parseConnectError('text'), undefined);
    assert.equal(parseConnectError(null), undefined);
  });

  it('never puts a token-shaped string in a message', () => {
    const token = 'eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlc2lnbmF0dXJl';
    const info = parseConnectError({ code: 'unauthenticated', message: `bad token ${token}` });
    const error = gatewayErrorFromConnect(info!, context);
    assert.ok(!error.message.includes(token));
    assert.match(error.message, /\[redacted\]/);
  });
});

describe('errors from unary HTTP responses (§3.12)', () => {
  let server: LoopbackServer;
  let http: UpstreamHttp;
  before(async () => {
    server = await startLoopbackServer();
    http = testUpstreamHttp();
  });
  after(async () => {
    await http.close();
    await server.close();
  });

  async function errorFor(status: number, body: unknown, headers: Record<string, string> = {}): Promise<GatewayError> {
    server.handle((_request, response) => {
      if (typeof body === 'string') {
        response.writeHead(status, { 'content-type': 'text/html', ...headers });
        response.end(body);
      } else sendJson(response, status, body, headers);
    });
    const response = await http.send({ url: `${server.url}/rpc`, method: 'POST', signal: AbortSignal.timeout(2_000) });
    return errorFromResponse(response, context);
  }

  it('uses the HTTP Retry-After header before the default backoff', async () => {
    const error = await errorFor(429, { code: 'resource_exhausted' }, { 'retry-after': '12' });
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.retryAfterMs, 12_000);
  });

  it('maps a REST-style JSON 401 without a Connect code to an auth error', async () => {
    const error = await errorFor(401, { error_type: 'auth.token.invalid', message: '您的授权已过期' });
    assert.ok(error instanceof AuthenticationError);
    assert.match(error.message, /授权已过期/);
  });

  it('maps an HTML 502 page by status and quotes a short snippet', async () => {
    const error = await errorFor(502, '<html><body>Bad gateway</body></html>');
    assert.ok(error instanceof UpstreamError);
    assert.equal(error.isRetryable, true);
    assert.match(error.message, /HTTP 502.*Bad gateway/);
  });

  it('maps an HTML 401 to an auth error', async () => {
    const error = await errorFor(401, '<html>login</html>');
    assert.ok(error instanceof AuthenticationError);
    assert.equal(error.blamesAccount, true);
  });
});
