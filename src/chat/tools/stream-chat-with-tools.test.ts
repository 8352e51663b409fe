/** The tool pipeline over a chat service: history rewrite, instructions, repair by continuation or replay (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotFoundError } from '../../errors.ts';
import { eachEvent, inBatchesOfOne, type ChatEvent } from '../../upstream/dialect.ts';
import type { ChatService, ChatStream } from '../chat-service.ts';
import type { ChatRequest } from '../chat-request.ts';
import { rewriteToolHistory, streamChatWithTools } from './stream-chat-with-tools.ts';
import type { ChatOutputEvent } from './tool-events.ts';
import { xmlTagGrammar } from './tool-grammar.ts';
import { planTools } from './tool-plan.ts';

function fakeChat(answer: (request: ChatRequest, index: number) => string | Error): ChatService & { requests: ChatRequest[] } {
  const requests: ChatRequest[] = [];
  return {
    requests,
    streamChat(request): ChatStream {
      const index = requests.push(request) - 1;
      const reply = answer(request, index);
      async function* events(): AsyncGenerator<ChatEvent> {
        if (reply instanceof Error) throw reply;
        yield { type: 'conversation-start', conversationId: request.conversationId ?? `chat-${index}` };
        yield { type: 'text-delta', text: reply };
        yield { type: 'finish', reason: 'stop' };
      }
      return { model: { publicId: 'kimi', thinking: false, search: false, silentSearch: false }, modelIsFallback: false, meta: { attempts: 1 }, batches: inBatchesOfOne(events()) };
    },
    deleteConversation: async () => undefined,
    idle: async () => undefined,
  };
}

async function collect(batches: AsyncIterable<readonly ChatOutputEvent[]>): Promise<ChatOutputEvent[]> {
  const out: ChatOutputEvent[] = [];
  for await (const event of eachEvent(batches)) out.push(event);
  return out;
}

const plan = planTools({ tools: [{ name: 'get_time', parameters: { type: 'object', properties: {} } }] });
const request: ChatRequest = {
  model: 'kimi',
  instructions: 'Extra.',
  messages: [
    { role: 'user', content: 'time?' },
    { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '12:00' },
    { role: 'user', content: 'and again?' },
  ],
};

test('earlier calls are written back in the grammar; the tool instructions follow the request instructions', async () => {
  const chat = fakeChat(() => '<tool_call name="get_time">{}</tool_call>');
  await collect(streamChatWithTools(chat, request, plan, new AbortController().signal).batches);
  const sent = chat.requests[0];
  assert.equal(sent.messages[1].content, 'Checking.\n<tool_call name="get_time" id="call_1">{}</tool_call>');
  assert.equal(sent.messages[1].tool_calls, undefined);
  assert.match(sent.instructions ?? '', /^Extra\.\n\n## Tools\n/);
  assert.deepEqual(rewriteToolHistory([{ role: 'user', content: 'x' }], xmlTagGrammar), [{ role: 'user', content: 'x' }]);
});

test('a repair continues the same chat with only the repair prompt', async () => {
  const chat = fakeChat((_request, index) => (index === 0 ? '<tool_call name="nope">{}</tool_call>' : '<tool_call name="get_time">{}</tool_call>'));
  const events = await collect(streamChatWithTools(chat, request, plan, new AbortController().signal).batches);
  assert.equal(chat.requests[1].conversationId, 'chat-0');
  assert.equal(chat.requests[1].messages.length, 1);
  assert.match(String(chat.requests[1].messages[0].content), /^Your previous answer could not be used/);
  assert.deepEqual(events.at(-1), { type: 'finish', reason: 'tool-calls' });
});

test('when the chat is already gone (retention 0), the exchange is replayed in a new chat', async () => {
  const chat = fakeChat((_request, index) =>
    index === 0 ? 'Oops <tool_call name="nope">{}</tool_call>' : index === 1 ? new NotFoundError('gone', { code: 'conversation_not_found' }) : '<tool_call name="get_time">{}</tool_call>',
  );
  const events = await collect(streamChatWithTools(chat, request, plan, new AbortController().signal).batches);
  const replay = chat.requests[2];
  assert.equal(replay.conversationId, undefined);
  assert.equal(replay.instructions, 'Extra.');
  assert.deepEqual(replay.messages.at(-2), { role: 'assistant', content: 'Oops <tool_call name="nope">{}</tool_call>' });
  assert.match(String(replay.messages.at(-1)?.content), /^Your previous answer could not be used/);
  assert.equal(events.filter((event) => event.type === 'tool-call-end').length, 1);
});

test('a stop sequence in the text after a call keeps the call: finish tool-calls, so agent loops run the tool', async () => {
  const chat = fakeChat(() => 'Checking.\n<tool_call name="get_time">{}</tool_call>\nI will wait.\nObservation: pending');
  const stopPlan = planTools({ tools: [{ name: 'get_time', parameters: { type: 'object', properties: {} } }], stopSequences: ['Observation:'] });
  const events = await collect(streamChatWithTools(chat, { ...request, estimateUsage: false }, stopPlan, new AbortController().signal).batches);
  assert.equal(events.filter((event) => event.type === 'tool-call-end').length, 1);
  assert.deepEqual(events.at(-1), { type: 'finish', reason: 'tool-calls' });
  assert.ok(!events.some((event) => event.type === 'text-delta' && event.text.includes('Observation')));
});

test('the response-format repair answer is cut at the stop sequence like the first answer', async () => {
  const chat = fakeChat((_request, index) => (index === 0 ? 'not json at all' : '{"a": "ok"}\nEND trailing'));
  const formatPlan = planTools({ responseFormat: { kind: 'json-object' }, stopSequences: ['END'] });
  const events = await collect(streamChatWithTools(chat, { ...request, estimateUsage: false }, formatPlan, new AbortController().signal).batches);
  const text = events.flatMap((event) => (event.type === 'text-delta' ? [event.text] : [])).join('');
  assert.deepEqual(JSON.parse(text), { a: 'ok' });
  assert.equal(chat.requests.length, 2, 'one repair round');
});
