import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildPrompt } from './build-prompt.ts';
import type { ChatMessage } from './chat-request.ts';

test('a single user message is sent as-is (spec §3.5: one text block)', () => {
  const built = buildPrompt([{ role: 'user', content: 'hello 你好' }], { isContinuation: false });
  assert.equal(built.text, 'hello 你好');
  assert.deepEqual(built.attachments, []);
});

test('a history is flattened into one transcript with role labels (spec §3.8 item 3)', () => {
  const messages: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'text', text: 'first' }, { type: 'text', text: 'part two' }] },
    { role: 'assistant', content: 'answer one' },
    { role: 'user', content: 'second' },
  ];
  const built = buildPrompt(messages, { isContinuation: false });
  assert.equal(built.text, 'system: Be brief.\n\nuser: first\npart two\n\nassistant: answer one\n\nuser: second');
});

test('a continuation sends only the turn after the last assistant message', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: 'old question' },
    { role: 'assistant', content: 'old answer' },
    { role: 'user', content: 'new question' },
  ];
  assert.equal(buildPrompt(messages, { isContinuation: true }).text, 'new question');
});

test('a continuation whose last message is an assistant prefill keeps the new question before it', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: 'old question' },
    { role: 'assistant', content: 'old answer' },
    { role: 'user', content: 'new question' },
    { role: 'assistant', content: 'Sure, the answer is' },
  ];
  assert.equal(buildPrompt(messages, { isContinuation: true }).text, 'user: new question\n\nassistant: Sure, the answer is');
  assert.equal(buildPrompt(messages.slice(2), { isContinuation: true }).text, 'user: new question\n\nassistant: Sure, the answer is');
});

test('attachments in any message are collected; on a continuation only the new turn and last user message', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
    { role: 'assistant', content: 'ok' },
    { role: 'user', content: [{ type: 'text', text: 'and this' }, { type: 'file', file_url: { url: 'https://example.com/a.pdf' } }] },
  ];
  const fresh = buildPrompt(messages, { isContinuation: false });
  assert.deepEqual(fresh.attachments.map((item) => [item.kind, item.messageIndex]), [['image', 0], ['document', 2]]);
  const continued = buildPrompt(messages, { isContinuation: true });
  assert.deepEqual(continued.attachments.map((item) => item.url), ['https://example.com/a.pdf']);
});

test('tool calls and tool results are flattened so agent loops keep their context', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: 'weather?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
  ];
  const text = buildPrompt(messages, { isContinuation: false }).text;
  assert.match(text, /assistant: \[called get_weather\(\{"city":"Paris"\}\) as call_1\]/);
  assert.match(text, /tool: \[result of call_1\] \{"temp":21\}/);
});

test('no user message, or an empty last one, is a 400 naming messages', () => {
  assert.throws(() => buildPrompt([{ role: 'system', content: 'x' }], { isContinuation: false }), (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'messages');
  assert.throws(() => buildPrompt([{ role: 'user', content: '   ' }], { isContinuation: false }), /empty/);
  assert.throws(() => buildPrompt([{ role: 'user', content: [{ type: 'image_url', image_url: { url: '' } }] }], { isContinuation: false }), /without a URL/);
});

test('bare base64 in file.file_data becomes a data URL (OpenAI file parts)', () => {
  const built = buildPrompt([{ role: 'user', content: [{ type: 'text', text: 'read' }, { type: 'file', file: { file_data: 'JVBERi0x', filename: 'a.pdf' } }] }], { isContinuation: false });
  assert.deepEqual(built.attachments.map((item) => [item.url, item.fileName]), [['data:application/octet-stream;base64,JVBERi0x', 'a.pdf']]);
});
