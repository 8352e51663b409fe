/** The stop-sequence stage: validation, the byte-exact hold-back, the cut, and closing the upstream early. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStopScanner, cutAtStopSequences, parseStopSequences } from './stop-sequences.ts';
import type { ChatOutputEvent } from './tools/tool-events.ts';

async function collect(batches: AsyncIterable<readonly ChatOutputEvent[]>): Promise<ChatOutputEvent[][]> {
  const out: ChatOutputEvent[][] = [];
  for await (const batch of batches) out.push([...batch]);
  return out;
}

/** A source that records whether its consumer closed it before the end (what releases the upstream request). */
function source(batches: ChatOutputEvent[][]) {
  const state = { pulled: 0, isClosed: false, hasEnded: false };
  async function* run(): AsyncGenerator<readonly ChatOutputEvent[]> {
    try {
      for (const batch of batches) {
        state.pulled += 1;
        yield batch;
      }
      state.hasEnded = true;
    } finally {
      state.isClosed = true;
    }
  }
  return { state, batches: run() };
}

const text = (value: string): ChatOutputEvent => ({ type: 'text-delta', text: value });

test('parseStopSequences: string or up to 4 non-empty strings of at most 1,000 characters; null is none; otherwise a 400 naming stop', () => {
  assert.deepEqual(parseStopSequences(undefined, 'stop'), []);
  assert.deepEqual(parseStopSequences(null, 'stop'), []);
  assert.deepEqual(parseStopSequences('\nObservation', 'stop'), ['\nObservation']);
  assert.deepEqual(parseStopSequences(['a', 'b', 'a'], 'stop'), ['a', 'b']);
  assert.equal(parseStopSequences('x'.repeat(1_000), 'stop')[0].length, 1_000);
  for (const bad of ['', [''], ['a', 'b', 'c', 'd', 'e'], [1], 5, { a: 1 }, 'x'.repeat(1_001), ['ok', 'y'.repeat(200_000)]]) {
    assert.throws(() => parseStopSequences(bad, 'stop'), (error: { status?: number; param?: string }) => error.status === 400 && error.param === 'stop', JSON.stringify(bad));
  }
  assert.deepEqual(parseStopSequences(['a', 'b', 'c', 'd', 'e'], 'stop_sequences', 8).length, 5);
});

test('scanner holds back only a tail that could start a sequence, and never half a surrogate pair', () => {
  const scanner = createStopScanner(['\nObservation']);
  assert.deepEqual(scanner.push('Thought: look it up'), { text: 'Thought: look it up' });
  assert.deepEqual(scanner.push('\nAction: search\nObs'), { text: '\nAction: search' }, 'only "\\nObs" waits');
  assert.deepEqual(scanner.push('erv'), { text: '' });
  assert.deepEqual(scanner.push('e it'), { text: '\nObserve it' }, 'a prefix that stops matching is released');
  assert.deepEqual(scanner.push('\nObservation: 22C'), { text: '', matched: '\nObservation' });
  const emoji = createStopScanner(['END']);
  assert.deepEqual(emoji.push('sun \uD83C'), { text: 'sun ' }, 'a high surrogate waits for its low half');
  assert.deepEqual(emoji.push('\uDF1E E'), { text: '\uD83C\uDF1E ' });
  assert.deepEqual(emoji.push('ND'), { text: '', matched: 'END' });
});

test('the earliest occurrence of any sequence wins, also one inside a longer partial match', () => {
  const scanner = createStopScanner(['abcd', 'bc']);
  assert.deepEqual(scanner.push('xab'), { text: 'x' });
  assert.deepEqual(scanner.push('cd'), { text: '', matched: 'abcd' });
  assert.deepEqual(createStopScanner(['abcd', 'bc']).push('xabce'), { text: 'xa', matched: 'bc' });
});

test('stage: cuts text split across events, estimates usage, finishes with the sequence, closes the upstream', async () => {
  const upstream = source([
    [{ type: 'conversation-start', conversationId: 'c1' }, { type: 'reasoning-delta', text: 'the Observation is in reasoning' }, text('Thought: x\nObs')],
    [text('ervation: 22C'), text(' more')],
    [text('never read'), { type: 'finish', reason: 'stop' }],
  ]);
  const batches = await collect(
    cutAtStopSequences(upstream.batches, {
      sequences: ['\nObservation'],
      estimateUsage: async (answerText) => ({ type: 'usage', promptTokens: 3, completionTokens: answerText.length, isEstimate: true }),
    }),
  );
  assert.deepEqual(batches, [
    [{ type: 'conversation-start', conversationId: 'c1' }, { type: 'reasoning-delta', text: 'the Observation is in reasoning' }, text('Thought: x')],
    [{ type: 'usage', promptTokens: 3, completionTokens: 'Thought: x'.length, isEstimate: true }, { type: 'finish', reason: 'stop', stopSequence: '\nObservation' }],
  ]);
  assert.equal(upstream.state.pulled, 2, 'the third upstream batch is never asked for');
  assert.ok(upstream.state.isClosed && !upstream.state.hasEnded, 'the upstream iterator was returned early');
});

test('stage: without a match, held text goes out before the next non-text event and the upstream finish stays', async () => {
  const upstream = source([[text('a STO'), { type: 'tool-call-start', index: 0, id: 'call_1', name: 'f' }], [text('P?'), { type: 'usage', promptTokens: 1, completionTokens: 2, isEstimate: true }, { type: 'finish', reason: 'length' }]]);
  const events = (await collect(cutAtStopSequences(upstream.batches, { sequences: ['STOP'] }))).flat();
  assert.deepEqual(events, [
    text('a '),
    text('STO'),
    { type: 'tool-call-start', index: 0, id: 'call_1', name: 'f' },
    text('P?'),
    { type: 'usage', promptTokens: 1, completionTokens: 2, isEstimate: true },
    { type: 'finish', reason: 'length' },
  ]);
  assert.ok(upstream.state.hasEnded);
});

test('stage: no sequences passes the batches through untouched', async () => {
  const batch: ChatOutputEvent[] = [text('STOP'), { type: 'finish', reason: 'stop' }];
  for await (const out of cutAtStopSequences(source([batch]).batches, { sequences: [] })) assert.equal(out, batch);
});
