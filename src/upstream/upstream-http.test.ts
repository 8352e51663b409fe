// The shared upstream body readers: runs of chunks (issue 7, bench B4) without losing bytes or order, and
// what arrived before a reset still delivered before the error (issue 7 fault suite).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { RateLimitError, UpstreamError } from '../errors.ts';
import { createUpstreamHttp, describeBody, errorForHttpStatus, readBodyRuns, retryAfterMsFromHeaders, type UpstreamHttp } from './upstream-http.ts';

let server: Server;
let origin: string;
let http: UpstreamHttp;

before(async () => {
  server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    // Fifty HTTP chunks written in one go: undici hands each over separately.
    for (let index = 0; index < 50; index += 1) response.write(`piece ${index};`);
    if (request.url === '/reset') setTimeout(() => response.socket?.destroy(), 30);
    else response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  http = createUpstreamHttp({ connectTimeoutMs: 2_000, firstByteTimeoutMs: 2_000, idleTimeoutMs: 2_000, defaultRetryAfterMs: 1_000, userAgent: 'test' });
});

after(async () => {
  await http.close();
  server.close();
});

const expected = Array.from({ length: 50 }, (_unused, index) => `piece ${index};`).join('');

test('readBodyRuns hands over every chunk already received at once, in order, losing nothing', async () => {
  const response = await http.send({ url: `${origin}/whole`, signal: AbortSignal.timeout(5_000) });
  const runs: Uint8Array[][] = [];
  for await (const run of readBodyRuns(response.body, origin)) runs.push(run);
  assert.equal(Buffer.concat(runs.flat()).toString('utf8'), expected);
  assert.ok(runs.every((run) => run.length > 0), 'no empty run');
  assert.ok(runs.flat().length > runs.length, `${runs.flat().length} chunks came in ${runs.length} runs`);
});

test('readBodyRuns delivers the bytes received before a reset, then fails with a retryable upstream error', async () => {
  const response = await http.send({ url: `${origin}/reset`, signal: AbortSignal.timeout(5_000) });
  const received: Uint8Array[] = [];
  await assert.rejects(
    (async () => {
      for await (const run of readBodyRuns(response.body, origin)) received.push(...run);
    })(),
    (error: unknown) => error instanceof UpstreamError && error.isRetryable,
  );
  assert.equal(Buffer.concat(received).toString('utf8'), expected);
});

test('Retry-After: seconds or a future HTTP date; 0, negative, past, or unparseable hints are no hint; more than a day is capped (§10.6)', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');
  const hint = (value: string) => retryAfterMsFromHeaders({ 'retry-after': value }, now);
  assert.equal(hint('7'), 7_000);
  assert.equal(hint(' 3.7 '), 3_700);
  assert.equal(hint('Sat, 28 Nov 2026 12:00:30 GMT'), 30_000);
  for (const none of ['0', '-5', '+0', 'Sat, 28 Nov 2026 11:59:00 GMT', '1e12', 'soon', '']) assert.equal(hint(none), undefined, `"${none}"`);
  assert.equal(hint('99999999999'), 24 * 3_600_000);
});

test('errorForHttpStatus names the operation and path, says a 404/501 endpoint may have moved, and never quotes a query (§3.12)', () => {
  const page = '<html><head><title>404 Not Found</title></head><body>nginx</body></html>';
  const chatUrl = 'https://www.kimi.com/apiv2/kimi.gateway.chat.v1.ChatService/Chat?token=eyJhbGciOiJI.eyJzdWIiOiIx.sig#frag';
  const notFound = errorForHttpStatus(404, {}, 1000, page, { operation: 'chat', path: chatUrl });
  assert.ok(notFound instanceof UpstreamError);
  assert.equal(
    notFound.message,
    'Kimi answered HTTP 404 for chat at /apiv2/kimi.gateway.chat.v1.ChatService/Chat: an HTML page ("404 Not Found nginx"); the endpoint may have moved; run doctor',
  );
  assert.doesNotMatch(notFound.message, /token|eyJ|frag|kimi\.com/);
  assert.match(errorForHttpStatus(501, {}, 1000, '', { operation: 'model list', path: '/apiv2/x/Y' }).message, /^Kimi answered HTTP 501 for model list at \/apiv2\/x\/Y; the endpoint may have moved; run doctor$/);
  assert.doesNotMatch(errorForHttpStatus(500, {}, 1000, '', { operation: 'chat', path: '/a' }).message, /moved/);
  const limited = errorForHttpStatus(429, { 'retry-after': '7' }, 1000, '', { operation: 'chat', path: '/a/b' });
  assert.ok(limited instanceof RateLimitError);
  assert.equal(limited.message, 'Kimi is rate limiting this account (HTTP 429 for chat at /a/b)');
  assert.equal(limited.retryAfterMs, 7000);
  // Without a site (the legacy dialect's callers) the message is as before.
  assert.equal(errorForHttpStatus(404, {}, 1000, 'gone').message, 'Kimi answered HTTP 404: gone');
});

test('describeBody measures binary and Connect-framed bodies instead of quoting their bytes (§3.2)', () => {
  const payload = Buffer.from('{"op":"set","chat":{"id":"01a221ea-933a-889a-8000-9232f226ae63"}}');
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  const framed = Buffer.concat([header, payload, Buffer.from([2, 0, 0, 0, 2]), Buffer.from('{}')]);
  assert.equal(describeBody(framed, 'application/connect+proto'), `a Connect-framed body of ${framed.length} bytes`);
  assert.equal(describeBody(framed.toString('utf8')), `a Connect-framed body of ${framed.length} bytes`);
  assert.equal(describeBody(Buffer.from([0x7b, 0xff, 0xfe, 0x41, 0x42, 0x43])), '6 bytes of binary data');
  assert.equal(describeBody('ok\u0000then'), '7 bytes of binary data');
  assert.equal(describeBody(Buffer.from('plain words\n')), 'plain words');
  assert.equal(describeBody('<html><title>Bad gateway</title></html>'), 'an HTML page ("Bad gateway")');
});
