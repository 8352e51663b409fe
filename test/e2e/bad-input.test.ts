/**
 * Bad input gets a clear OpenAI error envelope with the right status and loses nothing (issue 2):
 * each case is a request a real client could send.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack.ts';

interface Envelope {
  error: { message: string; type: string; code: string; param: string | null };
}

describe('bad input and edge routes', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { BODY_LIMIT_BYTES: '65536' } });
  });
  after(() => stack.close());

  async function post(body: string | undefined, headers: Record<string, string> = {}, path = '/v1/chat/completions') {
    const response = await fetch(`${stack.gatewayUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json', ...headers },
      body,
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: JSON.parse(text) as Envelope };
  }

  function assertEnvelope(result: Awaited<ReturnType<typeof post>>, status: number, code: string) {
    assert.equal(result.status, status, result.text);
    assert.equal(result.json.error.code, code);
    assert.equal(typeof result.json.error.message, 'string');
    assert.ok('param' in result.json.error && 'type' in result.json.error);
    assert.doesNotMatch(result.text, /at \w+ \(|node:internal|\.ts:\d+/, 'no stack trace');
  }

  test('missing messages → 400 naming messages', async () => {
    const result = await post(JSON.stringify({ model: 'kimi' }));
    assertEnvelope(result, 400, 'invalid_request');
    assert.equal(result.json.error.param, 'messages');
  });

  test('empty messages → 400', async () => {
    assertEnvelope(await post(JSON.stringify({ model: 'kimi', messages: [] })), 400, 'invalid_request');
  });

  test('non-JSON body → 400 invalid_json', async () => {
    assertEnvelope(await post('{"model": "kimi", messages: nope}'), 400, 'invalid_json');
  });

  test('wrong content type → 415', async () => {
    assertEnvelope(await post('model=kimi', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
  });

  test('body over the limit → 413, refused while reading', async () => {
    const big = JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: 'x'.repeat(200_000) }] });
    assertEnvelope(await post(big), 413, 'request_too_large');
  });

  test('invalid UTF-8 body → 400', async () => {
    const response = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as Envelope).error.code, 'invalid_json');
  });

  test('unknown role → 400 naming messages[0].role', async () => {
    const result = await post(JSON.stringify({ model: 'kimi', messages: [{ role: 'wizard', content: 'hi' }] }));
    assertEnvelope(result, 400, 'invalid_request');
    assert.equal(result.json.error.param, 'messages[0].role');
    assert.match(result.json.error.message, /unknown role/);
  });

  test('empty token → 401 invalid_token', async () => {
    const result = await post(JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: 'hi' }] }), { authorization: 'Bearer  , ' });
    assertEnvelope(result, 401, 'invalid_token');
  });

  test('malformed JWT → 401, and the token is not echoed', async () => {
    const bogus = 'eyJhbGciOiJIUzUxMiJ9.bm90LWpzb24.c2lnbmF0dXJl';
    const result = await post(JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: 'hi' }] }), { authorization: `Bearer ${bogus}` });
    assert.equal(result.status, 401, result.text);
    assert.ok(!result.text.includes(bogus));
  });

  test('conversation_id that does not exist upstream → 404 conversation_not_found', async () => {
    const result = await post(JSON.stringify({ model: 'kimi', conversation_id: '00000000-0000-0000-0000-000000000000', messages: [{ role: 'user', content: 'hi' }] }));
    assertEnvelope(result, 404, 'conversation_not_found');
  });

  test('unknown route → 404 that names the right route', async () => {
    const result = await post(JSON.stringify({}), {}, '/chat/completions');
    assertEnvelope(result, 404, 'not_found');
    assert.match(result.json.error.message, /POST \/v1\/chat\/completions/);
  });

  test('GET /ping → pong; POST /token/check → live true for a real token, false for a dead one', async () => {
    assert.equal(await (await fetch(`${stack.gatewayUrl}/ping`)).text(), 'pong');
    const live = await post(JSON.stringify({ token: stack.token }), {}, '/token/check');
    assert.deepEqual(JSON.parse(live.text), { live: true });
    const dead = await post(JSON.stringify({ token: `${stack.token.slice(0, -4)}AAAA` }), {}, '/token/check');
    assert.deepEqual(JSON.parse(dead.text), { live: false });
  });

  test("GET /v1/models lists the switches and Kimi's own catalogue (spec §3.5)", async () => {
    const response = await fetch(`${stack.gatewayUrl}/v1/models`, { headers: { authorization: `Bearer ${stack.token}` } });
    const body = (await response.json()) as { object: string; data: { id: string; object: string }[] };
    const ids = body.data.map((model) => model.id);
    assert.equal(body.object, 'list');
    for (const id of ['kimi', 'kimi-search', 'kimi-thinking', 'kimi-silent_search', 'k2d6-chat', 'k3-agent']) assert.ok(ids.includes(id), id);
  });

  test('GET /v1/models/{id} (openai models.retrieve): a known model by name, 404 model_not_found otherwise', async () => {
    const client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
    for (const id of ['kimi', 'kimi-thinking-search', 'k2d6-chat']) assert.deepEqual(await client.models.retrieve(id), { id, object: 'model', created: 1_700_000_000, owned_by: 'kimi-free-api' });
    const missing = await client.models.retrieve('gpt-4o').catch((error: unknown) => error);
    assert.ok(missing instanceof OpenAI.NotFoundError, String(missing));
    assert.equal((missing.error as { code?: string }).code, 'model_not_found');
    const odd = await fetch(`${stack.gatewayUrl}/v1/models/%E0%A4%A`);
    assert.equal(odd.status, 404, 'a malformed escape is a 404, not a crash');
  });

  test('a client disconnect aborts the upstream stream within 100 ms', async () => {
    const controller = new AbortController();
    const response = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'kimi', stream: true, messages: [{ role: 'user', content: 'stall [[sim:stall-between-chunks]]' }] }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    assert.equal(stack.simulator.activeStreams(stack.accounts[0].userId), 1);
    controller.abort();
    const abortedAt = Date.now();
    while (stack.simulator.activeStreams(stack.accounts[0].userId) > 0 && Date.now() - abortedAt < 2000) await delay(5);
    const elapsedMs = Date.now() - abortedAt;
    assert.equal(stack.simulator.activeStreams(stack.accounts[0].userId), 0);
    assert.ok(elapsedMs < 100, `upstream aborted after ${elapsedMs} ms`);
  });
});
