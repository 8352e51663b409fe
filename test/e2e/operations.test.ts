/**
 * Operator-facing behaviour of a running gateway (issue 6): metrics, CORS, proxy trust in logs,
 * graceful shutdown with a stream in flight.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStack, type Stack } from '../support/stack.ts';

describe('operations', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { CORS_ORIGINS: 'https://chat.example.com', TRUST_PROXY: '1' } });
  });
  after(() => stack.close());

  const chat = (content: string, extraHeaders: Record<string, string> = {}) =>
    fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json', ...extraHeaders },
      body: JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content }] }),
    });

  test('GET /metrics exposes requests, time to first byte, duration and account states in Prometheus format', async () => {
    assert.equal((await chat('metrics please')).status, 200);
    const response = await fetch(`${stack.gatewayUrl}/metrics`);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    assert.match(text, /http_requests_total\{[^}]*route="\/v1\/chat\/completions"[^}]*status="200"[^}]*\} [1-9]/);
    assert.match(text, /http_time_to_first_byte_seconds_bucket\{/);
    assert.match(text, /http_request_duration_seconds_count\{[^}]*\} [1-9]/);
    assert.match(text, /accounts\{state="live"\}/);
    assert.match(text, /token_refreshes_total\{result="rotated"\} 1/, 'the first request refreshed (and rotated) the token once');
  });

  test('metrics label requests by route pattern: scanners and /v1/models/<anything> add no series (the log keeps the path)', async () => {
    for (let index = 0; index < 40; index += 1) {
      await (await fetch(`${stack.gatewayUrl}/scan-${index}/wp-admin.php`)).body?.cancel();
      await (await fetch(`${stack.gatewayUrl}/v1/models/probe-${index}`)).body?.cancel();
    }
    const text = await (await fetch(`${stack.gatewayUrl}/metrics`)).text();
    const routes = new Set([...text.matchAll(/^http_requests_total\{[^}]*route="([^"]*)"/gm)].map((match) => match[1]));
    assert.ok(routes.has('unmatched') && routes.has('/v1/models/*'), [...routes].join(' '));
    assert.ok(routes.size <= 8, `a fixed set of routes: ${[...routes].join(' ')}`);
    assert.ok(!text.includes('scan-3') && !text.includes('probe-3'), 'no client path became a label');
    const lines = stack.logs().split('\n').filter((line) => line.includes('"msg":"request"') && line.includes('/scan-3/'));
    assert.equal(lines.length, 1, 'the request log still names the path');
  });

  test('CORS: allowed origins get the headers and preflight, others get none', async () => {
    const preflight = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://chat.example.com' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://chat.example.com');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/);
    const other = await fetch(`${stack.gatewayUrl}/ping`, { headers: { origin: 'https://evil.example.net' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  test('TRUST_PROXY takes the client address from X-Forwarded-For in the request log', async () => {
    await chat('who am i', { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' });
    const lines = stack.logs().split('\n').filter((line) => line.includes('"msg":"request"'));
    assert.ok(lines.some((line) => line.includes('"client":"203.0.113.7"')));
  });

  test('SIGTERM-style close lets an open stream finish within the grace period and refuses new requests', async () => {
    const stream = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'slowly [[sim:slow]]' }] }),
    });
    const reader = stream.body!.getReader();
    await reader.read();
    const closing = stack.gateway.close(5000);
    const refused = await chat('too late').then((response) => response.status, () => 'connection refused');
    assert.ok(refused === 503 || refused === 'connection refused', `new request got ${refused}`);
    let text = '';
    const decoder = new TextDecoder();
    for (let part = await reader.read(); !part.done; part = await reader.read()) text += decoder.decode(part.value, { stream: true });
    assert.ok(text.trimEnd().endsWith('data: [DONE]'), 'the open stream finished normally');
    await closing;
  });
});

describe('shutdown after the grace period', () => {
  test('a stream still open when the grace period ends gets an error payload (shutting_down) and no [DONE]', async () => {
    const stack = await startStack();
    try {
      const stream = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'hang [[sim:stall-between-chunks]]' }] }),
      });
      const reader = stream.body!.getReader();
      await reader.read();
      const startedAt = Date.now();
      const closing = stack.gateway.close(300);
      let text = '';
      const decoder = new TextDecoder();
      for (let part = await reader.read(); !part.done; part = await reader.read()) text += decoder.decode(part.value, { stream: true });
      await closing;
      assert.ok(Date.now() - startedAt < 3000);
      assert.match(text, /data: \{"error":\{[^\n]*"code":"shutting_down"/);
      assert.doesNotMatch(text, /\[DONE\]/);
      assert.equal(stack.simulator.activeStreams(), 0, 'the upstream stream was aborted too');
    } finally {
      await stack.close();
    }
  });
});
