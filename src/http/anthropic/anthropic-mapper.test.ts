/** Anthropic Messages stream events, message object and error envelope (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChatOutputEvent } from '../../chat/tools/tool-events.ts';
import { AuthenticationError, ConflictError, InvalidRequestError, RateLimitError, ServiceUnavailableError, UpstreamError, UpstreamTimeoutError } from '../../errors.ts';
import { renderAnthropicError } from './anthropic-errors.ts';
import { THINKING_SIGNATURE, createAnthropicMapper } from './anthropic-mapper.ts';

const events: ChatOutputEvent[] = [
  { type: 'conversation-start', conversationId: 'chat-1' },
  { type: 'reasoning-delta', text: 'hmm' },
  { type: 'text-delta', text: 'Let me check.' },
  { type: 'tool-call-start', index: 0, id: 'toolu_1', name: 'get_weather' },
  { type: 'tool-call-delta', index: 0, argumentsDelta: '{"city":"Paris"}' },
  { type: 'tool-call-end', index: 0, arguments: '{"city":"Paris"}' },
  { type: 'usage', promptTokens: 11, completionTokens: 7, isEstimate: true },
  { type: 'finish', reason: 'tool-calls' },
];

test('the stream: message_start and ping, thinking/text/tool_use blocks in order, message_delta with tool_use, message_stop', () => {
  const mapper = createAnthropicMapper({ model: 'claude-x' });
  const out = events.flatMap((event) => mapper.map(event));
  assert.deepEqual(out.map((event) => `${event.type}${'index' in event ? `:${String(event.index)}` : ''}`), [
    'message_start',
    'ping',
    'content_block_start:0',
    'content_block_delta:0',
    'content_block_delta:0',
    'content_block_stop:0',
    'content_block_start:1',
    'content_block_delta:1',
    'content_block_stop:1',
    'content_block_start:2',
    'content_block_delta:2',
    'content_block_stop:2',
    'message_delta',
    'message_stop',
  ]);
  assert.deepEqual(out[4], { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: THINKING_SIGNATURE } });
  assert.deepEqual(out[9], { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } });
  assert.deepEqual(out[10], { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city":"Paris"}' } });
  assert.deepEqual(out[12], { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: 11, output_tokens: 7 } });
  const message = mapper.message();
  assert.equal(mapper.isFinished, true);
  assert.deepEqual(message.content, [
    { type: 'thinking', thinking: 'hmm', signature: THINKING_SIGNATURE },
    { type: 'text', text: 'Let me check.' },
    { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
  ]);
  assert.equal(message.stop_reason, 'tool_use');
  assert.match(message.id, /^msg_[0-9a-f]{24}$/);
});

test('stop reasons: stop → end_turn, length → max_tokens', () => {
  for (const [reason, expected] of [['stop', 'end_turn'], ['length', 'max_tokens'], ['content-filter', 'refusal']] as const) {
    const mapper = createAnthropicMapper({ model: 'm' });
    mapper.map({ type: 'text-delta', text: 'x' });
    mapper.map({ type: 'finish', reason });
    assert.equal(mapper.message().stop_reason, expected);
  }
});

test("errors use Anthropic's envelope and type names; status and Retry-After are unchanged", () => {
  const cases: [unknown, number, string][] = [
    [new InvalidRequestError('bad', { param: 'tools.0.input_schema' }), 400, 'invalid_request_error'],
    [new AuthenticationError('no'), 401, 'authentication_error'],
    [new ConflictError('busy'), 409, 'invalid_request_error'],
    [new RateLimitError('rate_limited', 'slow down', { retryAfterMs: 3000 }), 429, 'rate_limit_error'],
    [new UpstreamError('tool', { code: 'tool_call_invalid' }), 502, 'api_error'],
    [new ServiceUnavailableError('later'), 503, 'overloaded_error'],
    [new UpstreamTimeoutError('slow'), 504, 'timeout_error'],
    [new Error('secret internals'), 500, 'api_error'],
  ];
  for (const [error, status, type] of cases) {
    const rendered = renderAnthropicError(error);
    assert.equal(rendered.status, status);
    assert.equal(rendered.body.type, 'error');
    assert.equal(rendered.body.error.type, type);
  }
  assert.equal(renderAnthropicError(cases[3][0]).headers['retry-after'], '3');
  assert.doesNotMatch(renderAnthropicError(new Error('secret internals')).body.error.message, /secret/);
  assert.equal(renderAnthropicError(cases[4][0]).body.error.code, 'tool_call_invalid');
});
