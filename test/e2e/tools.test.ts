/**
 * Tool calling end to end (issue 9): real SDK clients → gateway → simulator, every scenario × stream and
 * non-stream × the three client APIs, plus multi-step loops. The simulator follows the gateway's grammar
 * (simulator/tool-replies.ts); this measures the emulation against the simulator, not against live Kimi.
 * Set TOOL_MATRIX_OUT=path to write the observed matrix as JSON (docs/tool-calling.md is made from it).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { z } from 'zod';
import { startStack, type Stack } from '../support/stack.ts';
import { runTurn, type Api, type TurnInput, type TurnOutcome } from './tool-matrix-clients.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(() => stack?.close());

const weather = { name: 'get_weather', description: 'Current weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const time = { name: 'get_time', description: 'Current time in a zone', parameters: { type: 'object', properties: { zone: { type: 'string', enum: ['CET', 'UTC'] } }, required: ['zone'] } };
const weatherCall = { name: 'get_weather', arguments: { city: 'sim-city' } };
const timeCall = { name: 'get_time', arguments: { zone: 'CET' } };

interface Scenario {
  name: string;
  input: TurnInput;
  /** Set on the simulated account for the whole turn (repair rounds included). */
  accountScenario?: 'tools-malformed';
  expected: Pick<TurnOutcome, 'calls' | 'finish' | 'repairs'> & { errorCode?: string };
}

const scenarios: Scenario[] = [
  { name: 'one call, text before it', input: { prompt: 'Weather in Paris? Use get_weather.', tools: [weather, time] }, expected: { calls: [weatherCall], finish: 'tool-calls', repairs: 0 } },
  { name: 'two calls at once', input: { prompt: 'Use get_weather and get_time.', tools: [weather, time] }, expected: { calls: [weatherCall, timeCall], finish: 'tool-calls', repairs: 0 } },
  { name: 'parallel calls off', input: { prompt: 'Use get_weather and get_time.', tools: [weather, time], parallel: false }, expected: { calls: [weatherCall], finish: 'tool-calls', repairs: 0 } },
  { name: 'named tool_choice', input: { prompt: 'Use get_weather.', tools: [weather, time], choice: { name: 'get_time' } }, expected: { calls: [timeCall], finish: 'tool-calls', repairs: 0 } },
  { name: 'malformed call, repaired', input: { prompt: 'Weather? get_weather [[sim:tools-malformed]]', tools: [weather, time] }, expected: { calls: [weatherCall], finish: 'tool-calls', repairs: 1 } },
  { name: 'unknown tool, repaired', input: { prompt: 'Weather? get_weather [[sim:tools-unknown-tool]]', tools: [weather, time] }, expected: { calls: [weatherCall], finish: 'tool-calls', repairs: 1 } },
  { name: 'tools ignored, tool_choice auto', input: { prompt: 'Say hi [[sim:tools-ignored]]', tools: [weather, time] }, expected: { calls: [], finish: 'stop', repairs: 0 } },
  { name: 'tools ignored, tool_choice required', input: { prompt: 'Say hi [[sim:tools-ignored]]', tools: [weather, time], choice: 'required' }, expected: { calls: [weatherCall], finish: 'tool-calls', repairs: 1 } },
  { name: 'malformed twice: clear error', input: { prompt: 'Weather? get_weather', tools: [weather, time] }, accountScenario: 'tools-malformed', expected: { calls: [], finish: 'other', repairs: 1, errorCode: 'tool_call_invalid' } },
];

const apis: Api[] = ['chat', 'responses', 'anthropic'];
const observed: (TurnOutcome & { scenario: string; api: Api; stream: boolean })[] = [];

for (const scenario of scenarios) {
  test(`matrix: ${scenario.name} × stream/non-stream × chat/responses/anthropic`, async () => {
    for (const api of apis) {
      for (const stream of [false, true]) {
        if (scenario.accountScenario) stack.simulator.setScenario(scenario.accountScenario, { userId: stack.accounts[0].userId });
        const outcome = await runTurn(stack, api, stream, scenario.input).finally(() => stack.simulator.reset());
        observed.push({ ...outcome, scenario: scenario.name, api, stream });
        const where = `${api} ${stream ? 'stream' : 'non-stream'}`;
        assert.deepEqual(outcome.calls, scenario.expected.calls, `${where}: calls`);
        assert.equal(outcome.finish, scenario.expected.finish, `${where}: finish`);
        assert.equal(outcome.repairs, scenario.expected.repairs, `${where}: repair rounds`);
        assert.equal(outcome.error?.code, scenario.expected.errorCode, `${where}: error`);
        assert.doesNotMatch(outcome.text, /tool_call|<tools>/, `${where}: the grammar never reaches content`);
      }
    }
  });
}

test('matrix summary: repair rate over every tool-offering turn', () => {
  const repaired = observed.filter((row) => row.repairs > 0).length;
  assert.equal(observed.length, scenarios.length * 6);
  assert.equal(repaired, 4 * 6, 'repairs happen exactly in the four misbehaving scenarios');
  if (process.env.TOOL_MATRIX_OUT) writeFileSync(process.env.TOOL_MATRIX_OUT, JSON.stringify(observed, null, 2));
});

test('openai SDK: multi-step loop through the gateway (call → tool result → answer from the result)', async () => {
  const client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris? Use get_weather.' }];
  const tools = [{ type: 'function' as const, function: weather }];
  const first = await client.chat.completions.create({ model: 'kimi', messages, tools });
  const call = first.choices[0].message.tool_calls?.[0];
  assert.ok(call && call.type === 'function');
  messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '21°C and sunny' });
  const second = await client.chat.completions.create({ model: 'kimi', messages, tools });
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.match(second.choices[0].message.content ?? '', /^Simulated answer from 1 tool result\(s\).*21°C and sunny/);
});

const provider = () => createOpenAICompatible({ name: 'kimi', baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token });
const tools = () => ({ get_weather: tool({ description: 'Current weather for a city', inputSchema: z.object({ city: z.string() }), execute: async ({ city }: { city: string }) => `sunny in ${city}` }) });

test('AI SDK generateText with tools and stopWhen stepCountIs(3)', async () => {
  const result = await generateText({ model: provider()('kimi'), prompt: 'Weather? Use get_weather.', tools: tools(), stopWhen: stepCountIs(3) });
  assert.equal(result.steps.length, 2);
  assert.deepEqual(result.steps[0].toolCalls.map((call) => [call.toolName, call.input]), [['get_weather', { city: 'sim-city' }]]);
  assert.match(result.text, /Simulated answer from 1 tool result\(s\).*sunny in sim-city/);
});

test('AI SDK streamText with tools and stopWhen stepCountIs(3)', async () => {
  const result = streamText({ model: provider()('kimi'), prompt: 'Weather? Use get_weather.', tools: tools(), stopWhen: stepCountIs(3) });
  const types = new Set<string>();
  for await (const part of result.fullStream) types.add(part.type);
  assert.ok(types.has('tool-call') && types.has('tool-result') && types.has('text-delta'));
  assert.match(await result.text, /sunny in sim-city/);
});

test('bad tool input is a 400 in each API before anything goes upstream', async () => {
  const before = stack.simulator.requests.length;
  const openai = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
  const invalidSchema = { type: 'function' as const, function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'nope' } } } } };
  await assert.rejects(openai.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'x' }], tools: [invalidSchema] }), (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'tools[0].function.parameters');
  await assert.rejects(
    openai.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: weather }], tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'tool_choice',
  );
  await assert.rejects(
    openai.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 'call_x', content: 'r' }] }),
    (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'messages[1].tool_call_id',
  );
  const many = Array.from({ length: 129 }, (_unused, index) => ({ type: 'function' as const, function: { ...weather, name: `t${index}` } }));
  await assert.rejects(openai.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'x' }], tools: many }), (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'tools');
  const chatRequests = stack.simulator.requests.slice(before).filter((request) => request.path.includes('Chat') || request.path.includes('completion'));
  assert.equal(chatRequests.length, 0, 'no upstream chat for a bad request');
});

test('CHAT_RETENTION_SECONDS=0: the first chat is deleted when its answer ends, so the repair replays it in a new chat', async () => {
  const shortLived = await startStack({ env: { CHAT_RETENTION_SECONDS: '0' } });
  try {
    const client = new OpenAI({ baseURL: `${shortLived.gatewayUrl}/v1`, apiKey: shortLived.token, maxRetries: 0 });
    const userId = shortLived.accounts[0].userId;
    shortLived.simulator.setScenario('tools-malformed', { userId, times: 1 });
    const completion = await client.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'Weather? Use get_weather.' }], tools: [{ type: 'function', function: weather }] });
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(JSON.parse(completion.choices[0].message.tool_calls?.[0].type === 'function' ? completion.choices[0].message.tool_calls[0].function.arguments : ''), { city: 'sim-city' });
    await shortLived.gateway.chat.idle();
    const chats = shortLived.simulator.chats(userId);
    assert.equal(chats.length, 2, 'the answer and its replayed repair');
    assert.ok(chats.every((chat) => chat.deleted));
  } finally {
    await shortLived.close();
  }
});

test('legacy history: an assistant function_call and its function result reach the prompt as a call and its result', async () => {
  const client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
  const before = stack.simulator.requests.length;
  const completion = await client.chat.completions.create({
    model: 'kimi',
    functions: [weather],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, function_call: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
      { role: 'function', name: 'get_weather', content: '22C sunny' },
    ],
  });
  assert.match(completion.choices[0].message.content ?? '', /Simulated answer from 1 tool result\(s\).*22C sunny/);
  const chat = stack.simulator.requests.slice(before).find((request) => request.path.includes('ChatService/Chat'));
  const prompt = JSON.stringify(chat?.bodyJson);
  assert.match(prompt, /assistant: <tool_call name=\\"get_weather\\" id=\\"call_fn_1\\">\{\\"city\\":\\"Paris\\"\}<\/tool_call>/, 'the call is in the prompt, in the grammar');
  assert.match(prompt, /tool: \[result of call_fn_1\] 22C sunny/, 'the result names the call it answers');
});
