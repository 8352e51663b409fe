/**
 * The deprecated OpenAI `functions` / `function_call` API end to end (older LangChain and Dify versions send it):
 * the answer comes back in the legacy shape, `message.function_call` / `delta.function_call` with finish_reason
 * `function_call` (first call only), and an earlier legacy call and its `function` result reach the prompt as a
 * call and its result. The openai SDK → gateway → simulator (simulator/tool-replies.ts answers in the grammar).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useOpenAiStack } from '../support/openai-stack.ts';

const gateway = useOpenAiStack();

const functions = [
  { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
  { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } },
];

test('functions, non-streamed: message.function_call with the first call, finish_reason function_call, no tool_calls', async () => {
  // The simulator would call both tools; the legacy shape holds one call, so only the first is kept.
  const completion = await gateway.client().chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'Use get_weather and get_time.' }], functions });
  const choice = completion.choices[0];
  assert.equal(choice.finish_reason, 'function_call');
  assert.equal(choice.message.function_call?.name, 'get_weather');
  assert.deepEqual(JSON.parse(choice.message.function_call?.arguments ?? ''), { city: 'sim-city' });
  assert.equal(choice.message.tool_calls, undefined);
});

test('functions with function_call named, streamed: delta.function_call name first, then argument pieces; finish_reason function_call', async () => {
  const stream = await gateway.client().chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'Weather? Use get_weather.' }], functions, function_call: { name: 'get_time' }, stream: true });
  const pieces: { name?: string; arguments?: string }[] = [];
  const finishes: string[] = [];
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    assert.equal(choice?.delta.tool_calls, undefined, 'no tool_calls deltas for a functions request');
    if (choice?.delta.function_call) pieces.push(choice.delta.function_call);
    if (choice?.finish_reason) finishes.push(choice.finish_reason);
  }
  assert.equal(pieces[0].name, 'get_time');
  assert.ok(pieces.slice(1).every((piece) => piece.name === undefined));
  assert.deepEqual(JSON.parse(pieces.map((piece) => piece.arguments ?? '').join('')), { zone: 'sim-zone' });
  assert.deepEqual(finishes, ['function_call']);
});

test('tools keep the tool_calls shape even when functions are sent too', async () => {
  const completion = await gateway.client().chat.completions.create({
    model: 'kimi',
    messages: [{ role: 'user', content: 'Weather? Use get_weather.' }],
    tools: [{ type: 'function', function: functions[0] }],
    functions,
  });
  assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  assert.equal(completion.choices[0].message.function_call, undefined);
});
