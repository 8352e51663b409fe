/** response_format json_object / json_schema: held until complete, validated, one repair (issue 9). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChatEvent } from '../../upstream/dialect.ts';
import { checkJsonAnswer, enforceResponseFormat } from './structured-output.ts';
import type { ChatOutputEvent } from './tool-events.ts';
import { planTools } from './tool-plan.ts';

const schemaPlan = planTools({ responseFormat: { kind: 'json-schema', name: 'person', schema: { type: 'object', properties: { age: { type: 'integer' } }, required: ['age'] }, strict: true } });

function answer(text: string): ChatEvent[] {
  return [{ type: 'conversation-start', conversationId: 'c-9' }, { type: 'text-delta', text: text.slice(0, 3) }, { type: 'text-delta', text: text.slice(3) }, { type: 'finish', reason: 'stop' }];
}
async function* from(events: ChatEvent[]) {
  yield* events;
}
async function collect(source: AsyncIterable<ChatOutputEvent>) {
  const out: ChatOutputEvent[] = [];
  for await (const event of source) out.push(event);
  return out;
}

test('a fenced JSON answer is unwrapped; prose or a wrong shape is reported', () => {
  assert.deepEqual(checkJsonAnswer('```json\n{"age": 3}\n```', schemaPlan.responseFormat, schemaPlan.formatValidator), { isValid: true, json: '{"age": 3}' });
  assert.match((checkJsonAnswer('Sure: {"age": 3}', schemaPlan.responseFormat, undefined) as { problem: string }).problem, /not valid JSON/);
  assert.match((checkJsonAnswer('{"age": "3"}', schemaPlan.responseFormat, schemaPlan.formatValidator) as { problem: string }).problem, /does not match the schema/);
  assert.match((checkJsonAnswer('[1]', { kind: 'json-object' }, undefined) as { problem: string }).problem, /not a JSON object/);
});

test('a valid answer is emitted as one text event after the meta events', async () => {
  const events = await collect(enforceResponseFormat(from(answer(' {"age": 40} ')), { format: schemaPlan.responseFormat, validator: schemaPlan.formatValidator }));
  assert.deepEqual(events, [{ type: 'conversation-start', conversationId: 'c-9' }, { type: 'text-delta', text: '{"age": 40}' }, { type: 'finish', reason: 'stop' }]);
});

test('an invalid answer gets one repair on the same chat; a second failure is a 502 response_format_invalid', async () => {
  const asked: string[] = [];
  const repaired = await collect(
    enforceResponseFormat(from(answer('{"age": "forty"}')), {
      format: schemaPlan.responseFormat,
      validator: schemaPlan.formatValidator,
      repair: ({ conversationId, instruction }) => {
        asked.push(`${conversationId}|${instruction}`);
        return from(answer('{"age": 40}'));
      },
    }),
  );
  assert.match(asked[0], /^c-9\|Your previous answer could not be used: it does not match the schema/);
  assert.equal(repaired.filter((event) => event.type === 'text-delta').map((event) => (event as { text: string }).text).join(''), '{"age": 40}');
  await assert.rejects(
    collect(enforceResponseFormat(from(answer('nope')), { format: { kind: 'json-object' }, validator: undefined, repair: () => from(answer('still nope')) })),
    (error: { status?: number; code?: string }) => error.status === 502 && error.code === 'response_format_invalid',
  );
});

test('an answer that ends in tool calls is passed through without a JSON check', async () => {
  const events: ChatOutputEvent[] = [{ type: 'text-delta', text: 'calling' }, { type: 'tool-call-start', index: 0, id: 'call_1', name: 'a' }, { type: 'tool-call-end', index: 0, arguments: '{}' }, { type: 'finish', reason: 'tool-calls' }];
  async function* source() {
    yield* events;
  }
  const out = await collect(enforceResponseFormat(source(), { format: { kind: 'json-object' }, validator: undefined }));
  assert.deepEqual(out.at(-1), { type: 'finish', reason: 'tool-calls' });
  assert.ok(out.some((event) => event.type === 'text-delta' && event.text === 'calling'));
});
