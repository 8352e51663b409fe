/** Responses API input translation (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWith } from '../openai-schema.ts';
import { responsesRequestSchema, translateResponsesRequest } from './responses-request.ts';

const translate = (body: Record<string, unknown>) => translateResponsesRequest(parseWith(responsesRequestSchema, body));

test('a string input with instructions becomes a system and a user message', () => {
  const result = translate({ input: 'hello', instructions: 'Be brief.' });
  assert.deepEqual(result.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello' }]);
  assert.equal(result.conversationId, undefined);
});

test('items: messages with parts, function calls grouped into one assistant turn, outputs as tool messages', () => {
  const result = translate({
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'see' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA' }, { type: 'input_file', file_data: 'JVBERi0=', filename: 'a.pdf' }] },
      { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
      { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{"x":1}' },
      { type: 'reasoning', id: 'rs_1', summary: [] },
      { type: 'function_call_output', call_id: 'c1', output: 'one' },
      { type: 'function_call_output', call_id: 'c2', output: 'two' },
    ],
  });
  assert.deepEqual(result.messages[0].content, [
    { type: 'text', text: 'see' },
    { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
    { type: 'file', file: { file_data: 'data:application/octet-stream;base64,JVBERi0=', filename: 'a.pdf' } },
  ]);
  assert.deepEqual(result.messages[1].tool_calls?.map((call) => call.id), ['c1', 'c2']);
  assert.deepEqual(result.messages.slice(2), [{ role: 'tool', tool_call_id: 'c1', content: 'one' }, { role: 'tool', tool_call_id: 'c2', content: 'two' }]);
  assert.deepEqual(result.messageParams, ['input[0]', 'input[1]', 'input[4]', 'input[5]']);
});

test('previous_response_id maps to the upstream chat; a store:false id or a foreign id is refused', () => {
  assert.equal(translate({ input: 'x', previous_response_id: 'resp_chat-9' }).conversationId, 'chat-9');
  assert.throws(() => translate({ input: 'x', previous_response_id: 'resp_nostore_abc' }), (error: { status?: number; param?: string }) => error.status === 404 && error.param === 'previous_response_id');
  assert.throws(() => translate({ input: 'x', previous_response_id: 'chatcmpl-1' }), /resp_/);
});

test('function tools, web_search, tool_choice and text.format become the tool request', () => {
  const result = translate({
    input: 'x',
    tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }, { type: 'web_search_preview' }],
    tool_choice: { type: 'function', name: 'f' },
    text: { format: { type: 'json_schema', name: 'out', schema: { type: 'object' }, strict: true } },
  });
  assert.equal(result.useSearch, true);
  assert.deepEqual(result.tools.tools, [{ name: 'f', description: undefined, parameters: { type: 'object' } }]);
  assert.deepEqual(result.tools.choice, { kind: 'function', name: 'f' });
  assert.equal(result.tools.responseFormat?.kind, 'json-schema');
  assert.throws(() => translate({ input: 'x', tools: [{ type: 'file_search' }] }), (error: { param?: string }) => error.param === 'tools[0].type');
  assert.throws(() => translate({ input: [{ type: 'input_image', image_url: 'x' }] }), (error: { param?: string }) => error.param === 'input[0].type');
  assert.throws(() => translate({ input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }] }), /file_id/);
});
