/** Input checks for tools, tool_choice, tool results and response formats: each a 400 with a param (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_TOOL_DEFINITION_BYTES, checkToolResults, planTools } from './tool-plan.ts';

const tool = (name: string, parameters: unknown = { type: 'object', properties: {} }) => ({ name, parameters: parameters as Record<string, unknown> });
const isBadRequest = (param: string, message?: RegExp) => (error: { status?: number; param?: string; message: string }) =>
  error.status === 400 && error.param === param && (!message || message.test(error.message));

test('a schema that does not compile is a 400 naming the tool parameters', () => {
  assert.throws(() => planTools({ tools: [tool('a'), tool('b', { type: 'object', properties: { x: { type: 'strng' } } })] }), isBadRequest('tools[1].function.parameters', /not a valid JSON Schema/));
  assert.throws(() => planTools({ tools: [tool('a', { type: 'string' })] }), isBadRequest('tools[0].function.parameters', /must describe an object/));
});

test('real-world schemas compile: draft 2020-12 $schema, formats, unknown keywords, $defs refs', () => {
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: { url: { type: 'string', format: 'uri' }, item: { $ref: '#/$defs/item' } },
    $defs: { item: { type: 'object', properties: { n: { type: 'integer' } } } },
    'x-vendor': true,
  };
  const plan = planTools({ tools: [tool('fetch', schema)] });
  assert.equal(plan.validators.get('fetch')?.check({ url: 'not checked', item: { n: 1 } }).isValid, true);
  assert.equal(plan.validators.get('fetch')?.check({ item: { n: 'x' } }).isValid, false);
});

test('tool_choice naming an unknown function, or required without tools, is a 400 on tool_choice', () => {
  assert.throws(() => planTools({ tools: [tool('a')], choice: { kind: 'function', name: 'b' } }), isBadRequest('tool_choice', /"b", which is not among the tools \(a\)/));
  assert.throws(() => planTools({ tools: [], choice: { kind: 'required' } }), isBadRequest('tool_choice'));
});

test('oversized tool lists: more than 128 tools, or more than 256 KB of definitions', () => {
  assert.throws(() => planTools({ tools: Array.from({ length: 129 }, (_unused, index) => tool(`t${index}`)) }), isBadRequest('tools', /129 tools/));
  const big = tool('big', { type: 'object', description: 'x'.repeat(MAX_TOOL_DEFINITION_BYTES) });
  assert.throws(() => planTools({ tools: [big] }), isBadRequest('tools', /bytes/));
});

test('bad or duplicate tool names are a 400 on the name', () => {
  assert.throws(() => planTools({ tools: [tool('has space')] }), isBadRequest('tools[0].function.name'));
  assert.throws(() => planTools({ tools: [tool('a'), tool('a')] }), isBadRequest('tools[1].function.name', /Two tools/));
});

test('params follow the client API spelling when given', () => {
  const params = { tools: 'tools', toolName: (index: number) => `tools.${index}.name`, toolSchema: (index: number) => `tools.${index}.input_schema`, toolChoice: 'tool_choice.name', responseFormatSchema: 'x' };
  assert.throws(() => planTools({ tools: [tool('a', { type: 3 })], params }), isBadRequest('tools.0.input_schema'));
});

test('a tool result without a matching earlier call is a 400 on that message', () => {
  const messages = [
    { role: 'user' as const, content: 'hi' },
    { role: 'assistant' as const, content: null, tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'a', arguments: '{}' } }] },
    { role: 'tool' as const, content: 'ok', tool_call_id: 'call_1' },
    { role: 'tool' as const, content: 'ok', tool_call_id: 'call_2' },
  ];
  assert.doesNotThrow(() => checkToolResults(messages.slice(0, 3), (index) => `messages[${index}]`));
  assert.throws(() => checkToolResults(messages, (index) => `messages[${index}].tool_call_id`), isBadRequest('messages[3].tool_call_id', /call_2/));
});

test('the plan: instructions only when tools are active; tool_choice none renders no tools', () => {
  assert.equal(planTools({}).instructions, undefined);
  const none = planTools({ tools: [tool('a')], choice: { kind: 'none' } });
  assert.equal(none.hasTools, false);
  assert.equal(none.instructions, undefined);
  const json = planTools({ responseFormat: { kind: 'json-schema', name: 'r', schema: { type: 'object', required: ['n'] }, strict: true } });
  assert.match(json.instructions ?? '', /exactly one JSON value that matches this JSON Schema \("r"\)/);
  assert.throws(() => planTools({ responseFormat: { kind: 'json-schema', name: 'r', schema: { type: 9 }, strict: true } }), isBadRequest('response_format.json_schema.schema'));
});
