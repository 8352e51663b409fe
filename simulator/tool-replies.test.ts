// Tool-following replies (issue 9): the simulator reads tool instructions from the prompt text alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitIntoPieces, simulatedReply } from './reply-text.ts';
import { readToolPrompt, sampleArguments, withToolReply } from './tool-replies.ts';

const instructions = (rules: string) =>
  [
    '## Tools',
    'You can call the tools listed below.',
    '<tools>',
    '{"name":"get_weather","description":"","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":2}},"required":["city"]}}',
    '{"name":"get_time","description":"","parameters":{"type":"object","properties":{"zone":{"enum":["CET","UTC"]}}}}',
    '</tools>',
    'To call a tool, write a block in exactly this form:',
    '<tool_call name="TOOL_NAME">{"ARGUMENT": "VALUE"}</tool_call>',
    rules,
  ].join('\n');

const reply = (text: string, scenario = 'normal') => withToolReply(simulatedReply({ userText: text, turn: 1 }), text, scenario).text;

test('a prompt without tool instructions keeps the ordinary reply', () => {
  assert.equal(readToolPrompt('hello <tools>'), undefined);
  assert.match(reply('hello'), /^Simulated reply to/);
});

test('calls every tool the question names, with arguments made from the schemas, after a sentence', () => {
  const text = reply(`user: Use get_weather and get_time please\n\n${instructions('')}`);
  assert.equal(
    text,
    'I will use get_weather and get_time 我来调用工具 🛠️.\n<tool_call name="get_weather">{"city":"sim-city","days":2}</tool_call>\n<tool_call name="get_time">{"zone":"CET"}</tool_call>',
  );
});

test('forced tool, one call when parallel calls are off, and the first tool when none is named', () => {
  assert.match(reply(`What now?\n\n${instructions('- You must call the tool "get_time" in this answer.')}`), /^I will use get_time .*\n<tool_call name="get_time">/);
  assert.equal((reply(`get_weather get_time\n\n${instructions('- Call at most one tool in this answer.')}`).match(/<tool_call /g) ?? []).length, 1);
  assert.match(reply(`Anything\n\n${instructions('')}`), /<tool_call name="get_weather">/);
});

test('with tool results in the prompt it answers in prose; the repair prompt gets bare calls', () => {
  assert.match(reply(`user: weather?\n\nassistant: <tool_call name="get_weather" id="c1">{}</tool_call>\n\ntool: [result of c1] 21°C\n\n${instructions('')}`), /^Simulated answer from 1 tool result\(s\) .*21°C/);
  assert.match(reply(`Your previous answer could not be used: x.\n\n${instructions('')}`), /^<tool_call name="get_weather">/);
  const unknown = reply(`Your previous answer could not be used: the call names the tool "nope", which does not exist (the tools are: get_weather, get_time).\n\n${instructions('')}`);
  assert.equal((unknown.match(/<tool_call /g) ?? []).length, 1, 'the tool list in the problem text does not count as naming tools');
  assert.match(reply(`Your previous answer could not be used: the arguments of "get_time" do not match.\n\n${instructions('')}`), /^<tool_call name="get_time">/);
});

test('scenarios: malformed JSON, an unknown tool, tools ignored', () => {
  const prompt = `get_weather\n\n${instructions('')}`;
  assert.match(reply(prompt, 'tools-malformed'), /<tool_call name="get_weather">\{"broken": tru<\/tool_call>$/);
  assert.match(reply(prompt, 'tools-unknown-tool'), /<tool_call name="no_such_tool">\{\}<\/tool_call>$/);
  assert.match(reply(prompt, 'tools-ignored'), /^Simulated reply to/);
});

test('frames cut calls at awkward offsets: inside the opener and inside the closer', () => {
  const text = reply(`user: Use get_weather and get_time please\n\n${instructions('')}`);
  const pieces = splitIntoPieces(text);
  assert.ok(pieces.some((piece) => /<tool_?c?a?l?$|<tool_call n?a?$/.test(piece) && !piece.includes('">')), 'an opener is cut');
  assert.ok(pieces.some((piece) => /<\/?t?o?o?l?_?c?a?l?l?$/.test(piece) && !piece.endsWith('</tool_call>')), 'a closer is cut');
});

test('sample arguments cover nested objects, arrays, booleans and consts', () => {
  assert.deepEqual(sampleArguments({ properties: { a: { type: 'object', properties: { b: { type: 'boolean' } } }, c: { type: 'array' }, d: { const: 7 }, e: { type: ['number', 'null'] } } }), { a: { b: true }, c: [], d: 7, e: 1 });
});
