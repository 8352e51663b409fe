/** Anthropic Messages request translation (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWith } from '../openai-schema.ts';
import { anthropicRequestSchema, translateAnthropicRequest } from './anthropic-request.ts';

const translate = (body: Record<string, unknown>) => translateAnthropicRequest(parseWith(anthropicRequestSchema, { model: 'claude-x', max_tokens: 100, ...body }));

test('system, text, base64 image and document, URL document become chat messages with attachment parts', () => {
  const result = translate({
    system: [{ type: 'text', text: 'Be brief.' }],
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'look' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0K' } },
          { type: 'document', title: 'a.pdf', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
          { type: 'document', source: { type: 'url', url: 'https://example.com/b.pdf' } },
          { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'plain doc' } },
        ],
      },
    ],
  });
  assert.deepEqual(result.messages, [
    { role: 'system', content: 'Be brief.' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'look' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0K' } },
        { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0=', filename: 'a.pdf' } },
        { type: 'file', file_url: { url: 'https://example.com/b.pdf' } },
        { type: 'text', text: 'plain doc' },
      ],
    },
  ]);
  assert.equal(result.model, 'claude-x');
});

test('tool_use and tool_result blocks become tool_calls and tool messages; thinking blocks are dropped', () => {
  const result = translate({
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'x', signature: 's' }, { type: 'text', text: 'checking' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '21°C' }] }, { type: 'text', text: 'and tomorrow?' }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'failed', is_error: true }] },
    ],
  });
  assert.deepEqual(result.messages[1], { role: 'assistant', content: [{ type: 'text', text: 'checking' }], tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
  assert.deepEqual(result.messages[2], { role: 'tool', tool_call_id: 'toolu_1', content: [{ type: 'text', text: '21°C' }] });
  assert.deepEqual(result.messages[3], { role: 'user', content: [{ type: 'text', text: 'and tomorrow?' }] });
  assert.deepEqual(result.messages[4], { role: 'tool', tool_call_id: 'toolu_1', content: '[error] failed' });
  assert.deepEqual(result.messageParams, ['messages.0', 'messages.1', 'messages.2.content.0.tool_use_id', 'messages.2', 'messages.3.content.0.tool_use_id']);
});

test('tools, tool_choice any/tool/none, disable_parallel_tool_use, web search, thinking', () => {
  const result = translate({
    messages: [{ role: 'user', content: 'x' }],
    tools: [{ name: 'f', input_schema: { type: 'object' } }, { type: 'web_search_20250305', name: 'web_search' }],
    tool_choice: { type: 'tool', name: 'f', disable_parallel_tool_use: true },
    thinking: { type: 'enabled', budget_tokens: 1024 },
  });
  assert.deepEqual(result.tools.tools, [{ name: 'f', description: undefined, parameters: { type: 'object' } }]);
  assert.deepEqual(result.tools.choice, { kind: 'function', name: 'f' });
  assert.equal(result.tools.parallelToolCalls, false);
  assert.equal(result.useSearch, true);
  assert.equal(result.model, 'claude-x-thinking', 'thinking switches on the thinking variant of the model');
  assert.deepEqual(translate({ messages: [{ role: 'user', content: 'x' }], tool_choice: { type: 'any' } }).tools.choice, { kind: 'required' });
  assert.throws(() => translate({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] }), (error: { param?: string }) => error.param?.startsWith('messages.0.content.0') === true);
  assert.throws(() => translate({ messages: [{ role: 'user', content: [{ type: 'container_upload' }] }] }), (error: { param?: string }) => error.param === 'messages.0.content.0.type');
});
