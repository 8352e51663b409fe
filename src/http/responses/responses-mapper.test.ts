/** Responses API stream events and response object from the normalised events (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChatOutputEvent } from '../../chat/tools/tool-events.ts';
import { renderError } from '../error-envelope.ts';
import { UpstreamError } from '../../errors.ts';
import { createResponsesMapper } from './responses-mapper.ts';

const events: ChatOutputEvent[] = [
  { type: 'conversation-start', conversationId: 'chat-42' },
  { type: 'reasoning-delta', text: 'think' },
  { type: 'text-delta', text: 'Hi ' },
  { type: 'text-delta', text: '世界' },
  { type: 'tool-call-start', index: 0, id: 'call_1', name: 'get_weather' },
  { type: 'tool-call-delta', index: 0, argumentsDelta: '{"city":"Paris"}' },
  { type: 'tool-call-end', index: 0, arguments: '{"city":"Paris"}' },
  { type: 'usage', promptTokens: 3, completionTokens: 4, isEstimate: true },
  { type: 'finish', reason: 'tool-calls' },
];

test('the stream: created, in_progress, reasoning, message and function_call items, completed; sequence numbers count up', () => {
  const mapper = createResponsesMapper({ echo: { model: 'kimi' }, isStored: true, createdAt: 1 });
  const out = events.flatMap((event) => mapper.map(event));
  assert.deepEqual(out.map((event) => event.type), [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'response.reasoning_text.delta',
    'response.reasoning_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.output_item.added',
    'response.content_part.added',
    'response.output_text.delta',
    'response.output_text.delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.output_item.added',
    'response.function_call_arguments.delta',
    'response.function_call_arguments.done',
    'response.output_item.done',
    'response.completed',
  ]);
  assert.deepEqual(out.map((event) => event.sequence_number), out.map((_event, index) => index));
  assert.equal((out[0].response as { id: string }).id, 'resp_chat-42', 'the id continues the upstream chat');
  const completed = out.at(-1)!.response as { output: { type: string }[]; status: string; output_text: string; usage: { total_tokens: number } };
  assert.equal(completed.status, 'completed');
  assert.deepEqual(completed.output.map((item) => item.type), ['reasoning', 'message', 'function_call']);
  assert.equal(completed.output_text, 'Hi 世界');
  assert.equal(completed.usage.total_tokens, 7);
  assert.deepEqual(completed.output[2], { type: 'function_call', id: (completed.output[2] as unknown as { id: string }).id, status: 'completed', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' });
  assert.deepEqual(mapper.response(), completed, 'the non-streaming object is the same snapshot');
});

test('store: false gives an id that is not the chat id; length ends as incomplete', () => {
  const mapper = createResponsesMapper({ echo: {}, isStored: false });
  const out = [...mapper.map({ type: 'conversation-start', conversationId: 'chat-1' }), ...mapper.map({ type: 'text-delta', text: 'x' }), ...mapper.map({ type: 'finish', reason: 'length' })];
  assert.match(mapper.response().id, /^resp_nostore_[0-9a-f]{24}$/);
  assert.equal(out.at(-1)!.type, 'response.incomplete');
  assert.deepEqual(mapper.response().incomplete_details, { reason: 'max_output_tokens' });
});

test('a failure after the first byte closes the open item and sends response.failed and an error event', () => {
  const mapper = createResponsesMapper({ echo: {}, isStored: true });
  mapper.map({ type: 'text-delta', text: 'partial' });
  const out = mapper.fail(renderError(new UpstreamError('boom', { code: 'upstream_error' })));
  assert.deepEqual(out.map((event) => event.type), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.failed', 'error']);
  assert.deepEqual((out[3].response as { error: unknown }).error, { code: 'upstream_error', message: 'boom' });
  assert.equal(out[4].code, 'upstream_error');
});
