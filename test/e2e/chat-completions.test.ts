/**
 * End to end with real clients (the `openai` SDK and the Vercel AI SDK) against the real gateway and
 * the upstream simulator, for both dialects (issues 2 and 3: the same tests, parameterised).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { simulatedReply, simulatedThinkingText } from '../../simulator/reply-text.ts';
import { startStack, type Stack } from '../support/stack.ts';

const dialects = [
  { name: 'current', tokenKind: 'current' as const },
  { name: 'legacy', tokenKind: 'legacy' as const },
];

for (const dialect of dialects) {
  describe(`chat completions on the ${dialect.name} dialect`, () => {
    let stack: Stack;
    let client: OpenAI;

    before(async () => {
      stack = await startStack({ tokenKind: dialect.tokenKind, env: { CHAT_RETENTION_SECONDS: '0' } });
      client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
    });
    after(() => stack.close());

    const expected = (userText: string, turn = 1, search = false) =>
      simulatedReply({ userText, turn, search, markerStyle: dialect.name === 'legacy' ? 'none' : 'e3a3' }).plainText;

    test('non-streaming: chat.completion shape, id is the upstream chat id, usage estimated (not 1/1/2)', async () => {
      const completion = await client.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'Hello 你好' }] });
      assert.equal(completion.object, 'chat.completion');
      assert.equal(completion.model, 'kimi');
      assert.equal(completion.choices[0].message.role, 'assistant');
      assert.equal(completion.choices[0].message.content, expected('Hello 你好'));
      assert.equal(completion.choices[0].finish_reason, 'stop');
      const chats = stack.simulator.chats(stack.accounts[0].userId);
      assert.ok(chats.some((chat) => chat.id === completion.id), 'response id names the upstream chat');
      assert.ok(completion.usage && completion.usage.completion_tokens > 10 && completion.usage.prompt_tokens >= 2);
      assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
    });

    test('streaming with include_usage: role first, byte-exact text, finish then a usage chunk, [DONE]', async () => {
      const stream = await client.chat.completions.create({
        model: 'kimi',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'Stream 流式 🚀 please' }],
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks[0].choices[0].delta.role, 'assistant');
      const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
      assert.equal(text, expected('Stream 流式 🚀 please'));
      const finishChunk = chunks.find((chunk) => chunk.choices[0]?.finish_reason);
      assert.equal(finishChunk?.choices[0].finish_reason, 'stop');
      const last = chunks.at(-1)!;
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage && last.usage.completion_tokens > 0);
      assert.ok(new Set(chunks.map((chunk) => chunk.id)).size === 1);
    });

    test('multi-turn: the history is flattened into one upstream message (spec §3.8 item 3)', async () => {
      const before = stack.simulator.requests.length;
      await client.chat.completions.create({
        model: 'kimi',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'first' },
          { role: 'assistant', content: 'one' },
          { role: 'user', content: [{ type: 'text', text: 'second' }] },
        ],
      });
      const sent = stack.simulator.requests.slice(before).map((request) => request.bodyText ?? '').join('\n');
      assert.match(sent, /system: Be brief\.\\n\\nuser: first\\n\\nassistant: one\\n\\nuser: second/);
    });

    test('conversation_id continues the upstream chat with only the new message, and that chat is kept', async () => {
      const first = await client.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'remember 42' }] });
      // CHAT_RETENTION_SECONDS=0 deletes temporary chats; a continued chat must exist, so use a stack that keeps it.
      const keep = await startStack({ tokenKind: dialect.tokenKind, existingSimulator: stack.simulator, env: { CHAT_RETENTION_SECONDS: '-1' } });
      try {
        const keepClient = new OpenAI({ baseURL: `${keep.gatewayUrl}/v1`, apiKey: keep.token, maxRetries: 0 });
        const opening = await keepClient.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'remember 42' }] });
        const requestsBefore = keep.simulator.requests.length;
        const next = await keepClient.chat.completions.create({
          model: 'kimi',
          messages: [
            { role: 'user', content: 'remember 42' },
            { role: 'assistant', content: opening.choices[0].message.content ?? '' },
            { role: 'user', content: 'what number?' },
          ],
          // @ts-expect-error gateway extension
          conversation_id: opening.id,
        });
        assert.equal(next.id, opening.id);
        assert.equal(next.choices[0].message.content, expected('what number?', 2));
        const sent = keep.simulator.requests.slice(requestsBefore).map((request) => request.bodyText ?? '').join('\n');
        assert.doesNotMatch(sent, /remember 42/, 'only the new message goes upstream');
        const chat = keep.simulator.chats(keep.accounts[0].userId).find((candidate) => candidate.id === opening.id);
        assert.ok(chat && !chat.deleted);
      } finally {
        await keep.close();
      }
      assert.ok(first.id);
    });

    test('the temporary chat is deleted after the answer (CHAT_RETENTION_SECONDS=0, spec §10.3)', async () => {
      const completion = await client.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'delete me' }] });
      await stack.gateway.chat.idle();
      const chat = stack.simulator.chats(stack.accounts[0].userId).find((candidate) => candidate.id === completion.id);
      assert.equal(chat?.deleted, true);
    });

    test('thinking streams as reasoning_content, never inside content', async () => {
      const stream = await client.chat.completions.create({ model: 'kimi-thinking', stream: true, messages: [{ role: 'user', content: '17*23?' }] });
      let reasoning = '';
      let content = '';
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
        reasoning += delta?.reasoning_content ?? '';
        content += delta?.content ?? '';
      }
      assert.equal(reasoning, simulatedThinkingText('17*23?', 1));
      assert.equal(content, expected('17*23?'));
    });

    test('search: sources appended as a numbered markdown list and returned in citations', async () => {
      const completion = await client.chat.completions.create({ model: 'kimi-search', messages: [{ role: 'user', content: 'weather in Beijing' }] });
      const reply = simulatedReply({ userText: 'weather in Beijing', turn: 1, search: true });
      const content = completion.choices[0].message.content ?? '';
      for (const [index, source] of reply.sources.entries()) {
        assert.ok(content.includes(`${index + 1}. [${source.title}](${source.url})`), `source ${index + 1} listed`);
      }
      const extra = completion as unknown as { citations?: string[]; search_results?: { url: string }[] };
      assert.deepEqual(extra.citations, reply.sources.map((source) => source.url));
      assert.doesNotMatch(content, /[\uE3A0-\uE3A8]/u, 'no private-use citation markers leak');
    });

    test('silent_search searches without writing sources into the answer', async () => {
      const completion = await client.chat.completions.create({ model: 'kimi-silent_search', messages: [{ role: 'user', content: 'weather in Beijing' }] });
      const content = completion.choices[0].message.content ?? '';
      assert.doesNotMatch(content, /\*\*Sources\*\*/);
      assert.doesNotMatch(content, /\[\d\]/);
    });

    test('the Vercel AI SDK: generateText and streamText', async () => {
      const provider = createOpenAICompatible({ name: 'kimi', baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, includeUsage: true });
      const generated = await generateText({ model: provider('kimi'), prompt: 'AI SDK hello', maxRetries: 0 });
      assert.equal(generated.text, expected('AI SDK hello'));
      const streamed = streamText({ model: provider('kimi'), prompt: 'AI SDK stream', maxRetries: 0 });
      let text = '';
      for await (const part of streamed.textStream) text += part;
      assert.equal(text, expected('AI SDK stream'));
      assert.ok(((await streamed.usage).outputTokens ?? 0) > 0);
    });

    test('a mid-stream upstream failure is an error in the openai SDK, not a truncated answer', async () => {
      const stream = await client.chat.completions.create({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'break [[sim:reset-after-first-byte]]' }] });
      let received = '';
      await assert.rejects(async () => {
        for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? '';
      }, (error: Error) => error instanceof OpenAI.APIError || /error/i.test(error.message));
      assert.ok(received.length > 0, 'some text arrived before the failure');
    });

    test('a mid-stream upstream failure is an error in the AI SDK', async () => {
      const provider = createOpenAICompatible({ name: 'kimi', baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token });
      const streamed = streamText({ model: provider('kimi'), prompt: 'break [[sim:reset-after-first-byte]]', maxRetries: 0, onError: () => {} });
      const parts: string[] = [];
      for await (const part of streamed.fullStream) parts.push(part.type);
      assert.ok(parts.includes('error'), `an error part is reported (got ${parts.join(',')})`);
    });

    test('stream: "true" as a string (NextChat, one-api) streams', async () => {
      const response = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'kimi', stream: 'true', messages: [{ role: 'user', content: 'string flag' }] }),
      });
      assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      assert.equal(response.headers.get('x-accel-buffering'), 'no');
      const text = await response.text();
      assert.ok(text.trimEnd().endsWith('data: [DONE]'));
    });

    // Last: the 429 cools the account down (Retry-After: 7), as it should.
    test('an upstream refusal before the first byte is a real 429 with Retry-After, never assistant text', async () => {
      const response = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'busy [[sim:http-429]]' }] }),
      });
      assert.equal(response.status, 429);
      assert.ok(Number(response.headers.get('retry-after')) >= 1);
      const body = (await response.json()) as { error: { code: string; type: string } };
      assert.equal(body.error.code, 'rate_limited');
    });
  });
}
