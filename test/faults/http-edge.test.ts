// Fault suite (issue 7): what reaches the HTTP edge before any route does, and the request shapes clients send
// that the routes must not mistake. A malformed request target never crashes the process; a request that stops
// arriving is timed out (REQUEST_TIMEOUT_MS) with a 408 envelope; Node's own refusals (headers too large, bad
// HTTP) get an envelope instead of a bare status line; browser SDK headers pass the CORS preflight; HEAD works
// where GET does; an empty Bearer falls back to the server pool; a compressed body is refused by name; a JSON
// error never quotes the body; a client that leaves mid-body is not logged as a gateway fault.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startStack, type Stack } from '../support/stack.ts';
import { chat, waitUntil } from '../support/gateway-client.ts';
import { rawRequest } from '../support/raw-http.ts';

const requestTimeoutMs = 600;
const pageOrigin = 'http://app.example';
const chatBody = JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: 'hi' }] });
let stack: Stack;

before(async () => {
  stack = await startStack({ serverPool: true, env: { REQUEST_TIMEOUT_MS: String(requestTimeoutMs), CORS_ORIGINS: pageOrigin } });
});
after(() => stack?.close());

async function post(path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const response = await request(`${stack.gatewayUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await response.body.text();
  return { status: response.statusCode, text, json: text ? JSON.parse(text) : undefined };
}

test('a request target that is not a URL ("//[", "//:99999"): answered 404 with an envelope, the gateway keeps serving', async () => {
  for (const target of ['//[', '//%zz', '//:99999']) {
    const reply = await rawRequest(stack.gatewayUrl, { method: 'GET', path: target }).response;
    assert.equal(reply.status, 404, target);
    assert.equal(JSON.parse(reply.body.toString('utf8')).error.code, 'not_found');
  }
  assert.equal((await chat(stack.gatewayUrl, { prompt: 'still alive?' })).status, 200);
});

test('repeated slashes route as single ones (//v1/chat/completions, a base URL ending in a slash)', async () => {
  const result = await post('//v1//chat/completions', chatBody);
  assert.equal(result.status, 200, result.text);
});

test(`a body that stops arriving: 408 request_timeout envelope within REQUEST_TIMEOUT_MS (${requestTimeoutMs} ms) and a bit, connection closed`, async () => {
  const started = performance.now();
  const exchange = rawRequest(stack.gatewayUrl, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'content-length': '1000' }, body: '{"model":' });
  const reply = await exchange.response;
  const elapsedMs = performance.now() - started;
  assert.equal(reply.status, 408);
  assert.equal(JSON.parse(reply.body.toString('utf8')).error.code, 'request_timeout');
  assert.ok(elapsedMs >= requestTimeoutMs - 50 && elapsedMs < requestTimeoutMs * 3 + 500, `took ${elapsedMs} ms`);
  assert.ok(await waitUntil(() => stack.gateway.app.openRequests === 0, 1000), 'the request is not left open');
});

test('CORS preflight from an allowed origin allows the headers browser SDKs add (x-stainless-*, anthropic-dangerous-direct-browser-access)', async () => {
  const asked = 'content-type, x-stainless-os, x-stainless-retry-count, anthropic-dangerous-direct-browser-access';
  const response = await request(`${stack.gatewayUrl}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin: pageOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': asked },
  });
  await response.body.text();
  assert.equal(response.statusCode, 204);
  const allowed = String(response.headers['access-control-allow-headers']).split(',').map((name) => name.trim());
  for (const name of asked.split(', ')) assert.ok(allowed.includes(name), `${name} allowed`);
});

test('HEAD on a GET route answers like GET, without a body (uptime checks)', async () => {
  const response = await request(`${stack.gatewayUrl}/ping`, { method: 'HEAD' });
  assert.equal(response.statusCode, 200);
  assert.equal(await response.body.text(), '');
});

test('an empty "Authorization: Bearer" (a blank key field) uses the server pool, as no header does', async () => {
  const result = await post('/v1/chat/completions', chatBody, { authorization: 'Bearer ' });
  assert.equal(result.status, 200, result.text);
});

test('40 refresh tokens in one Authorization header (about 17 KB, over Node\'s 16 KiB default) are read, not refused', async () => {
  const tokens = Array.from({ length: 40 }, (_, index) => `eyJ${String(index).padStart(3, '0')}${'a'.repeat(420)}`).join(',');
  const result = await post('/v1/chat/completions', chatBody, { authorization: `Bearer ${tokens}` });
  assert.notEqual(result.status, 431);
  assert.ok(result.json?.error || result.status === 200, result.text.slice(0, 200));
});

test('headers over 64 KiB: 431 headers_too_large with an envelope, not a bare status line', async () => {
  const reply = await rawRequest(stack.gatewayUrl, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'x-padding': 'p'.repeat(70 * 1024) }, body: chatBody }).response;
  assert.equal(reply.status, 431);
  assert.equal(JSON.parse(reply.body.toString('utf8')).error.code, 'headers_too_large');
});

test('a gzip-compressed body: 415 naming the encoding, not "not valid UTF-8"', async () => {
  const result = await post('/v1/chat/completions', gzipSync(chatBody), { 'content-encoding': 'gzip' });
  assert.equal(result.status, 415);
  assert.match(result.json.error.message, /Content-Encoding "gzip"/);
});

test('a body that is not JSON is never quoted back (it may be a token sent to the wrong endpoint)', async () => {
  const secret = 'eyJrefreshSECRETtoken';
  for (const path of ['/token/check', '/v1/chat/completions']) {
    const result = await post(path, secret);
    assert.equal(result.status, 400);
    assert.equal(result.json.error.code, 'invalid_json');
    assert.ok(!result.text.includes('SECRET'), result.text);
  }
  const broken = await post('/v1/chat/completions', '{"model":"kimi",}');
  assert.match(broken.json.error.message, /at character 16/);
});

test('a field sent with the wrong type is described by its type, not as "required"', async () => {
  const wrongType = await post('/v1/chat/completions', JSON.stringify({ model: 5, messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(wrongType.status, 400);
  assert.equal(wrongType.json.error.param, 'model');
  assert.doesNotMatch(wrongType.json.error.message, /required/);
  const missing = await post('/v1/chat/completions', JSON.stringify({ model: 'kimi' }));
  assert.equal(missing.json.error.param, 'messages');
  assert.match(missing.json.error.message, /required/);
});

test('/v1/responses with a null content part: 400 naming the part, not a 500', async () => {
  const result = await post('/v1/responses', JSON.stringify({ model: 'kimi', input: [{ role: 'user', content: [null] }] }));
  assert.equal(result.status, 400, result.text);
  assert.equal(result.json.error.param, 'input[0].content[0]');
});

test('a client that leaves mid-body is logged as client-closed (499), never as an unexpected gateway error', async () => {
  const exchange = rawRequest(stack.gatewayUrl, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'content-length': '1000' }, body: '{"model":' });
  await new Promise((resolve) => setTimeout(resolve, 100));
  exchange.socket.destroy();
  assert.ok(await waitUntil(() => stack.gateway.app.openRequests === 0, 1000));
  await waitUntil(() => stack.logs().includes('"outcome":"client-closed"'), 1000);
  const lines = stack.logs().split('\n');
  assert.deepEqual(lines.filter((line) => line.includes('unexpected error')), []);
  assert.ok(lines.some((line) => line.includes('"status":499') && line.includes('"outcome":"client-closed"')), 'the request line says the client left');
});
