/** Tests for metrics.ts: the text exposition carries every instrument with its labels (issue 6, issue 10). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics, createLabelCap, upstreamErrorKind } from './metrics.ts';
import { RateLimitError, UpstreamTimeoutError } from './errors.ts';

function sampleLine(body: string, prefix: string): string | undefined {
  return body.split('\n').find((line) => line.startsWith(prefix));
}

test('recordRequest counts by route/model/status and fills both histograms', async () => {
  const metrics = createMetrics({ includeProcessMetrics: false });
  metrics.recordRequest({
    route: '/v1/chat/completions',
    model: 'kimi-k2',
    status: 200,
    timeToFirstByteSeconds: 0.3,
    durationSeconds: 4,
  });
  metrics.recordRequest({ route: '/v1/chat/completions', model: 'kimi-k2', status: 200, durationSeconds: 1 });
  metrics.recordRequest({ route: '/v1/chat/completions', model: 'kimi-k2', status: 429, durationSeconds: 0.01 });

  const { contentType, body } = await metrics.render();
  assert.match(contentType, /^text\/plain/);
  assert.equal(
    sampleLine(body, 'http_requests_total{route="/v1/chat/completions",model="kimi-k2",status="200"}'),
    'http_requests_total{route="/v1/chat/completions",model="kimi-k2",status="200"} 2',
  );
  assert.ok(sampleLine(body, 'http_requests_total{route="/v1/chat/completions",model="kimi-k2",status="429"} 1'));
  // Only the request that sent a byte has a first-byte observation.
  assert.ok(sampleLine(body, 'http_time_to_first_byte_seconds_count{route="/v1/chat/completions"} 1'));
  assert.ok(sampleLine(body, 'http_time_to_first_byte_seconds_bucket{le="0.5",route="/v1/chat/completions"} 1'));
  assert.ok(sampleLine(body, 'http_request_duration_seconds_count{route="/v1/chat/completions"} 3'));
  assert.ok(sampleLine(body, 'http_request_duration_seconds_sum{route="/v1/chat/completions"} 5.01'));
});

test('accounts{state} is read from the source at scrape time and emits every state', async () => {
  const metrics = createMetrics({ includeProcessMetrics: false });
  let live = 2;
  metrics.setAccountStatesSource(() => ({ live, cooling: 1 }));
  let { body } = await metrics.render();
  assert.ok(sampleLine(body, 'accounts{state="live"} 2'));
  assert.ok(sampleLine(body, 'accounts{state="cooling"} 1'));
  assert.ok(sampleLine(body, 'accounts{state="invalid"} 0'));
  assert.ok(sampleLine(body, 'accounts{state="unknown"} 0'));

  live = 0;
  ({ body } = await metrics.render());
  assert.ok(sampleLine(body, 'accounts{state="live"} 0'), 'a later scrape sees the new value');
});

test('queue_waiting reads an async source', async () => {
  const metrics = createMetrics({ includeProcessMetrics: false, queueWaiting: async () => 7 });
  const { body } = await metrics.render();
  assert.ok(sampleLine(body, 'queue_waiting 7'));
});

test('refreshes, attachment bytes and upstream errors carry their labels', async () => {
  const metrics = createMetrics({ includeProcessMetrics: false });
  metrics.tokenRefreshes.inc({ result: 'ok' });
  metrics.tokenRefreshes.inc({ result: 'rejected' });
  metrics.attachmentBytes.inc({ kind: 'image' }, 2048);
  metrics.recordUpstreamError(new UpstreamTimeoutError('no first byte'), 'current');
  metrics.recordUpstreamError(new RateLimitError('upstream_overloaded', 'busy'), 'current');
  metrics.recordUpstreamError(new Error('socket hang up'), 'legacy');
  const abort = new Error('aborted');
  abort.name = 'AbortError';
  metrics.recordUpstreamError(abort, 'legacy');

  const { body } = await metrics.render();
  assert.ok(sampleLine(body, 'token_refreshes_total{result="ok"} 1'));
  assert.ok(sampleLine(body, 'token_refreshes_total{result="rejected"} 1'));
  assert.ok(sampleLine(body, 'attachment_bytes_total{kind="image"} 2048'));
  assert.ok(sampleLine(body, 'upstream_errors_total{kind="upstream_timeout",dialect="current"} 1'));
  assert.ok(sampleLine(body, 'upstream_errors_total{kind="upstream_overloaded",dialect="current"} 1'));
  assert.ok(sampleLine(body, 'upstream_errors_total{kind="transport",dialect="legacy"} 1'));
  assert.equal(body.split('\n').filter((line) => line.startsWith('upstream_errors_total{')).length, 3,
    'a client abort is not an upstream error');
});

test('issue 10: unknown upstream things are counted by kind and name and listed for the status page', async () => {
  const metrics = createMetrics({ includeProcessMetrics: false });
  metrics.recordUnknownUpstream('event', 'chat.newFancyBlock');
  metrics.recordUnknownUpstream('event', 'chat.newFancyBlock');
  metrics.recordUnknownUpstream('field', 'message.moodScore');
  const { body } = await metrics.render();
  assert.ok(sampleLine(body, 'upstream_unknown_total{kind="event",name="chat.newFancyBlock"} 2'));
  assert.ok(sampleLine(body, 'upstream_unknown_total{kind="field",name="message.moodScore"} 1'));
  assert.deepEqual(await metrics.unknownUpstreamCounts(), {
    'event:chat.newFancyBlock': 2,
    'field:message.moodScore': 1,
  });
});

test('client-chosen model names are capped so the registry cannot grow without bound', async () => {
  const metrics = createMetrics({ includeProcessMetrics: false, maxLabelValues: 2 });
  for (const model of ['a', 'b', 'c', 'd', 'a']) {
    metrics.recordRequest({ route: '/v1/chat/completions', model, status: 200, durationSeconds: 1 });
  }
  const { body } = await metrics.render();
  assert.ok(sampleLine(body, 'http_requests_total{route="/v1/chat/completions",model="a",status="200"} 2'));
  assert.ok(sampleLine(body, 'http_requests_total{route="/v1/chat/completions",model="other",status="200"} 2'));
  assert.equal(sampleLine(body, 'http_requests_total{route="/v1/chat/completions",model="c"'), undefined);
});

test('two metric sets do not share a registry (one per gateway instance in tests)', async () => {
  const first = createMetrics({ includeProcessMetrics: false });
  const second = createMetrics({ includeProcessMetrics: false });
  first.tokenRefreshes.inc({ result: 'ok' });
  const { body } = await second.render();
  assert.equal(sampleLine(body, 'token_refreshes_total{'), undefined);
});

test('process metrics are included by default', async () => {
  const metrics = createMetrics();
  const { body } = await metrics.render();
  assert.match(body, /^process_cpu_user_seconds_total /m);
  assert.match(body, /^nodejs_heap_size_used_bytes /m);
});

test('helpers: label cap and error kinds', () => {
  const cap = createLabelCap(1);
  assert.equal(cap('x'), 'x');
  assert.equal(cap('y'), 'other');
  assert.equal(createLabelCap(5)('  '), 'none');
  assert.equal(createLabelCap(5)('x'.repeat(200)), 'x'.repeat(80), 'long values are cut, not dropped');
  assert.equal(upstreamErrorKind(new UpstreamTimeoutError('t')), 'upstream_timeout');
  assert.equal(upstreamErrorKind('string thrown'), 'transport');
});
