/**
 * @module upstream/legacy/legacy-events.test
 * Pins the pure mapping of legacy SSE payloads to ChatEvents and the end-of-segment decision (spec §2.5).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError, ForbiddenError, RateLimitError, UpstreamError } from '../../errors.ts';
import type { ChatEvent } from '../dialect.ts';
import {
  decideAfterSegment,
  initialLegacyStreamState,
  mapLegacyPayload,
  startNextSegment,
  type LegacyStreamState,
} from './legacy-events.ts';

function run(payloads: unknown[], start: LegacyStreamState = initialLegacyStreamState()) {
  const unknown: string[] = [];
  const context = { onUnknown: (kind: string, name: string) => unknown.push(`${kind}:${name}`), defaultRetryAfterMs: 1234 };
  let state = start;
  const events: ChatEvent[] = [];
  for (const data of payloads) {
    const step = mapLegacyPayload(state, { data, sseEvent: undefined }, context);
    state = step.state;
    events.push(...step.events);
    if (step.error) return { state, events, unknown, error: step.error };
  }
  return { state, events, unknown, error: undefined };
}

describe('mapLegacyPayload (§2.5)', () => {
  it('remembers the req id as segment id and starts the message once per answer', () => {
    const first = run([{ event: 'req', id: 'seg1' }, { event: 'resp', id: 'msg1' }, { event: 'cmpl', text: 'a' }]);
    assert.equal(first.state.segmentId, 'seg1');
    assert.deepEqual(first.events, [{ type: 'message-start', messageId: 'msg1' }, { type: 'text-delta', text: 'a' }]);
    const second = run([{ event: 'req', id: 'seg2' }, { event: 'resp', id: 'msg2' }, { event: 'cmpl', text: 'b' }], startNextSegment(first.state));
    assert.equal(second.state.segmentId, 'seg2');
    assert.deepEqual(second.events, [{ type: 'text-delta', text: 'b' }]);
  });

  it('takes the event name from the SSE event: field when the JSON has none', () => {
    const step = mapLegacyPayload(initialLegacyStreamState(), { data: { text: 'x' }, sseEvent: 'cmpl' }, { onUnknown: () => {}, defaultRetryAfterMs: 1 });
    assert.deepEqual(step.events, [{ type: 'text-delta', text: 'x' }]);
  });

  it('maps k1 to reasoning and numbers search results 1..n, deduplicated by url', () => {
    const { events, unknown } = run([
      { event: 'k1', text: 'think' },
      { event: 'search_plus', msg: { type: 'start' } },
      { event: 'search_plus', msg: { type: 'get_res', title: 'A', url: 'http://a.example/' } },
      { event: 'search_plus', msg: { type: 'get_res', title: 'A again', url: 'http://a.example/' } },
      { event: 'search_plus', msg: { type: 'get_res', url: 'http://b.example/', site_name: 'B site' } },
      { event: 'search_plus', msg: { type: 'get_res', title: 'no url' } },
    ]);
    assert.deepEqual(events, [
      { type: 'reasoning-delta', text: 'think' },
      { type: 'search-source', source: { index: 1, title: 'A', url: 'http://a.example/' } },
      { type: 'search-source', source: { index: 2, title: 'http://b.example/', url: 'http://b.example/', siteName: 'B site' } },
    ]);
    assert.deepEqual(unknown, []);
  });

  it('ignores debug, zone_set, chat_prompt, rename, ref_docs and done, and reports unknown events by name only (§9 D7)', () => {
    const { events, unknown, state } = run([
      { event: 'debug', message: { need2search: false } },
      { event: 'zone_set', zone_type: 'thinking' },
      { event: 'chat_prompt', text: 'follow-up?' },
      { event: 'rename', text: 'A title' },
      { event: 'ref_docs' },
      { event: 'done' },
      { event: 'mystery', secret: 'x' },
      { no: 'event' },
      { event: 'cmpl', text: 42 },
    ]);
    assert.deepEqual(events, []);
    assert.deepEqual(unknown, ['event:mystery', 'payload:no-event', 'payload:cmpl']);
    assert.equal(state.hasText, false);
  });

  it('turns an overload error into a retryable RateLimitError with the configured backoff (§2.8, §10.7)', () => {
    const { error, events } = run([
      { event: 'cmpl', text: '部分回答' },
      { event: 'error', error: { error_type: 'openai.completion.stream', message: 'Kimi 现在有点累了，晚一点再来问问我吧！' } },
    ]);
    assert.deepEqual(events, [{ type: 'text-delta', text: '部分回答' }]);
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.code, 'upstream_overloaded');
    assert.equal(error.retryAfterMs, 1234);
  });

  it('treats chat.forbidden after text as a content filter and before text as ForbiddenError (§2.8)', () => {
    const forbidden = { event: 'error', error: { error_type: 'chat.forbidden', message: '此会话已被禁用' } };
    const afterText = run([{ event: 'cmpl', text: 'x' }, forbidden, { event: 'all_done' }]);
    assert.equal(afterText.error, undefined);
    assert.equal(afterText.state.ending, 'content-filter');
    assert.deepEqual(decideAfterSegment(afterText.state, 0, 3), { action: 'finish', reason: 'content-filter' });
    const beforeText = run([forbidden]);
    assert.ok(beforeText.error instanceof ForbiddenError);
  });

  it('maps chat.user_stream_pushing inside the stream to ConflictError', () => {
    const { error } = run([{ event: 'error', error: { error_type: 'chat.user_stream_pushing', message: 'busy' } }]);
    assert.ok(error instanceof ConflictError);
    assert.equal(error.status, 409);
  });
});

describe('decideAfterSegment (§2.4, §2.5)', () => {
  const base = { ...initialLegacyStreamState(), hasText: true, segmentId: 'seg' };

  it('finishes with stop after all_done', () => {
    assert.deepEqual(decideAfterSegment({ ...base, ending: 'all-done' }, 0, 3), { action: 'finish', reason: 'stop' });
  });

  it('continues after length while continuations remain, then finishes with length', () => {
    const cut = { ...base, isLengthCut: true, ending: 'all-done' as const };
    assert.deepEqual(decideAfterSegment(cut, 2, 3), { action: 'continue', segmentId: 'seg' });
    assert.deepEqual(decideAfterSegment(cut, 3, 3), { action: 'finish', reason: 'length' });
    assert.deepEqual(decideAfterSegment({ ...cut, segmentId: undefined }, 0, 3), { action: 'finish', reason: 'length' });
  });

  it('reports a stream without all_done as a retryable truncation', () => {
    assert.throws(
      () => decideAfterSegment(base, 0, 3),
      (error: unknown) => error instanceof UpstreamError && error.isRetryable && /no all_done/.test(error.message),
    );
  });

  it('reports an answer without text or reasoning as an error', () => {
    const empty = { ...initialLegacyStreamState(), ending: 'all-done' as const };
    assert.throws(() => decideAfterSegment(empty, 0, 3), (error: unknown) => error instanceof UpstreamError && /without producing/.test(error.message));
    assert.deepEqual(decideAfterSegment({ ...empty, hasReasoning: true }, 0, 3), { action: 'finish', reason: 'stop' });
  });
});
