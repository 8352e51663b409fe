/** POST /v1/messages and /v1/messages/count_tokens with the real @anthropic-ai/sdk over loopback (issue 9). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { UpstreamError } from '../../errors.ts';
import { clientApiRoutes } from './client-api-routes.ts';
import { createScriptedChat, startRouteServer, toolFollower, type RouteServer } from './route-test-kit.ts';

const follower = toolFollower('get_weather', '{"city":"Paris"}');
const chat = createScriptedChat((request, round) => {
  const text = request.messages.map((message) => (typeof message.content === 'string' ? message.content : '')).join(' ');
  if (text.includes('fail late')) return { text: 'partial answer', errorAfter: new UpstreamError('Kimi stopped mid-answer.', { code: 'upstream_error' }) };
  if (text.includes('think')) return { text: 'Thought about it.', reasoning: '让我想想 🤔' };
  return follower(request, round);
});
let server: RouteServer;
let client: Anthropic;

before(async () => {
  server = await startRouteServer((deps) => clientApiRoutes(deps), chat);
  client = new Anthropic({ baseURL: server.url, apiKey: 'kimi-token', maxRetries: 0 });
});
after(() => server.close());

const tools: Anthropic.Tool[] = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

test('messages.create: tool_use with stop_reason tool_use, then the tool_result turn answers in text', async () => {
  const first = await client.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools });
  assert.equal(first.stop_reason, 'tool_use');
  const use = first.content.find((block) => block.type === 'tool_use');
  assert.ok(use && use.type === 'tool_use');
  assert.deepEqual(use.input, { city: 'Paris' });
  assert.match(use.id, /^toolu_/);
  assert.equal(chat.requests.at(-1)?.bearerTokens?.[0], 'kimi-token', 'x-api-key is the credential');
  const second = await client.messages.create({
    model: 'claude-sonnet-4-5',
    max_tokens: 256,
    tools,
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21°C' }] },
    ],
  });
  assert.equal(second.stop_reason, 'end_turn');
  assert.deepEqual(second.content, [{ type: 'text', text: 'The tool says: done 完成.' }]);
});

test('messages.stream: text and tool_use blocks accumulate into the final message; thinking arrives as a thinking block', async () => {
  const stream = client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Weather?' }], tools });
  const types: string[] = [];
  stream.on('streamEvent', (event) => types.push(event.type));
  const final = await stream.finalMessage();
  assert.deepEqual(final.content.map((block) => block.type), ['text', 'tool_use']);
  assert.equal(final.stop_reason, 'tool_use');
  assert.equal(types[0], 'message_start');
  assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);
  const raw = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k' }, body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }) });
  const names = [...(await raw.text()).matchAll(/^event: (\S+)$/gm)].map((match) => match[1]);
  assert.deepEqual(names.slice(0, 3), ['message_start', 'ping', 'content_block_start'], 'the SDK hides ping; the wire has it');
  const thinking = await client.messages.stream({ model: 'kimi', max_tokens: 64, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'think first' }] }).finalMessage();
  assert.equal(thinking.content[0].type, 'thinking');
  assert.equal(chat.requests.at(-1)?.model, 'kimi-thinking');
});

test("errors: Anthropic's envelope before the first byte, an error event after it", async () => {
  await assert.rejects(
    client.messages.create({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'x' }], tools: [{ name: 'bad', input_schema: { type: 'object', properties: { a: { type: 'nope' } } } as Anthropic.Tool.InputSchema }] }),
    (error: InstanceType<typeof Anthropic.APIError>) => error.status === 400 && (error.error as { type?: string; error?: { type?: string } }).error?.type === 'invalid_request_error',
  );
  const response = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: JSON.stringify({ model: 'm', messages: [] }) });
  assert.equal(response.status, 400);
  const body = (await response.json()) as { type: string; error: { type: string; message: string } };
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'invalid_request_error');
  await assert.rejects(
    (async () => {
      for await (const _event of client.messages.stream({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'fail late' }] })) void _event;
    })(),
    (error: Error) => /Kimi stopped mid-answer/.test(error.message),
  );
  const noKey = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }) });
  assert.equal(noKey.status, 401);
  assert.equal(((await noKey.json()) as { error: { type: string } }).error.type, 'authentication_error');
});

test('count_tokens counts the prompt including the tool instructions', async () => {
  const plain = await client.messages.countTokens({ model: 'm', messages: [{ role: 'user', content: 'Hello there' }] });
  const withTools = await client.messages.countTokens({ model: 'm', messages: [{ role: 'user', content: 'Hello there' }], tools });
  assert.ok(plain.input_tokens > 0 && plain.input_tokens < 10);
  assert.ok(withTools.input_tokens > plain.input_tokens + 50, 'the tool instructions are part of the prompt');
});

interface AnthropicErrorReply {
  status: number;
  body: { type?: string; error?: { type?: string; message?: string; code?: string } };
}

async function rawMessages(path: string, init: { method?: string; body?: unknown } = {}): Promise<AnthropicErrorReply> {
  const response = await fetch(`${server.url}${path}`, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'kimi-token' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return { status: response.status, body: (await response.json()) as AnthropicErrorReply['body'] };
}

test('a text block whose text is not a string is a 400 naming messages.N.content.M.text, never the prompt "[object Object]"', async () => {
  const before = chat.requests.length;
  const shapes = [
    { role: 'user', content: [{ type: 'text', text: { a: 1 } }] },
    { role: 'user', content: [{ type: 'text', text: 5 }] },
    { role: 'assistant', content: [{ type: 'text', text: ['x'] }] },
  ];
  for (const message of shapes) {
    const reply = await rawMessages('/v1/messages', { body: { model: 'm', max_tokens: 10, messages: message.role === 'user' ? [message] : [message, { role: 'user', content: 'x' }] } });
    assert.equal(reply.status, 400, JSON.stringify(message));
    assert.equal(reply.body.type, 'error');
    assert.equal(reply.body.error?.type, 'invalid_request_error');
    assert.match(reply.body.error?.message ?? '', /messages\.0\.content\.0\.text/);
  }
  const nested = await rawMessages('/v1/messages/count_tokens', {
    body: { model: 'm', messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: {} }] }] }] },
  });
  assert.equal(nested.status, 400);
  assert.match(nested.body.error?.message ?? '', /messages\.0\.content\.0\.content\.0\.text/);
  assert.equal(chat.requests.length, before, 'nothing reached the chat');
});

test("errors raised before any route (405 wrong method, 404 unknown sub-path) come in Anthropic's envelope under /v1/messages", async () => {
  const wrongMethod = await rawMessages('/v1/messages', { method: 'GET' });
  assert.equal(wrongMethod.status, 405);
  assert.deepEqual([wrongMethod.body.type, wrongMethod.body.error?.type, wrongMethod.body.error?.code], ['error', 'invalid_request_error', 'method_not_allowed']);
  const batches = await rawMessages('/v1/messages/batches', { body: { requests: [] } });
  assert.equal(batches.status, 404);
  assert.deepEqual([batches.body.type, batches.body.error?.type, batches.body.error?.code], ['error', 'not_found_error', 'not_found']);
  const openai = await rawMessages('/v1/responses', { method: 'GET' });
  assert.equal(openai.status, 405);
  assert.equal(openai.body.type, undefined, 'other paths keep the OpenAI envelope');
  assert.equal((openai.body.error as { type?: string } | undefined)?.type, 'invalid_request_error');
});
