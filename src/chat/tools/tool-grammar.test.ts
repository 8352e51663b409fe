/** The call grammar and its incremental parser (issue 9; protocol spec §9 D11: the grammar is swappable). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fencedJsonGrammar, xmlTagGrammar, type GrammarToken, type ToolGrammar } from './tool-grammar.ts';

/** Parses `text` pushed in the given pieces; adjacent text tokens are merged for comparison. */
function parse(grammar: ToolGrammar, pieces: string[]): GrammarToken[] {
  const parser = grammar.createParser();
  const tokens = [...pieces.flatMap((piece) => parser.push(piece)), ...parser.end()];
  const merged: GrammarToken[] = [];
  for (const token of tokens) {
    const last = merged.at(-1);
    if (token.type === 'text' && last?.type === 'text') merged[merged.length - 1] = { type: 'text', text: last.text + token.text };
    else merged.push(token.type === 'call' || token.type === 'malformed-call' ? { ...token, raw: '' } : token);
  }
  return merged;
}

const answer =
  'Let me check 天气 🌦 <b>now</b>.\n<tool_call name="get_weather">{"city":"Paris","note":"a </tool_ b"}</tool_call>\n' +
  '<tool_call name="get_time" id="x">\n{"zone":"CET"}\n</tool_call>\nDone <tool_calls are fun.';
const expected: GrammarToken[] = [
  { type: 'text', text: 'Let me check 天气 🌦 <b>now</b>.\n' },
  { type: 'call', name: 'get_weather', arguments: { city: 'Paris', note: 'a </tool_ b' }, raw: '' },
  { type: 'call', name: 'get_time', arguments: { zone: 'CET' }, raw: '' },
  { type: 'text', text: 'Done <tool_calls are fun.' },
];

test('split at every offset into two pieces, the parser finds the same calls and text', () => {
  assert.deepEqual(parse(xmlTagGrammar, [answer]), expected);
  for (let offset = 0; offset <= answer.length; offset += 1) {
    assert.deepEqual(parse(xmlTagGrammar, [answer.slice(0, offset), answer.slice(offset)]), expected, `split at ${offset}`);
  }
});

test('fed one character at a time (every offset split at once), the result is the same', () => {
  assert.deepEqual(parse(xmlTagGrammar, Array.from(answer)), expected);
});

test('hold-back: plain text is released immediately, only a possible opener is held', () => {
  const parser = xmlTagGrammar.createParser();
  assert.deepEqual(parser.push('Hello, world'), [{ type: 'text', text: 'Hello, world' }]);
  assert.deepEqual(parser.push(' a <'), [{ type: 'text', text: ' a ' }]);
  assert.deepEqual(parser.push('tool_c'), []);
  assert.deepEqual(parser.push('ar is red'), [{ type: 'text', text: '<tool_car is red' }]);
  assert.deepEqual(parser.push(' x < y'), [{ type: 'text', text: ' x < y' }]);
  assert.deepEqual(parser.end(), []);
});

test('hold-back: a code fence is held only while a call could follow it, then released', () => {
  const parser = xmlTagGrammar.createParser();
  assert.deepEqual(parser.push('Code:\n```py'), [{ type: 'text', text: 'Code:\n' }]);
  assert.deepEqual(parser.push('thon\n'), []);
  assert.deepEqual(parser.push('print(1)\n```'), [{ type: 'text', text: '```python\nprint(1)\n' }]);
  assert.deepEqual(parser.push('\nok'), [{ type: 'text', text: '```\nok' }]);
});

test('a call wrapped in a code fence loses the fence, and the fence text never reaches the client', () => {
  const text = 'Sure.\n```xml\n<tool_call name="a">{}</tool_call>\n<tool_call name="b">{"x":1}</tool_call>\n```\nBye';
  for (let offset = 0; offset <= text.length; offset += 1) {
    assert.deepEqual(
      parse(xmlTagGrammar, [text.slice(0, offset), text.slice(offset)]),
      [{ type: 'text', text: 'Sure.\n' }, { type: 'call', name: 'a', arguments: {}, raw: '' }, { type: 'call', name: 'b', arguments: { x: 1 }, raw: '' }, { type: 'text', text: 'Bye' }],
      `split at ${offset}`,
    );
  }
});

test("a closing fence of the client's own code block before a call is kept", () => {
  const tokens = parse(xmlTagGrammar, ['```js\nx()\n```\n<tool_call name="a">{}</tool_call>']);
  assert.deepEqual(tokens[0], { type: 'text', text: '```js\nx()\n```\n' });
  assert.equal(tokens[1].type, 'call');
});

test('tolerated forms: single quotes, fenced JSON body, empty body, Hermes-style body', () => {
  assert.deepEqual(parse(xmlTagGrammar, ["<tool_call name='a'>```json\n{\"q\":1}\n```</tool_call>"]), [{ type: 'call', name: 'a', arguments: { q: 1 }, raw: '' }]);
  assert.deepEqual(parse(xmlTagGrammar, ['<tool_call name="a"></tool_call>']), [{ type: 'call', name: 'a', arguments: {}, raw: '' }]);
  assert.deepEqual(parse(xmlTagGrammar, ['<tool_call>{"name":"a","arguments":"{\\"q\\":2}"}</tool_call>']), [{ type: 'call', name: 'a', arguments: { q: 2 }, raw: '' }]);
});

test('malformed calls are reported, never released as text', () => {
  const cases: [string, RegExp][] = [
    ['<tool_call name="a">{"q": 1,}</tool_call>', /not valid JSON/],
    ['<tool_call name="a">[1,2]</tool_call>', /not a JSON object/],
    ['<tool_call>{"q":1}</tool_call>', /names no tool/],
    ['<tool_call name="a">{"q": "cut off', /ended inside/],
    [`<tool_call ${'x'.repeat(400)}`, /longer than 300/],
  ];
  for (const [text, reason] of cases) {
    const tokens = parse(xmlTagGrammar, ['Before ', text]);
    assert.deepEqual(tokens[0], { type: 'text', text: 'Before ' }, text);
    assert.equal(tokens.length, 2, text);
    assert.equal(tokens[1].type, 'malformed-call', text);
    assert.match((tokens[1] as { reason: string }).reason, reason);
  }
});

test('the raw text of a call is kept for logs and repair prompts', () => {
  const parser = xmlTagGrammar.createParser();
  const tokens = [...parser.push('x\n```xml\n<tool_call name="a">{}</tool_call>'), ...parser.end()];
  assert.equal((tokens[1] as { raw: string }).raw, '```xml\n<tool_call name="a">{}</tool_call>');
});

test('instructions list each tool as one JSON line and state tool_choice and parallel rules', () => {
  const tools = [{ name: 'get_weather', description: 'Weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  const auto = xmlTagGrammar.renderInstructions({ tools, choice: { kind: 'auto' }, parallelToolCalls: true });
  assert.match(auto, /<tools>\n\{"name":"get_weather","description":"Weather now","parameters":\{[^\n]+\}\n<\/tools>/);
  assert.match(auto, /<tool_call name="TOOL_NAME">/);
  assert.match(auto, /only when you need one/);
  assert.match(auto, /all their blocks/);
  const named = xmlTagGrammar.renderInstructions({ tools, choice: { kind: 'function', name: 'get_weather' }, parallelToolCalls: false });
  assert.match(named, /You must call the tool "get_weather"/);
  assert.match(named, /at most one tool/);
  assert.equal(xmlTagGrammar.renderInstructions({ tools, choice: { kind: 'none' }, parallelToolCalls: true }), '');
  const repair = xmlTagGrammar.renderRepair(['the arguments are not valid JSON'], { tools, choice: { kind: 'auto' }, parallelToolCalls: true });
  assert.match(repair, /^Your previous answer could not be used: the arguments are not valid JSON\./);
  assert.match(repair, /You must call at least one tool/);
});

test('an earlier call is written back in the grammar, and parses as the same call', () => {
  const written = xmlTagGrammar.formatCall({ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' });
  assert.equal(written, '<tool_call name="get_weather" id="call_1">{"city":"Paris"}</tool_call>');
  assert.deepEqual(parse(xmlTagGrammar, [written]), [{ type: 'call', name: 'get_weather', arguments: { city: 'Paris' }, raw: '' }]);
});

test('the fenced-JSON variant parses behind the same interface, at every split offset', () => {
  const text = 'Checking.\n```tool_call\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```\nThen more.';
  const want: GrammarToken[] = [{ type: 'text', text: 'Checking.\n' }, { type: 'call', name: 'get_weather', arguments: { city: 'Paris' }, raw: '' }, { type: 'text', text: 'Then more.' }];
  for (let offset = 0; offset <= text.length; offset += 1) assert.deepEqual(parse(fencedJsonGrammar, [text.slice(0, offset), text.slice(offset)]), want, `split at ${offset}`);
  assert.deepEqual(parse(fencedJsonGrammar, ['```js\nx\n```']), [{ type: 'text', text: '```js\nx\n```' }]);
});
