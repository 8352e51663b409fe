/**
 * `stop` end to end: the openai SDK → gateway → simulator. Kimi's web chat has no stop setting, so the gateway
 * cuts the answer (src/chat/stop-sequences.ts) and ends the upstream stream early; with tools, only the plain
 * answer text is cut, never a call.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { useOpenAiStack } from '../support/openai-stack.ts';

const gateway = useOpenAiStack();

// The simulator answers `Simulated reply to: "hi" (turn 1) 模拟回复，你好世界 🌏` (simulator/reply-text.ts).
const before模拟 = 'Simulated reply to: "hi" (turn 1) ';

test('stop as a string: the non-streamed answer ends before it, finish_reason stop, usage still estimated', async () => {
  const completion = await gateway.client().chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'hi' }], stop: '模拟' });
  assert.equal(completion.choices[0].message.content, before模拟);
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.ok(completion.usage && completion.usage.prompt_tokens > 0 && completion.usage.completion_tokens > 0);
});

test('stop as an array, streamed: the text before the first sequence arrives, then finish_reason stop', async () => {
  const stream = await gateway.client().chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'hi' }], stop: ['nothing like this', '(turn'], stream: true, stream_options: { include_usage: true } });
  let content = '';
  const finishes: (string | null)[] = [];
  for await (const chunk of stream) {
    content += chunk.choices[0]?.delta.content ?? '';
    if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
  }
  assert.equal(content, 'Simulated reply to: "hi" ');
  assert.deepEqual(finishes, ['stop']);
});

test('the cut ends the upstream stream early: a 40-paragraph answer is interrupted upstream after the first', async () => {
  const userId = gateway.stack().accounts[0].userId;
  gateway.stack().simulator.setScenario('long-answer', { userId, times: 1 });
  const completion = await gateway.client().chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'hi' }], stop: ['模拟'] });
  assert.equal(completion.choices[0].message.content, before模拟);
  await gateway.stack().gateway.chat.idle();
  const status = () => gateway.stack().simulator.chats(userId).find((candidate) => candidate.id === completion.id)?.messages.at(-1)?.status;
  // The simulator notices the closed socket at its next write (1 ms apart); reading all 500 frames takes far longer.
  for (let waited = 0; status() === 'generating' && waited < 2000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(status(), 'interrupted', 'the gateway closed the upstream stream instead of reading it to the end');
});

test('bad stop values are a 400 naming stop, before anything goes upstream', async () => {
  const chatsBefore = gateway.stack().simulator.requests.length;
  for (const stop of [['a', 'b', 'c', 'd', 'e'], [''], 42] as unknown as string[]) {
    await assert.rejects(
      gateway.client().chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'hi' }], stop }),
      (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'stop',
      JSON.stringify(stop),
    );
  }
  assert.equal(gateway.stack().simulator.requests.slice(chatsBefore).filter((request) => request.path.includes('Chat')).length, 0);
});

const weather = { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };

test('with tools, stop cuts the plain text before a call (no call follows) but never a call\'s own text', async () => {
  // The simulator writes `I will use get_weather 我来调用工具 🛠️.` and then the call with {"city":"sim-city"}.
  const cut = await gateway.client().chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'Weather? Use get_weather.' }], tools: [weather], stop: '调用' });
  assert.equal(cut.choices[0].message.content, 'I will use get_weather 我来');
  assert.equal(cut.choices[0].message.tool_calls, undefined);
  assert.equal(cut.choices[0].finish_reason, 'stop');
  for (const stream of [false, true]) {
    const request = { model: 'kimi', messages: [{ role: 'user' as const, content: 'Weather? Use get_weather.' }], tools: [weather], stop: ['sim-city', 'tool_call'] };
    const runner = stream ? gateway.client().chat.completions.stream(request) : undefined;
    const completion = runner ? await runner.finalChatCompletion() : await gateway.client().chat.completions.create(request);
    const call = completion.choices[0].message.tool_calls?.[0];
    assert.ok(call?.type === 'function', `stream ${stream}: the call survives`);
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'sim-city' });
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  }
});

test('Anthropic stop_sequences: the answer ends before the first one with stop_reason stop_sequence and the matched sequence, streamed and not', async () => {
  const anthropic = new Anthropic({ baseURL: gateway.stack().gatewayUrl, apiKey: gateway.stack().token, maxRetries: 0 });
  const request = { model: 'kimi', max_tokens: 256, messages: [{ role: 'user' as const, content: 'hi' }], stop_sequences: ['nothing like this', '模拟'] };
  const message = await anthropic.messages.create(request);
  assert.deepEqual(message.content, [{ type: 'text', text: before模拟 }]);
  assert.equal(message.stop_reason, 'stop_sequence');
  assert.equal(message.stop_sequence, '模拟');
  const streamed = await anthropic.messages.stream(request).finalMessage();
  assert.equal(streamed.content[0].type === 'text' ? streamed.content[0].text : undefined, before模拟);
  assert.equal(streamed.stop_reason, 'stop_sequence');
  assert.equal(streamed.stop_sequence, '模拟');
  const refused = await anthropic.messages.create({ ...request, stop_sequences: [''] }).catch((error: unknown) => error);
  assert.ok(refused instanceof Anthropic.BadRequestError, String(refused));
  assert.match(refused.message, /stop_sequences/);
});
