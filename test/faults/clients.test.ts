// Fault suite (issue 7): misbehaving clients. A client that stops reading makes the gateway stop reading
// upstream (back-pressure end to end, memory bounded by about one event, style habit 6); a client that
// disconnects aborts the upstream stream within 100 ms and the temporary chat is still deleted (§10.3).
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { chat, parseSse, waitUntil } from '../support/gateway-client.ts';
import { connectFrames, startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { rawRequest } from '../support/raw-http.ts';

let simulator: Simulator;
let proxy: FaultProxy;
let stack: Stack;

before(async () => {
  simulator = await startSimulator();
  proxy = await startFaultProxy(simulator.url);
  stack = await startStack({ serverPool: true, existingSimulator: simulator, env: { KIMI_BASE_URL: proxy.url, CHAT_RETENTION_SECONDS: '0' } });
});
after(async () => {
  await stack?.close();
  await proxy?.close();
  await simulator?.close();
});

// Words, not one long run: the gateway's token estimate is slow on long unbroken runs (see hostile-inputs).
const padding = 'lorem ipsum dolor sit amet '.repeat(38_837);

/** Appends 1 MiB to every answer-text frame: about 10 MiB of answer, more than the socket buffers hold. */
function inflateTextFrames(body: Buffer): { body: Buffer; text: string } {
  const parts: Buffer[] = [];
  let text = '';
  for (const frame of connectFrames(body)) {
    const payload = body.subarray(frame.start + 5, frame.end);
    const event = frame.flags === 0 ? JSON.parse(payload.toString('utf8')) : undefined;
    if (event && (event.mask === 'block.text' || event.mask === 'block.text.content')) {
      event.block.text.content += padding;
      text += event.block.text.content;
      const json = Buffer.from(JSON.stringify(event));
      const header = Buffer.alloc(5);
      header.writeUInt32BE(json.length, 1);
      parts.push(header, json);
    } else parts.push(body.subarray(frame.start, frame.end));
  }
  return { body: Buffer.concat(parts), text };
}

test('slow client: the gateway stops reading upstream while the client does not read, buffers about one event, and the answer completes intact', async () => {
  let expected = '';
  proxy.setRule({
    path: /ChatService\/Chat$/,
    rewrite: (answer) => {
      const inflated = inflateTextFrames(answer.body);
      expected = inflated.text;
      return { ...answer, body: inflated.body };
    },
    splitAt: (body) => Array.from({ length: Math.floor(body.length / 65_536) }, (_unused, index) => (index + 1) * 65_536),
    pauseMs: 0,
  });
  let maxBuffered = 0;
  let watched: ServerResponse | undefined;
  const onRequest = (_request: unknown, response: ServerResponse) => (watched = response);
  stack.gateway.server.on('request', onRequest);
  const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, watched?.writableLength ?? 0)), 2);
  try {
    const body = JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'a very long answer please' }] });
    const exchange = rawRequest(stack.gatewayUrl, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body, paused: true });
    // The client reads nothing for a while: the pipe upstream → gateway → client fills up and must stop.
    assert.ok(await waitUntil(() => proxy.stalledWrites > 0, 5_000, 10), 'the upstream side was made to wait');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const bufferedWhilePaused = maxBuffered;
    exchange.socket.resume();
    const response = await exchange.response;
    const sse = parseSse(response.body.toString('utf8'));
    assert.equal(response.status, 200);
    assert.equal(sse.done, true);
    assert.equal(sse.text.length, expected.length);
    assert.equal(sse.text, expected);
    assert.ok(expected.length > 8 * 1024 * 1024);
    // One event is 1 MiB of text (plus its JSON); the gateway may hold that and the one it is writing, not 10 MiB.
    assert.ok(bufferedWhilePaused < 3 * 1024 * 1024, `gateway buffered ${bufferedWhilePaused} bytes for a paused client`);
  } finally {
    clearInterval(sampler);
    stack.gateway.server.off('request', onRequest);
    proxy.setRule(undefined);
  }
});

test('client disconnect mid-stream: the upstream stream is aborted within 100 ms and the temporary chat is deleted (CHAT_RETENTION_SECONDS=0, §10.3)', async () => {
  const userId = stack.accounts[0].userId;
  const controller = new AbortController();
  const response = await request(`${stack.gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'talk slowly [[sim:slow]]' }] }),
    signal: controller.signal,
  });
  assert.equal(response.statusCode, 200);
  // Read until the first content chunk, so the upstream stream is certainly running.
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      if (!chunk.toString('utf8').includes('"content"')) return;
      response.body.off('data', onData);
      response.body.pause();
      resolve();
    };
    response.body.on('data', onData);
  });
  response.body.on('error', () => undefined);
  assert.equal(simulator.activeStreams(userId), 1);
  const abortedAt = Date.now();
  controller.abort();
  assert.ok(await waitUntil(() => simulator.activeStreams(userId) === 0, 1_000, 1));
  const elapsed = Date.now() - abortedAt;
  assert.ok(elapsed <= 100, `upstream closed ${elapsed} ms after the client left`);
  assert.ok(
    await waitUntil(() => simulator.chats(userId).length > 0 && simulator.chats(userId).every((chat) => chat.deleted), 3_000, 20),
    'the temporary chat was deleted upstream',
  );
});

test('a client that leaves while queued for an account is logged as client-closed on every API, never as a gateway error', async () => {
  const narrow = await startStack({ serverPool: true, existingSimulator: simulator, env: { ACCOUNT_MAX_CONCURRENCY: '1', QUEUE_TIMEOUT_MS: '10000' } });
  try {
    const holder = new AbortController();
    // Holds the only slot: a slow stream that the test ends itself.
    const holding = request(`${narrow.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'hold [[sim:slow]]' }] }),
      signal: holder.signal,
    }).then((response) => response.body.text()).catch(() => undefined);
    await waitUntil(() => narrow.gateway.app.openRequests === 1, 5_000);
    const bodies: [string, object][] = [
      ['/v1/chat/completions', { model: 'kimi', messages: [{ role: 'user', content: 'queued' }] }],
      ['/v1/responses', { model: 'kimi', input: 'queued' }],
      ['/v1/messages', { model: 'kimi', max_tokens: 64, messages: [{ role: 'user', content: 'queued' }] }],
    ];
    for (const [path, body] of bodies) {
      const leaving = new AbortController();
      const queued = request(`${narrow.gatewayUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: leaving.signal }).catch(() => undefined);
      await waitUntil(() => narrow.gateway.app.openRequests === 2, 5_000);
      await new Promise((resolve) => setTimeout(resolve, 100)); // body read, now waiting for the slot
      leaving.abort();
      await queued;
      assert.ok(await waitUntil(() => narrow.logs().split('\n').some((line) => line.includes('"msg":"request"') && line.includes(`"path":"${path}"`) && line.includes('"outcome":"client-closed"')), 5_000), `${path}: logged as client-closed`);
    }
    holder.abort();
    await holding;
    assert.equal(narrow.logs().split('\n').filter((line) => line.includes('unexpected error')).length, 0, 'no gateway error logged');
  } finally {
    await narrow.close();
  }
});

test('a stream that fails after its first byte is logged and counted as failed with its error code, not as completed', async () => {
  const response = await request(`${stack.gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'cut me [[sim:reset-after-first-byte]]' }] }),
  });
  const parsed = parseSse(await response.body.text());
  assert.ok(parsed.streamError, 'the client got the error payload');
  const line = await waitUntil(() => stack.logs().split('\n').some((entry) => entry.includes('"msg":"request"') && entry.includes('"errorCode":"upstream_error"')), 5_000);
  assert.ok(line, 'the request line says failed with upstream_error');
  const logged = stack.logs().split('\n').filter((entry) => entry.includes('"msg":"request"') && entry.includes('"errorCode":"upstream_error"')).map((entry) => JSON.parse(entry));
  assert.equal(logged.at(-1).outcome, 'failed');
  const status = (await (await request(`${stack.gatewayUrl}/v1/status`)).body.json()) as { errors?: Record<string, number> };
  assert.ok((status.errors?.upstream_error ?? 0) >= 1, `counted in /v1/status errors: ${JSON.stringify(status.errors)}`);
});

for (const tokenKind of ['current', 'legacy'] as const) {
  test(`${tokenKind} dialect: a client that leaves in the first milliseconds leaves no chat behind (CHAT_RETENTION_SECONDS=0, §10.3)`, async () => {
    // Kimi names a new chat only in its answer's first frames: before the fix about a quarter of these stayed.
    const early = await startStack({ serverPool: true, tokenKind, env: { CHAT_RETENTION_SECONDS: '0' }, simulator: { chunkDelayMs: 2 } });
    try {
      assert.equal((await chat(early.gatewayUrl, { prompt: 'warm up' })).status, 200);
      for (let index = 0; index < 40; index += 1) {
        const leaving = new AbortController();
        setTimeout(() => leaving.abort(), 1 + (index % 15));
        await request(`${early.gatewayUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'kimi', stream: index % 2 === 0, messages: [{ role: 'user', content: `early ${index}` }] }),
          signal: leaving.signal,
        }).then((response) => response.body.text()).catch(() => undefined);
      }
      assert.ok(await waitUntil(() => early.gateway.app.openRequests === 0, 10_000));
      // The deletions are queued by each request's clean-up, which may outlast its closed response.
      assert.ok(await waitUntil(async () => (await early.gateway.pool.snapshot()).every((account) => account.inFlight === 0), 10_000));
      await early.gateway.chat.idle();
      const chats = early.simulator.chats(early.accounts[0].userId);
      assert.ok(chats.length > 1, 'some aborted requests had created their chat');
      assert.deepEqual(chats.filter((item) => !item.deleted).map((item) => item.id), []);
      assert.equal(early.simulator.activeStreams(), 0, 'and no upstream stream is left open');
    } finally {
      await early.close();
    }
  });
}

test('a client that leaves a continued turn in its first milliseconds can continue the chat afterwards (§3.8: the parent is looked up)', async () => {
  const early = await startStack({ serverPool: true, env: { CHAT_RETENTION_SECONDS: '600', ACCOUNT_MAX_CONCURRENCY: '4' }, simulator: { chunkDelayMs: 5, maxConcurrentStreamsPerAccount: 50 } });
  try {
    const outcomes: number[] = [];
    for (let index = 0; index < 12; index += 1) {
      const first = await chat(early.gatewayUrl, { prompt: `first ${index}` });
      const conversationId = first.json.id as string;
      const leaving = new AbortController();
      setTimeout(() => leaving.abort(), 2 + (index % 12));
      await chat(early.gatewayUrl, { prompt: `left ${index}`, stream: true, signal: leaving.signal, extra: { conversation_id: conversationId } }).catch(() => undefined);
      // The left turn's clean-up (its record, its lease) may outlast the closed response: until then the chat is busy (409).
      assert.ok(await waitUntil(async () => (await early.gateway.pool.snapshot()).every((account) => account.inFlight === 0), 10_000));
      const next = await chat(early.gatewayUrl, { prompt: `next ${index}`, extra: { conversation_id: conversationId } });
      outcomes.push(next.status);
    }
    assert.deepEqual(outcomes.filter((status) => status !== 200), [], `every chat stays usable: ${outcomes.join(' ')}`);
  } finally {
    await early.close();
  }
});
