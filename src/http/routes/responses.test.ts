/** POST /v1/responses with the real openai SDK over loopback (issue 9); the chat service is scripted. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { clientApiRoutes } from './client-api-routes.ts';
import { createScriptedChat, startRouteServer, toolFollower, type RouteServer } from './route-test-kit.ts';

const chat = createScriptedChat(toolFollower('get_weather', '{"city":"Paris"}'));
let server: RouteServer;
let client: OpenAI;

before(async () => {
  server = await startRouteServer((deps) => clientApiRoutes(deps), chat);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'kimi-token', maxRetries: 0 });
});
after(() => server.close());

const tools: OpenAI.Responses.Tool[] = [{ type: 'function', name: 'get_weather', description: 'Weather', strict: false, parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

test('responses.create: a function call, then previous_response_id with its output continues the same chat', async () => {
  const first = await client.responses.create({ model: 'kimi', input: 'Weather in Paris?', tools });
  assert.equal(first.status, 'completed');
  const call = first.output.find((item) => item.type === 'function_call');
  assert.ok(call && call.type === 'function_call');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  assert.match(first.id, /^resp_chat-\d+$/);
  assert.equal(first.output_text, 'Calling it. ');
  const second = await client.responses.create({ model: 'kimi', previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: '21°C' }], tools });
  assert.equal(second.output_text, 'The tool says: done 完成.');
  assert.equal(chat.requests.at(-1)?.conversationId, first.id.slice('resp_'.length), 'the upstream chat is continued');
});

test('responses.stream: semantic events in order and the final response', async () => {
  const stream = client.responses.stream({ model: 'kimi', input: 'Weather?', tools });
  const types: string[] = [];
  let argumentsText = '';
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.function_call_arguments.delta') argumentsText += event.delta;
  }
  const final = await stream.finalResponse();
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  assert.ok(types.includes('response.output_text.delta'));
  assert.ok(types.indexOf('response.output_text.done') < types.indexOf('response.function_call_arguments.delta'));
  assert.equal(types.at(-1), 'response.completed');
  assert.equal(argumentsText, '{"city":"Paris"}');
  assert.equal(final.output.at(-1)?.type, 'function_call');
});

test('store: false answers cannot be continued; bad tool input is an OpenAI-style 400', async () => {
  const unstored = await client.responses.create({ model: 'kimi', input: 'hi', store: false });
  assert.match(unstored.id, /^resp_nostore_/);
  await assert.rejects(client.responses.create({ model: 'kimi', input: 'again', previous_response_id: unstored.id }), (error: InstanceType<typeof OpenAI.APIError>) => error.status === 404);
  await assert.rejects(
    client.responses.create({ model: 'kimi', input: 'x', tools: [{ type: 'function', name: 'f', strict: false, parameters: { type: 'object', properties: { a: { type: 'nope' } } } }] }),
    (error: InstanceType<typeof OpenAI.APIError>) => error.status === 400 && (error.error as { param?: string }).param === 'tools[0].parameters',
  );
  await assert.rejects(
    client.responses.create({ model: 'kimi', input: [{ type: 'function_call_output', call_id: 'call_unknown', output: 'x' }] }),
    (error: InstanceType<typeof OpenAI.APIError>) => error.status === 400 && (error.error as { param?: string }).param === 'input[0].call_id',
  );
});

/** A raw POST, so that the tests can send what the SDK's types would not let through. */
async function postResponses(body: unknown): Promise<{ status: number; error: { code: string; param: string | null; message: string } }> {
  const response = await fetch(`${server.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer kimi-token' }, body: JSON.stringify(body) });
  const json = (await response.json()) as { error: { code: string; param: string | null; message: string } };
  return { status: response.status, error: json.error };
}

test('conversation: a response id (string or {id}) continues that chat, as previous_response_id does', async () => {
  const first = await client.responses.create({ model: 'kimi', input: 'hi' });
  await client.responses.create({ model: 'kimi', input: 'and then?', conversation: first.id });
  assert.equal(chat.requests.at(-1)?.conversationId, first.id.slice('resp_'.length));
  await client.responses.create({ model: 'kimi', input: 'once more', conversation: { id: first.id } });
  assert.equal(chat.requests.at(-1)?.conversationId, first.id.slice('resp_'.length));
});

test('conversation: any other id is a 400 naming conversation (no Conversations API); with previous_response_id too', async () => {
  const before = chat.requests.length;
  for (const conversation of ['conv_123', { id: 'conv_123' }, '', 42]) {
    const result = await postResponses({ model: 'kimi', input: 'x', conversation });
    assert.equal(result.status, 400, JSON.stringify(conversation));
    assert.equal(result.error.param, 'conversation');
  }
  assert.match((await postResponses({ model: 'kimi', input: 'x', conversation: 'conv_123' })).error.message, /previous_response_id/);
  const both = await postResponses({ model: 'kimi', input: 'x', conversation: 'resp_chat-1', previous_response_id: 'resp_chat-1' });
  assert.equal(both.status, 400);
  assert.equal(both.error.param, 'conversation');
  assert.equal(chat.requests.length, before, 'no chat was started');
  const unstored = await postResponses({ model: 'kimi', input: 'x', conversation: 'resp_nostore_abc' });
  assert.equal(unstored.status, 404);
  assert.equal(unstored.error.code, 'response_not_found');
});

test('previous_response_id "resp_" (nothing after the prefix) is 404 response_not_found, not a new chat', async () => {
  const before = chat.requests.length;
  const result = await postResponses({ model: 'kimi', input: 'x', previous_response_id: 'resp_' });
  assert.equal(result.status, 404);
  assert.equal(result.error.code, 'response_not_found');
  assert.equal(result.error.param, 'previous_response_id');
  assert.equal(chat.requests.length, before);
});

test('a content part whose text is not a string is a 400 naming it, never the prompt "[object Object]"', async () => {
  const before = chat.requests.length;
  for (const [type, text] of [['input_text', { a: 1 }], ['input_text', 5], ['output_text', [1]]] as const) {
    const role = type === 'output_text' ? 'assistant' : 'user';
    const result = await postResponses({ model: 'kimi', input: [{ role, content: [{ type, text }] }] });
    assert.equal(result.status, 400, `${type} ${JSON.stringify(text)}`);
    assert.equal(result.error.param, 'input[0].content[0].text');
  }
  const refusal = await postResponses({ model: 'kimi', input: [{ role: 'assistant', content: [{ type: 'refusal', refusal: {} }] }, { role: 'user', content: 'x' }] });
  assert.equal(refusal.error.param, 'input[0].content[0].refusal');
  assert.equal(chat.requests.length, before);
});

test('max_output_tokens below 1, temperature outside [0, 2] and top_p outside [0, 1] are 400s naming the field', async () => {
  const cases: [string, number][] = [['max_output_tokens', 0], ['max_output_tokens', -5], ['temperature', -0.1], ['temperature', 2.5], ['top_p', -1], ['top_p', 1.5]];
  for (const [field, value] of cases) {
    const result = await postResponses({ model: 'kimi', input: 'x', [field]: value });
    assert.equal(result.status, 400, `${field}=${value}`);
    assert.equal(result.error.param, field);
  }
  const edges = await client.responses.create({ model: 'kimi', input: 'x', max_output_tokens: 1, temperature: 2, top_p: 0 });
  assert.deepEqual([edges.max_output_tokens, edges.temperature, edges.top_p], [1, 2, 0]);
});
