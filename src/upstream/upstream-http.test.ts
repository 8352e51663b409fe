// The shared upstream body readers: runs of chunks (issue 7, bench B4) without losing bytes or order, and
// what arrived before a reset still delivered before the error (issue 7 fault suite).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { UpstreamError } from '../errors.ts';
import { createUpstreamHttp, readBodyRuns, retryAfterMsFromHeaders, type UpstreamHttp } from './upstream-http.ts';

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
