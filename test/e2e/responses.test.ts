/**
 * POST /v1/responses end to end (issue 9): the openai SDK → gateway → simulator. previous_response_id
 * continues the same upstream chat on the same account (two accounts in the pool prove the affinity).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack.ts';

let stack: Stack;
let client: OpenAI;
before(async () => {
  stack = await startStack({ accounts: 2 });
  client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
});
after(() => stack?.close());

const tools: OpenAI.Responses.Tool[] = [{ type: 'function', name: 'get_weather', description: 'Weather', strict: false, parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

function chatsHolding(conversationId: string) {
  return stack.accounts.flatMap((account) => stack.simulator.chats(account.userId).filter((chat) => chat.id === conversationId).map((chat) => ({ account: account.userId, chat })));
}

test('responses.create: instructions and input; the id names the upstream chat', async () => {
  const response = await client.responses.create({ model: 'kimi', instructions: 'Be brief.', input: 'Hello 你好' });
  assert.equal(response.status, 'completed');
  assert.match(response.output_text, /^Simulated reply to: "system: Be brief\. user: Hello 你好"/);
  assert.equal(chatsHolding(response.id.slice('resp_'.length)).length, 1);
  assert.ok((response.usage?.input_tokens ?? 0) > 0);
});

test('a function call, then previous_response_id with function_call_output continues the same chat on the same account', async () => {
  const first = await client.responses.create({ model: 'kimi', input: 'Weather in Paris? Use get_weather.', tools });
  const call = first.output.find((item) => item.type === 'function_call');
  assert.ok(call && call.type === 'function_call');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'sim-city' });
  const holders = chatsHolding(first.id.slice('resp_'.length));
  assert.equal(holders.length, 1);
  for (let turn = 0; turn < 3; turn += 1) {
    // Several continuations: with two accounts, a wrong pick would fail to find the chat.
    const next: OpenAI.Responses.Response = await client.responses.create({ model: 'kimi', previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: `${20 + turn}°C` }], tools });
    assert.match(next.output_text, new RegExp(`^Simulated answer from 1 tool result\\(s\\).*${20 + turn}°C`));
    assert.equal(next.id, first.id, 'the continued chat keeps its id');
  }
  const chat = chatsHolding(first.id.slice('resp_'.length))[0];
  assert.equal(chat.account, holders[0].account);
  assert.equal(chat.chat.messages.filter((message) => message.role === 'user').length, 4);
});

test('responses.stream: semantic events, reasoning items for a thinking model', async () => {
  const stream = client.responses.stream({ model: 'kimi-thinking', input: 'Think, then answer.' });
  const types: string[] = [];
  for await (const event of stream) types.push(event.type);
  const final = await stream.finalResponse();
  assert.deepEqual(types.slice(0, 2), ['response.created', 'response.in_progress']);
  assert.ok(types.includes('response.reasoning_text.delta') && types.includes('response.output_text.delta'));
  assert.equal(types.at(-1), 'response.completed');
  assert.deepEqual(final.output.map((item) => item.type), ['reasoning', 'message']);
});

test('store: false: the id cannot be continued', async () => {
  const response = await client.responses.create({ model: 'kimi', input: 'private', store: false });
  assert.match(response.id, /^resp_nostore_/);
  await assert.rejects(client.responses.create({ model: 'kimi', input: 'again', previous_response_id: response.id }), (error: { status?: number }) => error.status === 404);
});

test('an upstream failure after the first byte ends the stream with response.failed and an error', async () => {
  const stream = client.responses.stream({ model: 'kimi', input: 'Tell me [[sim:exception-mid-stream]]' });
  const types: string[] = [];
  await assert.rejects(async () => {
    for await (const event of stream) types.push(event.type);
  });
  assert.ok(types.includes('response.output_text.delta'));
  assert.ok(types.includes('response.failed'));
});

test('previous_response_id naming a chat already deleted (CHAT_RETENTION_SECONDS=0) is 404 response_not_found about previous_response_id', async (t) => {
  const own = await startStack({ env: { CHAT_RETENTION_SECONDS: '0' } });
  t.after(() => own.close());
  const ownClient = new OpenAI({ baseURL: `${own.gatewayUrl}/v1`, apiKey: own.token, maxRetries: 0 });
  const first = await ownClient.responses.create({ model: 'kimi', input: 'remember 42' });
  await own.gateway.chat.idle();
  const gone = await ownClient.responses.create({ model: 'kimi', input: 'what number?', previous_response_id: first.id }).catch((error: unknown) => error);
  assert.ok(gone instanceof OpenAI.NotFoundError, String(gone));
  assert.equal((gone.error as { code?: string }).code, 'response_not_found');
  assert.equal((gone.error as { param?: string }).param, 'previous_response_id');
});
