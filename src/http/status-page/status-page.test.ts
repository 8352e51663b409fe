/**
 * The status page in headless Chromium against a loopback stub of the JSON endpoints it reads
 * (issue 6: key prompt, pool, errors, streamed playground; issue 10: unknown upstream names and the
 * add-account form). The stub stands in for the gateway until the app exists; the end-to-end test
 * against the real gateway and simulator comes with it.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../../../test/support/browser.ts';
import { statusPageAsset, statusPageSecurityHeaders } from './serve-static.ts';

const GATEWAY_KEY = 'test-gateway-key-123';
const HOSTILE_ID = '<img src=x onerror="window.__injected=1">';

interface SeenRequest { method: string; path: string; authorization: string | undefined; body: string }

let server: Server;
let baseUrl: string;
let browser: Browser;
let seen: SeenRequest[] = [];
let releaseStream: () => void = () => {};

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify(body));
}

const statusBody = {
  version: '9.8.7',
  dialectMode: 'auto',
  uptimeSeconds: 3725,
  accounts: [
    { id: 'a1b2c3d4', dialect: 'current', state: 'live', inFlight: 1, isShortLived: false, source: 'env',
      accessExpiresAt: new Date(Date.now() + 3_600_000).toISOString(), lastRefreshAt: Date.now() - 120_000,
      quota: { used: 3, limit: 10 } },
    { id: HOSTILE_ID, dialect: 'legacy', state: 'cooling', inFlight: 0, isShortLived: true, source: '<b>form</b>',
      cooldownUntil: Date.now() + 60_000 },
  ],
  errors: { rate_limited: 3, upstream_timeout: 1 },
  unknownUpstream: { 'event:chat.newBlock': 4 },
};

function writeChunk(response: ServerResponse, delta: Record<string, string>): void {
  response.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta }] })}\n\n`);
}

async function streamCompletion(request: SeenRequest, response: ServerResponse): Promise<void> {
  const prompt = JSON.parse(request.body).messages[0].content as string;
  response.writeHead(200, { 'Content-Type': 'text/event-stream', 'X-Accel-Buffering': 'no' });
  writeChunk(response, { reasoning_content: 'Thinking it over.' });
  // A multi-byte character split across two writes: the page must decode bytes, not chunks.
  const greeting = Buffer.from(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: '你好' } }] })}\n\n`);
  response.write(greeting.subarray(0, 17));
  response.write(greeting.subarray(17));
  if (prompt === 'fail') {
    response.end('data: {"error":{"message":"upstream dropped the stream","type":"api_error","code":"upstream_error","param":null}}\n\n');
    return;
  }
  // Hold the rest until the test has seen the first part on screen: proof that the page streams.
  await new Promise<void>((resolve) => { releaseStream = resolve; });
  writeChunk(response, { content: ', world' });
  response.end('data: [DONE]\n\n');
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const path = new URL(request.url ?? '/', 'http://stub').pathname;
  const record = { method: request.method ?? 'GET', path, authorization: request.headers.authorization,
    body: Buffer.concat(chunks).toString('utf8') };
  seen.push(record);
  const asset = request.method === 'GET' ? statusPageAsset(path) : undefined;
  if (asset) {
    response.writeHead(200, { ...statusPageSecurityHeaders, 'Content-Type': asset.contentType });
    response.end(asset.body);
    return;
  }
  if (record.authorization !== `Bearer ${GATEWAY_KEY}`) {
    json(response, 401, { error: { message: 'gateway key required', type: 'authentication_error', code: 'invalid_api_key', param: null } });
    return;
  }
  if (path === '/v1/status') return json(response, 200, statusBody);
  if (path === '/v1/models') return json(response, 200, { object: 'list', data: [{ id: 'kimi-k2' }, { id: 'kimi-k2-thinking' }] });
  if (path === '/v1/accounts' && record.method === 'POST') {
    return json(response, 201, { account: { id: 'e5f6a7b8', dialect: 'current', state: 'live', isShortLived: true } });
  }
  if (path === '/v1/chat/completions') return streamCompletion(record, response);
  json(response, 404, { error: { message: 'no route', type: 'not_found_error', code: 'not_found', param: null } });
}

before(async () => {
  server = createServer((request, response) => { void handle(request, response); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

after(async () => {
  releaseStream();
  await browser?.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => { seen = []; });

/** Short waits: every step here takes milliseconds, and a failing test should fail fast. */
async function newContext() {
  const context = await browser.newContext();
  context.setDefaultTimeout(5000);
  return context;
}

/** A fresh context per test, so sessionStorage starts empty; returns the page after entering the key. */
async function openWithKey(): Promise<Page> {
  const context = await newContext();
  const page = await context.newPage();
  const pageErrors: Error[] = [];
  page.on('pageerror', (error) => pageErrors.push(error));
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector('#key-section:not([hidden])');
  await page.fill('#key-input', GATEWAY_KEY);
  await page.click('#key-section button[type=submit]');
  await page.waitForFunction(() => document.getElementById('service-version')?.textContent === '9.8.7');
  await page.waitForSelector('#model-select option', { state: 'attached' });
  assert.deepEqual(pageErrors, []);
  return page;
}

test('asks for the gateway key on 401, keeps it in sessionStorage only and sends it on every call', async () => {
  const page = await openWithKey();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('kimi-free-api.gateway-key')), GATEWAY_KEY);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.equal(await page.evaluate(() => document.cookie), '');
  const apiCalls = seen.filter((request) => request.path.startsWith('/v1/'));
  assert.equal(apiCalls[0].authorization, undefined, 'the first status call had no key and got 401');
  const afterKey = apiCalls.slice(1);
  assert.ok(afterKey.some((request) => request.path === '/v1/models'));
  assert.ok(afterKey.every((request) => request.authorization === `Bearer ${GATEWAY_KEY}`));
  await page.context().close();
});

test('shows version, dialect mode, the pool, error counts and unknown upstream names, all as text', async () => {
  const page = await openWithKey();
  assert.equal(await page.textContent('#service-dialect'), 'auto');
  assert.equal(await page.textContent('#service-uptime'), '1 h 2 min');
  assert.equal(await page.textContent('#summary'), '1 of 2 accounts live');
  const rows = await page.$$eval('#accounts-body tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
  assert.equal(rows.length, 2);
  assert.match(rows[0], /a1b2c3d4.*current.*live.*3 \/ 10 used.*env/);
  assert.match(rows[0], /in 1 hour|in 60 minutes/);
  assert.match(rows[1], /cooling \(until .+\)/);
  assert.match(rows[1], /short-lived/);
  // Server strings are shown literally and never parsed as markup.
  assert.ok(rows[1].includes(HOSTILE_ID));
  assert.ok(rows[1].includes('<b>form</b>'));
  assert.equal(await page.$$eval('#accounts-body img, #accounts-body b', (nodes) => nodes.length), 0);
  assert.equal(await page.evaluate(() => (window as unknown as { __injected?: number }).__injected), undefined);
  const errors = await page.$$eval('#errors-body tr', (trs) => trs.map((tr) => tr.textContent));
  assert.deepEqual(errors, ['rate_limited3', 'upstream_timeout1']);
  assert.match(await page.textContent('#unknown-summary') ?? '', /Upstream sent 1 unknown thing \(4 times in all\)/);
  assert.equal(await page.textContent('#unknown-list'), 'event:chat.newBlock × 4');
  await page.context().close();
});

test('the playground streams: reasoning and answer appear separately before the stream ends', async () => {
  const page = await openWithKey();
  await page.selectOption('#model-select', 'kimi-k2-thinking');
  await page.fill('#prompt-input', 'hello');
  await page.click('#send-button');
  await page.waitForFunction(() => document.getElementById('answer-output')?.textContent === '你好');
  assert.equal(await page.textContent('#reasoning-output'), 'Thinking it over.');
  assert.equal(await page.getAttribute('#answer-output', 'aria-busy'), 'true');
  releaseStream();
  await page.waitForFunction(() => document.getElementById('answer-output')?.getAttribute('aria-busy') === 'false');
  assert.equal(await page.textContent('#answer-output'), '你好, world');
  assert.equal(await page.textContent('#playground-error'), '');
  const sent = JSON.parse(seen.find((request) => request.path === '/v1/chat/completions')?.body ?? '{}');
  assert.deepEqual(sent, { model: 'kimi-k2-thinking', stream: true, messages: [{ role: 'user', content: 'hello' }] });
  await page.context().close();
});

test('an error payload after the first byte is shown as an error, not as answer text', async () => {
  const page = await openWithKey();
  await page.fill('#prompt-input', 'fail');
  await page.click('#send-button');
  await page.waitForFunction(() => (document.getElementById('playground-error')?.textContent ?? '') !== '');
  assert.equal(await page.textContent('#playground-error'), 'Error: upstream dropped the stream (upstream_error)');
  assert.equal(await page.textContent('#answer-output'), '你好');
  await page.context().close();
});

test('issue 10: the add-account form posts the pasted text and clears it after success', async () => {
  const page = await openWithKey();
  await page.fill('#account-input', "curl 'https://www.kimi.com/api/user' -H 'authorization: Bearer eyJfake'");
  await page.click('#account-form button[type=submit]');
  await page.waitForFunction(() => (document.getElementById('account-result')?.textContent ?? '').startsWith('Added'));
  assert.match(await page.textContent('#account-result') ?? '', /Added account e5f6a7b8 \(current, live\)\. .*short-lived/);
  assert.equal(await page.inputValue('#account-input'), '');
  const post = seen.find((request) => request.path === '/v1/accounts' && request.method === 'POST');
  assert.deepEqual(JSON.parse(post?.body ?? '{}'), { input: "curl 'https://www.kimi.com/api/user' -H 'authorization: Bearer eyJfake'" });
  assert.equal(post?.authorization, `Bearer ${GATEWAY_KEY}`);
  await page.context().close();
});

test('a refused key brings the key form back with a message', async () => {
  const context = await newContext();
  const page = await context.newPage();
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector('#key-section:not([hidden])');
  await page.fill('#key-input', 'wrong-key');
  await page.click('#key-section button[type=submit]');
  await page.waitForFunction(() => (document.getElementById('key-message')?.textContent ?? '').includes('refused'));
  assert.equal(await page.isVisible('#key-section'), true);
  await context.close();
});

test('serve-static: the three assets by path, nothing else', () => {
  assert.equal(statusPageAsset('/')?.contentType, 'text/html; charset=utf-8');
  assert.equal(statusPageAsset('/?refresh=1')?.contentType, 'text/html; charset=utf-8');
  assert.equal(statusPageAsset('/status-page.js')?.contentType, 'text/javascript; charset=utf-8');
  assert.equal(statusPageAsset('/status-page.css')?.contentType, 'text/css; charset=utf-8');
  assert.match(statusPageAsset('/')?.body.toString('utf8') ?? '', /<title>kimi-free-api status<\/title>/);
  for (const path of ['/serve-static.ts', '/../errors.ts', '/status-page.test.ts', '/index.htm', '/v1/status']) {
    assert.equal(statusPageAsset(path), undefined, path);
  }
});
