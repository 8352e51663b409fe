import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foldChatEvents } from '../chat/fold-chat-events.ts';
import type { ChatEvent } from '../upstream/dialect.ts';
import type { ChatOutputEvent } from '../chat/tools/tool-events.ts';
import { createChunkMapper, createSseChunkEncoder, toChatCompletion } from './to-openai.ts';

const events: ChatEvent[] = [
  { type: 'conversation-start', conversationId: 'chat-123' },
  { type: 'message-start', messageId: 'msg-9' },
  { type: 'reasoning-delta', text: 'think ' },
  { type: 'text-delta', text: '答案' },
  { type: 'search-source', source: { index: 1, title: 'T', url: 'https://example.com/', siteName: 'Ex' } },
  { type: 'usage', promptTokens: 5, completionTokens: 7, isEstimate: true },
  { type: 'finish', reason: 'stop' },
];

test('chunks: id is the upstream chat id, role on the first chunk, reasoning apart from content, sources on the final chunk', () => {
  const mapper = createChunkMapper({ model: 'kimi-search', includeUsage: true, created: 1 });
  const chunks = events.flatMap((event) => mapper.map(event));
  assert.equal(chunks.length, 4);
  assert.ok(chunks.every((chunk) => chunk.id === 'chat-123' && chunk.object === 'chat.completion.chunk' && chunk.model === 'kimi-search'));
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', reasoning_content: 'think ' });
  assert.deepEqual(chunks[1].choices[0].delta, { content: '答案' });
  assert.equal(chunks[2].choices[0].finish_reason, 'stop');
  assert.deepEqual(chunks[2].citations, ['https://example.com/']);
  assert.deepEqual(chunks[2].search_results, [{ index: 1, title: 'T', url: 'https://example.com/', site_name: 'Ex' }]);
  assert.deepEqual(chunks[3].choices, []);
  assert.deepEqual(chunks[3].usage, { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 });
  assert.equal(chunks[1].usage, null, 'with include_usage every other chunk carries usage: null, as OpenAI does');
});

test('without include_usage there is no usage chunk; content_filter is spelled the OpenAI way', () => {
  const mapper = createChunkMapper({ model: 'kimi', includeUsage: false });
  const chunks = [{ type: 'text-delta', text: 'x' } as const, { type: 'finish', reason: 'content-filter' } as const].flatMap((event) => mapper.map(event));
  assert.equal(chunks.length, 2);
  assert.equal(chunks[1].choices[0].finish_reason, 'content_filter');
  assert.equal('usage' in chunks[1], false);
});

test('the SSE encoder writes byte for byte what stringifying each chunk writes, for every kind of text', () => {
  const awkward = ['plain', '"quoted" \\ back\\slash', 'line\nbreak\ttab\u0001', '你好 🌏', '\u2028\u2029', '\uD83D', '</script>', ''];
  for (const includeUsage of [false, true]) {
    const sequence: ChatOutputEvent[] = [
      { type: 'message-start', messageId: 'm-1' },
      { type: 'text-delta', text: 'before the chat id' },
      { type: 'conversation-start', conversationId: 'chat-"odd"-id' },
      ...awkward.flatMap((text): ChatOutputEvent[] => [{ type: 'reasoning-delta', text }, { type: 'text-delta', text }]),
      { type: 'usage', promptTokens: 1, completionTokens: 2, isEstimate: true },
      { type: 'finish', reason: 'stop' },
    ];
    const options = { model: 'kimi "k2"', includeUsage, created: 1_700_000_000 };
    const mapper = createChunkMapper(options);
    const expected = sequence.map((event) => mapper.map(event).map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join(''));
    const encoder = createSseChunkEncoder(options);
    // Before the chat id arrives each side makes its own random chatcmpl- id.
    const sameId = (texts: string[]) => texts.map((text) => text.replace(/chatcmpl-[0-9a-f-]+/g, 'chatcmpl-random'));
    assert.deepEqual(sameId(sequence.map((event) => encoder.encode(event))), sameId(expected));
  }
});

test('the folded completion carries the same content, reasoning, sources and usage', async () => {
  async function* source() {
    yield* events;
  }
  const completion = toChatCompletion(await foldChatEvents(source()), 'kimi', 1);
  assert.equal(completion.id, 'chat-123');
  assert.deepEqual(completion.choices[0].message, { role: 'assistant', content: '答案', refusal: null, reasoning_content: 'think ' });
  assert.equal(completion.usage.total_tokens, 12);
  assert.deepEqual(completion.citations, ['https://example.com/']);
});

test('a stream that ends without finish is an upstream error, not a truncated answer', async () => {
  async function* source(): AsyncGenerator<ChatEvent> {
    yield { type: 'text-delta', text: 'partial' };
  }
  await assert.rejects(foldChatEvents(source()), (error: { status?: number }) => error.status === 502);
});
