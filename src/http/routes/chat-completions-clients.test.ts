/** /v1/chat/completions tool calling with real clients over loopback: openai SDK loop, AI SDK multi-step (issue 9). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { z } from 'zod';
import { chatCompletionsRoute } from './chat-completions.ts';
import { createScriptedChat, startRouteServer, toolFollower, type RouteServer } from './route-test-kit.ts';

const chat = createScriptedChat(toolFollower('get_weather', '{"city":"Paris"}'));
let server: RouteServer;
let client: OpenAI;

before(async () => {
  server = await startRouteServer((deps) => [{ method: 'POST', path: '/v1/chat/completions', handler: chatCompletionsRoute(deps) }], chat);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'kimi-token', maxRetries: 0 });
});
after(() => server.close());

const tools: OpenAI.Chat.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];

test('openai SDK: a multi-step loop (call, tool result, answer), streaming and not', async () => {
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
  const first = await client.chat.completions.create({ model: 'kimi', messages, tools });
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  const call = first.choices[0].message.tool_calls?.[0];
  assert.ok(call && call.type === 'function');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '21°C' });
  const stream = client.chat.completions.stream({ model: 'kimi', messages, tools });
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'stop');
  assert.equal(final.choices[0].message.content, 'The tool says: done 完成.');
  const flattened = chat.requests.at(-1)!.messages;
  assert.match(String(flattened[1].content), /<tool_call name="get_weather" id="call_[A-Za-z0-9]+">\{"city":"Paris"\}<\/tool_call>/, 'the earlier call is written back in the grammar');
});

test('openai SDK: streamed tool_calls accumulate into one call', async () => {
  const stream = client.chat.completions.stream({ model: 'kimi', messages: [{ role: 'user', content: 'Weather?' }], tools });
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.equal(final.choices[0].message.content, 'Calling it. ');
  assert.equal(final.choices[0].message.tool_calls?.[0].type === 'function' && final.choices[0].message.tool_calls[0].function.arguments, '{"city":"Paris"}');
});

const provider = () => createOpenAICompatible({ name: 'kimi', baseURL: `${server.url}/v1`, apiKey: 'kimi-token' });
const weatherTool = () => tool({ description: 'Weather', inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => `sunny in ${city}` });

test('AI SDK generateText: tools and stopWhen stepCountIs(3) run the tool and finish with text', async () => {
  const result = await generateText({ model: provider()('kimi'), prompt: 'Weather in Paris?', tools: { get_weather: weatherTool() }, stopWhen: stepCountIs(3) });
  assert.equal(result.steps.length, 2);
  assert.deepEqual(result.steps[0].toolCalls.map((call) => [call.toolName, call.input]), [['get_weather', { city: 'Paris' }]]);
  assert.equal(result.steps[0].toolResults[0].output, 'sunny in Paris');
  assert.equal(result.text, 'The tool says: done 完成.');
});

test('AI SDK streamText: the same loop over streamed chunks', async () => {
  const result = streamText({ model: provider()('kimi'), prompt: 'Weather in Paris?', tools: { get_weather: weatherTool() }, stopWhen: stepCountIs(3) });
  const parts: string[] = [];
  for await (const part of result.fullStream) parts.push(part.type);
  assert.ok(parts.includes('tool-call') && parts.includes('tool-result'));
  assert.equal(await result.text, 'The tool says: done 完成.');
  assert.equal((await result.steps).length, 2);
});
