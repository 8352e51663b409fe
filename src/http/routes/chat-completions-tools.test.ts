/** OpenAI chat tool fields and tool_calls wire shapes (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foldChatOutputBatches } from '../../chat/tools/fold-tool-events.ts';
import type { ChatOutputEvent } from '../../chat/tools/tool-events.ts';
import { buildPrompt } from '../../chat/build-prompt.ts';
import { chatCompletionRequestSchema, parseWith, toChatMessages } from '../openai-schema.ts';
import { createChunkMapper, toChatCompletion } from '../to-openai.ts';
import { chatToolFields, planChatTools, usesLegacyFunctions } from './chat-completions-tools.ts';

const schema = chatCompletionRequestSchema.extend(chatToolFields);
const events: ChatOutputEvent[] = [
  { type: 'conversation-start', conversationId: 'chat-7' },
  { type: 'text-delta', text: 'Checking.' },
  { type: 'tool-call-start', index: 0, id: 'call_a', name: 'get_weather' },
  { type: 'tool-call-delta', index: 0, argumentsDelta: '{"city":' },
  { type: 'tool-call-delta', index: 0, argumentsDelta: '"Paris"}' },
  { type: 'tool-call-end', index: 0, arguments: '{"city":"Paris"}' },
  { type: 'tool-call-start', index: 1, id: 'call_b', name: 'get_time' },
  { type: 'tool-call-delta', index: 1, argumentsDelta: '{}' },
  { type: 'tool-call-end', index: 1, arguments: '{}' },
  { type: 'finish', reason: 'tool-calls' },
];

test('streamed tool_calls deltas: id, type and name first, then argument strings; finish_reason tool_calls', () => {
  const mapper = createChunkMapper({ model: 'kimi', includeUsage: false });
  const chunks = events.flatMap((event) => mapper.map(event));
  const deltas = chunks.flatMap((chunk) => (chunk.choices[0]?.delta.tool_calls ?? []) as unknown[]);
  assert.deepEqual(deltas, [
    { index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } },
    { index: 0, function: { arguments: '{"city":' } },
    { index: 0, function: { arguments: '"Paris"}' } },
    { index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '' } },
    { index: 1, function: { arguments: '{}' } },
  ]);
  assert.equal(chunks.at(-1)?.choices[0].finish_reason, 'tool_calls');
  assert.ok(chunks.every((chunk) => chunk.id === 'chat-7'));
});

test('the folded completion carries message.tool_calls and finish_reason tool_calls', async () => {
  async function* source() {
    yield events;
  }
  const completion = toChatCompletion(await foldChatOutputBatches(source()), 'kimi', 1);
  assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  assert.equal(completion.choices[0].message.content, 'Checking.');
  assert.deepEqual(completion.choices[0].message.tool_calls, [
    { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
    { id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } },
  ]);
});

test('request fields: tools, tool_choice, parallel_tool_calls, response_format, and the deprecated functions', () => {
  const body = parseWith(schema, {
    messages: [{ role: 'user', content: 'hi' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
    parallel_tool_calls: false,
    response_format: { type: 'json_schema', json_schema: { name: 'out', schema: { type: 'object' }, strict: true } },
  });
  const plan = planChatTools(body, [], false);
  assert.deepEqual(plan.prompt.choice, { kind: 'function', name: 'get_weather' });
  assert.equal(plan.prompt.parallelToolCalls, false);
  assert.equal(plan.responseFormat.kind, 'json-schema');
  const legacy = planChatTools(parseWith(schema, { messages: [{ role: 'user', content: 'x' }], functions: [{ name: 'f' }], function_call: { name: 'f' } }), [], false);
  assert.deepEqual(legacy.prompt.choice, { kind: 'function', name: 'f' });
  assert.deepEqual(legacy.prompt.tools[0].parameters, { type: 'object', properties: {} });
});

test('a tool message answering no call is a 400 on messages[i].tool_call_id, except on a continuation', () => {
  const messages = [{ role: 'user' as const, content: 'x' }, { role: 'tool' as const, content: 'r', tool_call_id: 'call_x' }];
  assert.throws(() => planChatTools({}, messages, false), (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'messages[1].tool_call_id');
  assert.doesNotThrow(() => planChatTools({}, messages, true));
});

test('legacy functions: streamed delta.function_call (name, then argument pieces, first call only), finish_reason function_call', () => {
  const mapper = createChunkMapper({ model: 'kimi', includeUsage: false, legacyFunctionCall: true });
  const chunks = events.flatMap((event) => mapper.map(event));
  assert.deepEqual(
    chunks.map((chunk) => chunk.choices[0].delta.function_call).filter(Boolean),
    [{ name: 'get_weather', arguments: '' }, { arguments: '{"city":' }, { arguments: '"Paris"}' }],
  );
  assert.ok(chunks.every((chunk) => chunk.choices[0].delta.tool_calls === undefined));
  assert.equal(chunks.at(-1)?.choices[0].finish_reason, 'function_call');
});

test('legacy functions: the folded completion carries message.function_call (the first call) and finish_reason function_call', async () => {
  async function* source() {
    yield events;
  }
  const completion = toChatCompletion(await foldChatOutputBatches(source()), 'kimi', 1, { legacyFunctionCall: true });
  assert.equal(completion.choices[0].finish_reason, 'function_call');
  assert.deepEqual(completion.choices[0].message.function_call, { name: 'get_weather', arguments: '{"city":"Paris"}' });
  assert.equal(completion.choices[0].message.tool_calls, undefined);
});

test('legacy functions: the shape follows functions only without tools; the plan keeps one call', () => {
  const fn = { name: 'f' };
  assert.equal(usesLegacyFunctions({ functions: [fn] }), true);
  assert.equal(usesLegacyFunctions({ functions: [fn], tools: [] }), true);
  assert.equal(usesLegacyFunctions({ functions: [fn], tools: [{ function: fn }] }), false);
  assert.equal(usesLegacyFunctions({ tools: [{ function: fn }] }), false);
  const plan = planChatTools(parseWith(schema, { messages: [{ role: 'user', content: 'x' }], functions: [fn], tools: [] }), [], false);
  assert.equal(plan.hasTools, true, 'an empty tools list does not hide the functions');
  assert.equal(plan.prompt.parallelToolCalls, false);
});

test('legacy history: assistant function_call + function result become a call and its result in the prompt', () => {
  const body = parseWith(schema, {
    messages: [
      { role: 'user', content: 'weather in paris' },
      { role: 'assistant', content: null, function_call: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { role: 'function', name: 'get_weather', content: '22C sunny' },
    ],
  });
  const messages = toChatMessages(body.messages);
  assert.deepEqual(messages[1].tool_calls, [{ id: 'call_fn_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
  assert.deepEqual([messages[2].role, messages[2].tool_call_id], ['tool', 'call_fn_1']);
  assert.doesNotThrow(() => planChatTools(body, messages, false), 'the result answers a call, so no 400');
  assert.equal(
    buildPrompt(messages, { isContinuation: false }).text,
    'user: weather in paris\n\nassistant: [called get_weather({"city":"Paris"}) as call_fn_1]\n\ntool: [result of call_fn_1] 22C sunny',
  );
  const orphan = toChatMessages(parseWith(schema, { messages: [{ role: 'user', content: 'x' }, { role: 'function', name: 'get_weather', content: 'r' }] }).messages);
  assert.match(buildPrompt(orphan, { isContinuation: false }).text, /tool: \[result of get_weather\] r$/);
});

test('stop: a string or up to 4 strings goes into the plan; anything else is a 400 naming stop', () => {
  const planFor = (stop: unknown) => planChatTools(parseWith(schema, { messages: [{ role: 'user', content: 'x' }], stop }), [], false);
  assert.deepEqual(planFor('\nObservation').stopSequences, ['\nObservation']);
  assert.deepEqual(planFor(['a', 'b']).stopSequences, ['a', 'b']);
  assert.deepEqual(planFor(null).stopSequences, []);
  for (const bad of [['a', 'b', 'c', 'd', 'e'], [''], 7]) {
    assert.throws(() => planFor(bad), (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'stop');
  }
});
