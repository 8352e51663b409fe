/**
 * POST /v1/messages and /v1/messages/count_tokens end to end (issue 9): @anthropic-ai/sdk → gateway →
 * simulator, with the Kimi token in x-api-key.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
let client: Anthropic;
before(async () => {
  stack = await startStack();
  client = new Anthropic({ baseURL: stack.gatewayUrl, apiKey: stack.token, maxRetries: 0 });
});
after(() => stack?.close());

const tools: Anthropic.Tool[] = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

test('messages.create with system and an image block: the image is uploaded and the answer is text', async () => {
  const message = await client.messages.create({
    model: 'kimi',
    max_tokens: 256,
    system: 'Be brief.',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }] }],
  });
  assert.equal(message.stop_reason, 'end_turn');
  assert.equal(message.content[0].type, 'text');
  assert.match(message.content[0].type === 'text' ? message.content[0].text : '', /File: .*\(\d+ bytes/);
  assert.equal(stack.simulator.files(stack.accounts[0].userId).length >= 1, true);
});

test('tool use loop: tool_use with stop_reason tool_use, then tool_result answers in text', async () => {
  const first = await client.messages.create({ model: 'kimi', max_tokens: 256, tools, messages: [{ role: 'user', content: 'Weather? Use get_weather.' }] });
  assert.equal(first.stop_reason, 'tool_use');
  const use = first.content.find((block) => block.type === 'tool_use');
  assert.ok(use && use.type === 'tool_use');
  assert.deepEqual(use.input, { city: 'sim-city' });
  const second = await client.messages.create({
    model: 'kimi',
    max_tokens: 256,
    tools,
    messages: [{ role: 'user', content: 'Weather? Use get_weather.' }, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18°C' }] }],
  });
  assert.equal(second.stop_reason, 'end_turn');
  assert.match(second.content[0].type === 'text' ? second.content[0].text : '', /18°C/);
});

test('messages.stream: thinking block then text; tool use streamed as input_json_delta', async () => {
  const thinking = await client.messages.stream({ model: 'kimi', max_tokens: 256, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'Think first.' }] }).finalMessage();
  assert.deepEqual(thinking.content.map((block) => block.type), ['thinking', 'text']);
  const stream = client.messages.stream({ model: 'kimi', max_tokens: 256, tools, messages: [{ role: 'user', content: 'Weather? Use get_weather.' }] });
  let partialJson = '';
  stream.on('inputJson', (delta) => (partialJson += delta));
  const final = await stream.finalMessage();
  assert.equal(final.stop_reason, 'tool_use');
  assert.equal(partialJson, '{"city":"sim-city"}');
});

test("count_tokens, and errors in Anthropic's envelope (before and after the first byte)", async () => {
  const counted = await client.messages.countTokens({ model: 'kimi', messages: [{ role: 'user', content: 'Hello there' }], tools });
  assert.ok(counted.input_tokens > 50);
  const bad = await fetch(`${stack.gatewayUrl}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': stack.token }, body: JSON.stringify({ model: 'kimi', max_tokens: 5, messages: [{ role: 'user', content: 'x' }], tools: [{ name: 'f', input_schema: { type: 'object', properties: { a: { type: 'nope' } } } }] }) });
  assert.equal(bad.status, 400);
  assert.deepEqual(Object.keys((await bad.json()) as object), ['type', 'error']);
  await assert.rejects(client.messages.create({ model: 'kimi', max_tokens: 5, messages: [{ role: 'user', content: 'x [[sim:http-429]]' }] }), (error: { status?: number; error?: { error?: { type?: string } } }) => error.status === 429 && error.error?.error?.type === 'rate_limit_error');
  await assert.rejects(async () => {
    for await (const _event of client.messages.stream({ model: 'kimi', max_tokens: 5, messages: [{ role: 'user', content: 'x [[sim:exception-mid-stream]]' }] })) void _event;
  });
});

test('the SDK\'s threaded tool runner completes its loop: a thread "continue" is answered thread_not_found, and the SDK resends the whole conversation', async (t) => {
  const { betaTool } = await import('@anthropic-ai/sdk/helpers/beta/json-schema');
  // Its own stack: the error test above leaves the shared account cooling down.
  const own = await startStack();
  t.after(() => own.close());
  const sent: { thread?: { type: string } }[] = [];
  const recording = new Anthropic({
    baseURL: own.gatewayUrl,
    apiKey: own.token,
    maxRetries: 0,
    fetch: async (url, init) => {
      if (String(url).endsWith('/v1/messages')) sent.push(JSON.parse(String(init?.body)));
      return fetch(url, init);
    },
  });
  let ran = 0;
  const weather = betaTool({
    name: 'get_weather',
    description: 'Weather',
    inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    run: async (input: { city?: string }) => {
      ran += 1;
      return `sunny in ${input.city}`;
    },
  });
  const turns: (string | null)[] = [];
  for await (const message of recording.beta.messages.toolRunner({ model: 'kimi', max_tokens: 256, max_iterations: 3, tools: [weather], messages: [{ role: 'user', content: 'Weather in Paris? Use get_weather.' }] })) turns.push(message.stop_reason);
  assert.equal(ran, 1, 'the tool ran');
  assert.deepEqual(turns, ['tool_use', 'end_turn']);
  assert.deepEqual(sent.map((body) => body.thread?.type), ['create', 'continue', 'create'], 'the refused continue was resent in full');
});
