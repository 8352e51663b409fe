// Fault suite (issue 7): hostile client input. Oversized bodies get 413 while reading (BODY_LIMIT_BYTES),
// deep JSON and invalid UTF-8 get 400 without a crash, a huge messages array is answered or refused within
// bounds, and every SSRF spelling of a private address is refused with 400 attachment_url_forbidden before
// any connection is made (issue 4 "Safety"; list shared with src/files/ssrf-agent.test.ts).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { Client } from 'undici';
import { startTestServer, watchOutgoingSockets, samplePng, type TestServer } from '../../src/files/attachment-test-server.ts';
import { startSimulator } from '../../simulator/simulator.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { chat } from '../support/gateway-client.ts';
import { rawRequest } from '../support/raw-http.ts';

const bodyLimit = 2 * 1024 * 1024;
let stack: Stack;
let files: TestServer;

before(async () => {
  stack = await startStack({ serverPool: true, env: { BODY_LIMIT_BYTES: String(bodyLimit), ALLOW_PRIVATE_ATTACHMENT_URLS: '0' } });
  files = await startTestServer((_request, response) => response.writeHead(200, { 'content-type': 'image/png' }).end(samplePng));
});
after(async () => {
  await stack?.close();
  await files?.close();
});

async function stillAnswers(): Promise<void> {
  const result = await chat(stack.gatewayUrl, { prompt: 'still alive?' });
  assert.equal(result.status, 200, 'the gateway still answers normal requests');
}

async function post(body: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const exchange = rawRequest(stack.gatewayUrl, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', ...headers }, body });
  const response = await exchange.response;
  return { status: response.status, json: JSON.parse(response.body.toString('utf8') || 'null') };
}

test('oversized body declared by Content-Length: 413 request_too_large before reading it', async () => {
  const huge = JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: 'x'.repeat(4 * bodyLimit) }] });
  const result = await post(huge);
  assert.equal(result.status, 413);
  assert.equal(result.json.error.code, 'request_too_large');
  await stillAnswers();
});

test('oversized chunked body (no Content-Length): 413 request_too_large once the limit is passed', async () => {
  const client = new Client(stack.gatewayUrl);
  try {
    const parts = async function* () {
      yield Buffer.from('{"model":"kimi","messages":[{"role":"user","content":"');
      for (let sent = 0; sent < 4 * bodyLimit; sent += 65_536) yield Buffer.alloc(65_536, 0x61);
      yield Buffer.from('"}]}');
    };
    const response = await client.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: Readable.from(parts()) });
    assert.equal(response.statusCode, 413);
    assert.equal(((await response.body.json()) as any).error.code, 'request_too_large');
  } finally {
    await client.close();
  }
  await stillAnswers();
});

test('deep JSON (100,000 nested arrays, and 100,000 nested objects inside a message): 400, no crash', async () => {
  const deepArray = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
  const first = await post(deepArray);
  assert.equal(first.status, 400);
  const deepObject = `{"model":"kimi","messages":[{"role":"user","content":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]}`;
  const second = await post(deepObject);
  assert.equal(second.status, 400);
  assert.equal(second.json.error.type, 'invalid_request_error');
  await stillAnswers();
});

test('huge messages array (20,000 messages, under the body limit): answered or refused with 400 within 10 s, never a 500', async () => {
  const messages = Array.from({ length: 20_000 }, (_unused, index) => ({ role: index % 2 === 0 ? 'user' : 'assistant', content: 'hi' }));
  messages.push({ role: 'user', content: 'last' });
  const result = await chat(stack.gatewayUrl, { messages });
  assert.ok(result.status === 200 || result.status === 400, `status ${result.status}: ${JSON.stringify(result.json).slice(0, 200)}`);
  assert.ok(result.elapsedMs < 10_000, `took ${result.elapsedMs} ms`);
  await stillAnswers();
});

test('invalid UTF-8 in the body: 400 invalid_json, no replacement characters sent upstream', async () => {
  const body = Buffer.concat([Buffer.from('{"model":"kimi","messages":[{"role":"user","content":"bad '), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')]);
  const result = await post(body);
  assert.equal(result.status, 400);
  assert.equal(result.json.error.code, 'invalid_json');
  await stillAnswers();
});

const hostileHosts = [
  '127.0.0.1', 'localhost', '2130706433', '0x7f000001', '0177.0.0.1', '127.1', '[::1]', '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]', '0.0.0.0', '[::]', '169.254.169.254', '10.0.0.1', '192.168.1.1', '172.16.0.1', '100.64.0.1',
  '[fe80::1]', '[fc00::1]', '224.0.0.1', '[64:ff9b::7f00:1]',
];

test(`every SSRF spelling (${hostileHosts.length} hosts × image_url/file, plus credentials and non-http schemes): 400 attachment_url_forbidden, no connection made, nothing sent upstream`, async () => {
  const client = new Client(stack.gatewayUrl);
  const ask = async (part: unknown) => {
    const response = await client.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, part] }] }),
    });
    return { status: response.statusCode, json: (await response.body.json()) as any };
  };
  // Warm up: the client's connection, the account's session and the upstream sockets exist before we count.
  assert.equal((await ask({ type: 'text', text: 'warm' })).status, 200);
  const chatsBefore = stack.simulator.requests.length;
  const sockets = watchOutgoingSockets();
  try {
    const urls = [
      ...hostileHosts.map((host) => `http://${host}:${files.port}/a.png`),
      `http://user:secret@127.0.0.1:${files.port}/a.png`,
      'file:///etc/passwd',
      `ftp://127.0.0.1:${files.port}/a.png`,
      `gopher://127.0.0.1:${files.port}/_x`,
    ];
    for (const url of urls) {
      for (const part of [{ type: 'image_url', image_url: { url } }, { type: 'file', file_url: { url } }]) {
        const result = await ask(part);
        assert.equal(result.status, 400, `${url} as ${part.type}: ${JSON.stringify(result.json)}`);
        assert.equal(result.json.error.code, 'attachment_url_forbidden', url);
      }
    }
    assert.equal(sockets.count(), 0, 'no outgoing connection was opened');
    assert.equal(files.connectionCount(), 0);
    assert.equal(stack.simulator.requests.length, chatsBefore, 'nothing reached the upstream');
  } finally {
    sockets.stop();
    await client.close();
  }
});

test('a 30,000-character prompt without whitespace is answered without blocking the event loop for more than 200 ms (usage estimate included)', async () => {
  // The gateway runs in this process, so a blocked event loop shows as a late timer here.
  let last = performance.now();
  let longestGap = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 10);
  try {
    const result = await chat(stack.gatewayUrl, { prompt: 'x'.repeat(30_000) });
    assert.equal(result.status, 200);
  } finally {
    clearInterval(ticker);
  }
  assert.ok(longestGap < 200, `the event loop was blocked for ${Math.round(longestGap)} ms`);
});

test('a model name no header can carry (em dash, CJK, CR/LF) is answered by the default model on every API, streamed or not, and never keeps its account', async () => {
  // One slot and a short queue: a request that kept its account would make the next one time out with 429.
  const narrow = await startStack({ serverPool: true, env: { ACCOUNT_MAX_CONCURRENCY: '1', QUEUE_TIMEOUT_MS: '2000' } });
  try {
    const model = 'kimi—k2 模型\r\nx-injected: 1';
    const bodies = [
      { path: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: 'hi' }] } },
      { path: '/v1/responses', body: { model, input: 'hi' } },
      { path: '/v1/messages', body: { model, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] } },
    ];
    for (const { path, body } of bodies) {
      for (const stream of [true, false]) {
        const response = await rawRequest(narrow.gatewayUrl, { path, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream }) }).response;
        const where = `${path} stream=${stream}`;
        assert.equal(response.status, 200, `${where}: ${response.body.toString('utf8').slice(0, 300)}`);
        assert.equal(response.headers['x-kimi-model-fallback'], 'unknown model "kimi\\u2014k2 \\u6a21\\u578b\\u000d\\u000ax-injected: 1"; answered with the default model', where);
        assert.equal(response.headers['x-injected'], undefined, where);
        assert.equal(narrow.simulator.activeStreams(), 0, `${where}: the upstream stream was released`);
      }
    }
  } finally {
    await narrow.close();
  }
});

/** A file server that sends its 12-byte text file one byte every 250 ms (3 s in all). */
function startDripServer(): Promise<TestServer> {
  return startTestServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    let sent = 0;
    const timer = setInterval(() => {
      response.write('a');
      if (++sent >= 12) {
        clearInterval(timer);
        response.end();
      }
    }, 250);
    response.on('close', () => clearInterval(timer));
  });
}

test('an attachment server that drips its file holds no account slot: a plain request behind it is answered at once, and the slow one still completes', async () => {
  // One slot, a 2 s queue: while the slow file was fetched under the lease, the plain request timed out with 429.
  const narrow = await startStack({ serverPool: true, env: { ACCOUNT_MAX_CONCURRENCY: '1', QUEUE_TIMEOUT_MS: '2000', ALLOW_PRIVATE_ATTACHMENT_URLS: '1' } });
  const drip = await startDripServer();
  try {
    const started = performance.now();
    const slow = chat(narrow.gatewayUrl, { messages: [{ role: 'user', content: [{ type: 'text', text: 'read this' }, { type: 'file', file_url: { url: `${drip.origin}/slow.txt` } }] }] });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const plain = await chat(narrow.gatewayUrl, { prompt: 'plain question' });
    const plainMs = performance.now() - started;
    assert.equal(plain.status, 200, JSON.stringify(plain.json));
    const slowResult = await slow;
    assert.equal(slowResult.status, 200, JSON.stringify(slowResult.json));
    assert.ok(plainMs < performance.now() - started, 'the plain request was answered before the slow one');
    assert.ok(plainMs < 2_000, `answered without waiting for the slot (${Math.round(plainMs)} ms)`);
  } finally {
    await drip.close();
    await narrow.close();
  }
});

test('failover reads a slow attachment again before leasing the next account: a plain request meanwhile gets that account at once', async () => {
  const simulator = await startSimulator();
  const proxy = await startFaultProxy(simulator.url);
  let refused = 0;
  // The first upload (account A) is refused with a limit, so the request fails over to account B.
  proxy.setRule({ path: /file\/upload/, rewrite: (answer) => (refused++ === 0 ? { status: 429, headers: { 'content-type': 'text/plain', 'retry-after': '30' }, body: Buffer.from('limited') } : answer) });
  const narrow = await startStack({ serverPool: true, accounts: 2, existingSimulator: simulator, env: { KIMI_BASE_URL: proxy.url, ACCOUNT_MAX_CONCURRENCY: '1', QUEUE_TIMEOUT_MS: '2000', ALLOW_PRIVATE_ATTACHMENT_URLS: '1' } });
  const drip = await startDripServer();
  try {
    const slow = chat(narrow.gatewayUrl, { messages: [{ role: 'user', content: [{ type: 'text', text: 'read this' }, { type: 'file', file_url: { url: `${drip.origin}/slow.txt` } }] }] });
    // Attempt 1 fetched for 3 s, was refused on A; attempt 2 is fetching again.
    await new Promise((resolve) => setTimeout(resolve, 3_600));
    const plain = await chat(narrow.gatewayUrl, { prompt: 'plain question' });
    assert.equal(plain.status, 200, `account B was free while the file was fetched again: ${JSON.stringify(plain.json)}`);
    assert.equal((await slow).status, 200);
    assert.ok(refused >= 2, "the refused upload, then the one on the other account");
  } finally {
    await drip.close();
    await narrow.close();
    await proxy.close();
    await simulator.close();
  }
});
