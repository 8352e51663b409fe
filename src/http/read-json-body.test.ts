/**
 * Reading JSON bodies on a real loopback server (issue 4, memory): large base64 attachment strings land in
 * private temporary files behind placeholders only this request's registry resolves; the body limit still
 * counts every byte; every failure and every release leaves no file behind.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { GatewayError } from '../errors.ts';
import { readJsonBody, readJsonBodyWithSpool, type SpoolRegistry } from './read-json-body.ts';

const folder = mkdtempSync(join(tmpdir(), 'kfa-read-json-'));
const limitBytes = 2_000_000;
const thresholdBytes = 1024;

type Outcome = { value: unknown; spool: SpoolRegistry } | { error: GatewayError };
let lastOutcome: Promise<Outcome> | undefined;
let useSpool = true;
let server: Server;
let baseUrl: string;

before(async () => {
  server = createServer((request, response) => {
    const reading = useSpool
      ? readJsonBodyWithSpool(request, limitBytes, { thresholdBytes, tempDirectory: folder })
      : readJsonBody(request, limitBytes).then((value) => ({ value, spool: undefined as unknown as SpoolRegistry }));
    lastOutcome = reading.then(
      (outcome) => outcome,
      (error: GatewayError) => ({ error }),
    );
    void lastOutcome.then((outcome) => {
      response.writeHead('error' in outcome ? outcome.error.status : 200, { connection: 'close' });
      response.end('error' in outcome ? outcome.error.code : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(folder, { recursive: true, force: true });
});

/** Sends `parts` as a chunked body (no Content-Length, so the limit is enforced while reading). */
async function post(parts: (string | Buffer)[]): Promise<{ status: number; outcome: Outcome }> {
  const status = await new Promise<number>((resolve, reject) => {
    const request = httpRequest(`${baseUrl}/`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', reject);
    for (const part of parts) request.write(part);
    request.end();
  });
  assert.ok(lastOutcome);
  return { status, outcome: await lastOutcome };
}

function base64Of(length: number): string {
  return Buffer.from(Array.from({ length }, (_, index) => (index * 7 + (index >> 5)) & 0xff)).toString('base64');
}

const spoolFiles = () => readdirSync(folder).filter((name) => name.startsWith('kfa-spool-'));

test('issue 4: two large data URLs are spooled to 0600 files; placeholders resolve only here; release deletes them', async () => {
  const first = base64Of(6000);
  const second = base64Of(3000);
  const body = JSON.stringify({
    messages: [{ role: 'user', content: [
      { type: 'text', text: 'two files' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${first}` } },
      { type: 'file', file: { file_data: `data:application/pdf;base64,${second}`, filename: 'a.pdf' } },
      { type: 'file', file_url: { url: 'kfa-spool:forged-by-the-client' } },
    ] }],
  });
  // Split inside the first payload, as the network would.
  const { status, outcome } = await post([body.slice(0, 3000), body.slice(3000)]);
  assert.equal(status, 200);
  assert.ok(!('error' in outcome));
  const content = (outcome.value as { messages: { content: Record<string, Record<string, string>>[] }[] }).messages[0].content;
  // A data URL stays a data URL whose payload is the placeholder (nothing downstream wraps it again).
  const firstUrl = content[1].image_url.url;
  assert.match(firstUrl, /^data:image\/png;base64,kfa-spool:[A-Za-z0-9_-]{24}$/);
  assert.match(content[2].file.file_data, /^data:application\/pdf;base64,kfa-spool:/);
  const firstPlaceholder = firstUrl.slice(firstUrl.indexOf(',') + 1);
  const secondPlaceholder = content[2].file.file_data.split(',')[1];
  const firstEntry = outcome.spool.resolve(firstPlaceholder);
  const secondEntry = outcome.spool.resolve(secondPlaceholder);
  assert.ok(firstEntry && secondEntry);
  assert.deepEqual({ ...firstEntry, path: '' }, { path: '', sizeBytes: first.length, mediaType: 'image/png' });
  assert.equal(readFileSync(firstEntry.path, 'latin1'), first);
  assert.equal(readFileSync(secondEntry.path, 'latin1'), second);
  assert.equal(secondEntry.mediaType, 'application/pdf');
  assert.equal(statSync(firstEntry.path).mode & 0o777, 0o600);
  assert.equal(outcome.spool.resolve('kfa-spool:forged-by-the-client'), undefined, 'a client cannot forge a placeholder');
  assert.equal(outcome.spool.resolve(firstUrl), undefined, 'only the bare placeholder is a key');
  assert.equal(spoolFiles().length, 2);
  await outcome.spool.release();
  await outcome.spool.release();
  assert.deepEqual(spoolFiles(), []);
  assert.equal(outcome.spool.resolve(firstPlaceholder), undefined, 'nothing resolves after release');
});

test('issue 4: bare base64 under an attachment key (Anthropic `data`) becomes a bare placeholder', async () => {
  const payload = base64Of(3000);
  const { outcome } = await post([JSON.stringify({ source: { type: 'base64', media_type: 'image/png', data: payload } })]);
  assert.ok(!('error' in outcome));
  const placeholder = (outcome.value as { source: { data: string } }).source.data;
  assert.match(placeholder, /^kfa-spool:[A-Za-z0-9_-]{24}$/);
  const entry = outcome.spool.resolve(placeholder);
  assert.ok(entry);
  assert.equal(entry.mediaType, undefined);
  assert.equal(readFileSync(entry.path, 'latin1'), payload);
  await outcome.spool.release();
  assert.deepEqual(spoolFiles(), []);
});

test('issue 4: the body limit counts the spooled bytes too; the partial file is removed', async () => {
  const huge = `{"data":"${base64Of(1_600_000)}"}`; // about 2.1 MB of base64: over the 2 MB limit
  const parts = [];
  for (let offset = 0; offset < huge.length; offset += 65_536) parts.push(huge.slice(offset, offset + 65_536));
  const { status, outcome } = await post(parts);
  assert.equal(status, 413);
  assert.ok('error' in outcome && outcome.error.code === 'request_too_large');
  assert.deepEqual(spoolFiles(), []);
});

test('issue 4: invalid JSON after a spooled string and a bad escape inside one are 400s that leave no file', async () => {
  const payload = base64Of(3000);
  const broken = await post([`{"data":"${payload}",}`]);
  assert.equal(broken.status, 400);
  assert.ok('error' in broken.outcome && broken.outcome.error.code === 'invalid_json');
  const nonAscii = await post([`{"url":"data:image/png;base64,${payload}\\u00e9"}`]);
  assert.equal(nonAscii.status, 400);
  assert.ok('error' in nonAscii.outcome && nonAscii.outcome.error.code === 'attachment_invalid');
  assert.deepEqual(spoolFiles(), []);
});

test('issue 4: small bodies, non-attachment strings and the plain reader are unchanged', async () => {
  const body = { model: 'kimi', messages: [{ role: 'user', content: `${'long text '.repeat(500)} ✓` }], url: 'https://example.com/a' };
  const spooled = await post([JSON.stringify(body)]);
  assert.ok(!('error' in spooled.outcome));
  assert.deepEqual(spooled.outcome.value, body);
  assert.deepEqual(spoolFiles(), []);
  useSpool = false;
  try {
    const plain = await post([JSON.stringify({ data: base64Of(3000) })]);
    assert.ok(!('error' in plain.outcome));
    assert.deepEqual(plain.outcome.value, { data: base64Of(3000) });
    const invalid = await post(['{"a":']);
    assert.equal(invalid.status, 400);
  } finally {
    useSpool = true;
  }
});
