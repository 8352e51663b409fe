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
