/** Tool-call emulation over chat events: hold-back, validation, the one repair round (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChatEvent } from '../../upstream/dialect.ts';
import { ARGUMENT_DELTA_CHARS, emulateToolCalls } from './tool-call-stream.ts';
import type { ChatOutputEvent, RepairRound, ToolChoice } from './tool-events.ts';
import { planTools } from './tool-plan.ts';

const weather = { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } };
const time = { name: 'get_time', parameters: { type: 'object', properties: {} } };

function plan(choice: ToolChoice = { kind: 'auto' }, parallelToolCalls = true) {
  return planTools({ tools: [weather, time], choice, parallelToolCalls });
}

function answer(...texts: string[]): ChatEvent[] {
  return [
    { type: 'conversation-start', conversationId: 'chat-1' },
    { type: 'message-start', messageId: 'm-1' },
    ...texts.map((text) => ({ type: 'text-delta', text }) as const),
    { type: 'usage', promptTokens: 10, completionTokens: 5, isEstimate: true },
    { type: 'finish', reason: 'stop' },
  ];
}

async function* from(events: ChatEvent[]): AsyncGenerator<ChatEvent> {
  yield* events;
}

async function collect(source: AsyncIterable<ChatOutputEvent>): Promise<ChatOutputEvent[]> {
  const out: ChatOutputEvent[] = [];
  for await (const event of source) out.push(event);
  return out;
}

function recordingRepair(replies: ChatEvent[][]): RepairRound & { calls: { conversationId: string; instruction: string }[] } {
  const calls: { conversationId: string; instruction: string }[] = [];
  const repair = (request: { conversationId: string; instruction: string }) => {
    calls.push(request);
    return from(replies[calls.length - 1] ?? answer('still nothing'));
  };
  return Object.assign(repair, { calls });
}

const textOf = (events: ChatOutputEvent[]) => events.flatMap((event) => (event.type === 'text-delta' ? [event.text] : [])).join('');
const callsOf = (events: ChatOutputEvent[]) =>
  events.flatMap((event) => (event.type === 'tool-call-end' ? [{ index: event.index, arguments: event.arguments }] : []));

test('hold-back: plain text comes out as soon as it arrives, before the upstream sends more', async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  async function* slow(): AsyncGenerator<ChatEvent> {
    yield { type: 'conversation-start', conversationId: 'chat-1' };
    yield { type: 'text-delta', text: 'Hello 世界 <b>' };
    await gate;
    yield { type: 'finish', reason: 'stop' };
  }
  const iterator = emulateToolCalls(slow(), { plan: plan() })[Symbol.asyncIterator]();
  assert.deepEqual((await iterator.next()).value, { type: 'conversation-start', conversationId: 'chat-1' });
  assert.deepEqual((await iterator.next()).value, { type: 'text-delta', text: 'Hello 世界 <b>' });
  release();
  assert.deepEqual((await iterator.next()).value, { type: 'finish', reason: 'stop' });
});

test('calls become start/delta/end events with ids and indexes, finish reason tool-calls', async () => {
  const events = await collect(emulateToolCalls(from(answer('Checking. <tool_call name="get_weather">{"city":', '"Paris"}</tool_call><tool_call name="get_time">{}</tool_call>')), { plan: plan() }));
  assert.equal(events[0].type, 'conversation-start', 'meta events come before the first content');
  assert.equal(textOf(events), 'Checking. ');
  assert.deepEqual(callsOf(events), [{ index: 0, arguments: '{"city":"Paris"}' }, { index: 1, arguments: '{}' }]);
  const starts = events.filter((event) => event.type === 'tool-call-start');
  assert.deepEqual(starts.map((event) => event.name), ['get_weather', 'get_time']);
  assert.ok(starts.every((event) => /^call_[A-Za-z0-9]{24}$/.test(event.id)));
  const deltas = events.filter((event) => event.type === 'tool-call-delta' && event.index === 0).map((event) => (event as { argumentsDelta: string }).argumentsDelta);
  assert.equal(deltas.join(''), '{"city":"Paris"}');
  assert.deepEqual(events.at(-2), { type: 'usage', promptTokens: 10, completionTokens: 5, isEstimate: true });
  assert.deepEqual(events.at(-1), { type: 'finish', reason: 'tool-calls' });
});

test('arguments that break the schema get one repair round on the same chat; the repaired call is emitted', async () => {
  const repair = recordingRepair([answer('Sorry! <tool_call name="get_weather">{"city":"Paris"}</tool_call>')]);
  const problems: string[][] = [];
  const events = await collect(
    emulateToolCalls(from(answer('Let me see. <tool_call name="get_weather">{"town":"Paris"}</tool_call>')), { plan: plan(), repair, onRepair: (list) => problems.push([...list]) }),
  );
  assert.equal(repair.calls.length, 1);
  assert.equal(repair.calls[0].conversationId, 'chat-1');
  assert.match(repair.calls[0].instruction, /^Your previous answer could not be used: the arguments of "get_weather" do not match its schema: .*city/);
  assert.match(repair.calls[0].instruction, /<tools>/, 'the repair repeats the tool list and the format');
  assert.equal(problems.length, 1);
  assert.equal(textOf(events), 'Let me see. ', "the repair round's own prose is not content");
  assert.deepEqual(callsOf(events), [{ index: 0, arguments: '{"city":"Paris"}' }]);
  assert.deepEqual(events.find((event) => event.type === 'usage'), { type: 'usage', promptTokens: 20, completionTokens: 10, isEstimate: true }, 'usage covers both rounds');
  assert.deepEqual(events.at(-1), { type: 'finish', reason: 'tool-calls' });
});

test('a second failure is a 502 tool_call_invalid, and no broken call was emitted before it', async () => {
  const repair = recordingRepair([answer('<tool_call name="get_weather">{"city": </tool_call>')]);
  const seen: ChatOutputEvent[] = [];
  await assert.rejects(
    (async () => {
      for await (const event of emulateToolCalls(from(answer('<tool_call name="get_weather">{broken</tool_call>')), { plan: plan(), repair })) seen.push(event);
    })(),
    (error: { status?: number; code?: string; message?: string }) => error.status === 502 && error.code === 'tool_call_invalid' && /even after one repair round/.test(error.message ?? ''),
  );
  assert.equal(repair.calls.length, 1, 'at most one repair round');
  assert.equal(seen.some((event) => event.type.startsWith('tool-call')), false);
  assert.equal(seen.some((event) => event.type === 'text-delta' && event.text.includes('tool_call')), false, 'the grammar never leaks into content');
});

test('a call to an unknown tool is repaired; without a repair callback it fails at once', async () => {
  const repair = recordingRepair([answer('<tool_call name="get_time">{}</tool_call>')]);
  const events = await collect(emulateToolCalls(from(answer('<tool_call name="launch_rocket">{}</tool_call>')), { plan: plan(), repair }));
  assert.match(repair.calls[0].instruction, /"launch_rocket", which does not exist \(the tools are: get_weather, get_time\)/);
  assert.deepEqual(callsOf(events), [{ index: 0, arguments: '{}' }]);
  await assert.rejects(collect(emulateToolCalls(from(answer('<tool_call name="launch_rocket">{}</tool_call>')), { plan: plan() })), /does not exist/);
});

test('tool_choice required: a text-only answer is held back, repaired once, and its text dropped', async () => {
  const repair = recordingRepair([answer('<tool_call name="get_time">{}</tool_call>')]);
  const events = await collect(emulateToolCalls(from(answer('I think it is sunny.')), { plan: plan({ kind: 'required' }), repair }));
  assert.match(repair.calls[0].instruction, /it called no tool, but a tool call is required/);
  assert.equal(textOf(events), '');
  assert.equal(callsOf(events).length, 1);
  const failing = recordingRepair([answer('Still sunny.')]);
  await assert.rejects(collect(emulateToolCalls(from(answer('Sunny.')), { plan: plan({ kind: 'required' }), repair: failing })), (error: { code?: string }) => error.code === 'tool_call_invalid');
});

test('tool_choice required: text before the call is released with the call', async () => {
  const events = await collect(emulateToolCalls(from(answer('One moment. ', '<tool_call name="get_time">{}</tool_call>')), { plan: plan({ kind: 'required' }) }));
  assert.equal(events.findIndex((event) => event.type === 'text-delta') < events.findIndex((event) => event.type === 'tool-call-start'), true);
  assert.equal(textOf(events), 'One moment. ');
});

test('a named tool_choice refuses a call to another tool', async () => {
  const repair = recordingRepair([answer('<tool_call name="get_weather">{"city":"Oslo"}</tool_call>')]);
  const events = await collect(emulateToolCalls(from(answer('<tool_call name="get_time">{}</tool_call>')), { plan: plan({ kind: 'function', name: 'get_weather' }), repair }));
  assert.match(repair.calls[0].instruction, /the tool "get_weather" must be called/);
  assert.deepEqual(callsOf(events), [{ index: 0, arguments: '{"city":"Oslo"}' }]);
});

test('parallel_tool_calls false keeps only the first call', async () => {
  const events = await collect(emulateToolCalls(from(answer('<tool_call name="get_time">{}</tool_call><tool_call name="get_weather">{"city":"A"}</tool_call>')), { plan: plan({ kind: 'auto' }, false) }));
  assert.deepEqual(callsOf(events), [{ index: 0, arguments: '{}' }]);
});

test('a repair that repeats an accepted call does not duplicate it', async () => {
  const repair = recordingRepair([answer('<tool_call name="get_time">{}</tool_call><tool_call name="get_weather">{"city":"B"}</tool_call>')]);
  const events = await collect(emulateToolCalls(from(answer('<tool_call name="get_time">{}</tool_call><tool_call name="get_weather">{}</tool_call>')), { plan: plan(), repair }));
  assert.deepEqual(callsOf(events), [{ index: 0, arguments: '{}' }, { index: 1, arguments: '{"city":"B"}' }]);
});

test('an answer cut off inside a call (finish length) is repaired, and the finish reason is tool-calls', async () => {
  const cut: ChatEvent[] = [{ type: 'conversation-start', conversationId: 'c' }, { type: 'text-delta', text: '<tool_call name="get_weather">{"ci' }, { type: 'finish', reason: 'length' }];
  const repair = recordingRepair([answer('<tool_call name="get_weather">{"city":"C"}</tool_call>')]);
  const events = await collect(emulateToolCalls(from(cut), { plan: plan(), repair }));
  assert.match(repair.calls[0].instruction, /ended inside/);
  assert.deepEqual(events.at(-1), { type: 'finish', reason: 'tool-calls' });
});

test('reasoning streams through; an upstream that never finishes is passed on without a finish', async () => {
  const events = await collect(emulateToolCalls(from([{ type: 'reasoning-delta', text: 'hmm' }, { type: 'text-delta', text: 'partial <tool' }]), { plan: plan() }));
  assert.deepEqual(events[0], { type: 'reasoning-delta', text: 'hmm' });
  assert.equal(textOf(events), 'partial <tool', 'held text is released when the stream ends');
  assert.equal(events.some((event) => event.type === 'finish'), false);
});

test('argument deltas never split a surrogate pair: each piece decodes on its own (Python and Go decode per delta)', async () => {
  // The opening `{"city":"` is 9 characters: the emoji's first half lands on the last place of the first piece.
  const city = `${'a'.repeat(ARGUMENT_DELTA_CHARS - 10)}🌏${'b'.repeat(600)}`;
  const events = await collect(emulateToolCalls(from(answer(`<tool_call name="get_weather">{"city":"${city}"}</tool_call>`)), { plan: plan() }));
  const deltas = events.flatMap((event) => (event.type === 'tool-call-delta' ? [event.argumentsDelta] : []));
  assert.ok(deltas.length > 1, 'long arguments come in several pieces');
  assert.equal(deltas.join(''), `{"city":"${city}"}`);
  for (const delta of deltas) assert.equal(delta, Buffer.from(delta, 'utf8').toString('utf8'), `no lone surrogate in ${JSON.stringify(delta.slice(-3))}`);
});
