/**
 * @module upstream/legacy/legacy-errors.test
 * One test per row of the legacy error table (spec §2.8, §9 D13, §10.7, contract.md).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AuthenticationError,
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  RateLimitError,
  UpstreamError,
  UpstreamTimeoutError,
  type GatewayError,
} from '../../errors.ts';
import { errorBodyFromJson, legacyErrorFromBody, type LegacyErrorContext } from './legacy-errors.ts';

const stream: LegacyErrorContext = { kind: 'stream', defaultRetryAfterMs: 30_000 };
const request: LegacyErrorContext = { kind: 'request', defaultRetryAfterMs: 30_000 };

function map(errorType: string | undefined, message: string | undefined, context: LegacyErrorContext): GatewayError {
  return legacyErrorFromBody({ errorType, message }, context);
}

describe('legacyErrorFromBody (§2.8)', () => {
  it('HTTP 401 and auth.token.invalid → 401 invalid_token blaming the account, upstream message kept', () => {
    for (const error of [map(undefined, undefined, { ...request, statusCode: 401 }), map('auth.token.invalid', '您的授权已过期，请重新登录', request)]) {
      assert.ok(error instanceof AuthenticationError);
      assert.equal(error.code, 'invalid_token');
      assert.equal(error.blamesAccount, true);
    }
    assert.match(map('auth.token.invalid', '您的授权已过期，请重新登录', request).message, /您的授权已过期/);
  });

  it('refresh HTTP 400 → AuthenticationError saying the account may be banned (§2.2)', () => {
    const error = map(undefined, 'bad', { kind: 'refresh', defaultRetryAfterMs: 1, statusCode: 400 });
    assert.ok(error instanceof AuthenticationError);
    assert.match(error.message, /banned or blocked/);
  });

  it('chat.user_stream_pushing → 409 conversation_busy (§10.7)', () => {
    const error = map('chat.user_stream_pushing', '当前会话正在生成', { ...request, statusCode: 400 });
    assert.ok(error instanceof ConflictError);
    assert.equal(error.code, 'conversation_busy');
  });

  it('chat.forbidden → 403 upstream_forbidden', () => {
    const error = map('chat.forbidden', '此会话已被禁用', stream);
    assert.ok(error instanceof ForbiddenError);
    assert.equal(error.status, 403);
    assert.match(error.message, /此会话已被禁用/);
  });

  it('overload texts → 429 upstream_overloaded with the configured backoff (§9 D13)', () => {
    for (const text of ['Kimi 现在有点累了，晚一点再来问问我吧！', '算力不够，请稍后再试']) {
      const error = map('openai.completion.stream', text, stream);
      assert.ok(error instanceof RateLimitError);
      assert.equal(error.code, 'upstream_overloaded');
      assert.equal(error.retryAfterMs, 30_000);
      assert.equal(error.isRetryable, true);
    }
  });

  it('openai.completion.stream without overload text → retryable UpstreamError', () => {
    const error = map('openai.completion.stream', 'runtime error', stream);
    assert.ok(error instanceof UpstreamError);
    assert.equal(error.isRetryable, true);
  });

  it('token_length_too_long → 400 context_length_exceeded explaining the conversation is too long', () => {
    const error = map('openai.completion.token_length_too_long', '超长', stream);
    assert.ok(error instanceof InvalidRequestError);
    assert.equal(error.code, 'context_length_exceeded');
    assert.match(error.message, /conversation is too long/);
  });

  it('frequency and quota texts → 429 rate_limited (§10.7)', () => {
    for (const text of ['对话次数已达上限', '请求过于频繁', 'rate limit exceeded', '匿名聊天使用次数超过']) {
      const error = map('chat.limit', text, { ...request, statusCode: 400 });
      assert.ok(error instanceof RateLimitError, text);
      assert.equal(error.code, 'rate_limited');
    }
  });

  it('HTTP 429 honours Retry-After; 5xx follows errorForHttpStatus', () => {
    const limited = map(undefined, undefined, { ...request, statusCode: 429, headers: { 'retry-after': '7' } });
    assert.ok(limited instanceof RateLimitError);
    assert.equal(limited.retryAfterMs, 7_000);
    assert.ok(map(undefined, 'oops', { ...request, statusCode: 502 }) instanceof UpstreamError);
    assert.ok(map(undefined, undefined, { ...request, statusCode: 504 }) instanceof UpstreamTimeoutError);
    const overloaded = map(undefined, undefined, { ...request, statusCode: 503 });
    assert.ok(overloaded instanceof RateLimitError);
    assert.equal(overloaded.code, 'upstream_overloaded');
  });

  it('a 404 on a conversation lookup → conversation_not_found; elsewhere an upstream error', () => {
    const lookup = map(undefined, 'not found', { ...request, statusCode: 404, isConversationLookup: true });
    assert.ok(lookup instanceof NotFoundError);
    assert.equal(lookup.code, 'conversation_not_found');
    assert.ok(map(undefined, 'not found', { ...request, statusCode: 404 }) instanceof UpstreamError);
  });
});

describe('errorBodyFromJson', () => {
  it('reads REST bodies and SSE error payloads alike', () => {
    assert.deepEqual(errorBodyFromJson({ error_type: 'a', message: 'b' }), { errorType: 'a', message: 'b' });
    assert.deepEqual(errorBodyFromJson({ event: 'error', error: { error_type: 'c', message: 'd' } }), { errorType: 'c', message: 'd' });
    assert.equal(errorBodyFromJson({ ok: true }), undefined);
  });
});
