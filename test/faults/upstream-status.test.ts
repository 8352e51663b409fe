// Fault suite (issue 7): upstream answers that are refusals rather than streams — 401 with and without a
// working refresh (spec §3.4), 429 and overload with and without Retry-After (§3.12, §10.6; contract: every
// 429 carries Retry-After and the account cools down), 5xx, and HTML or an error body sent with status 200.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import OpenAI from 'openai';
import { simulatedReply, startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { chat } from '../support/gateway-client.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';

const chatPath = '/apiv2/kimi.gateway.chat.v1.ChatService/Chat';
let simulator: Simulator;
let proxy: FaultProxy;
let stack: Stack;

before(async () => {
  simulator = await startSimulator();
  proxy = await startFaultProxy(simulator.url);
});
after(async () => {
  await proxy?.close();
  await simulator?.close();
});
// A fresh gateway and account per test: cooldowns and invalid marks must not leak from one test to the next.
beforeEach(async () => {
  simulator.reset();
  stack = await startStack({ serverPool: true, existingSimulator: simulator, env: { ACCOUNT_COOLDOWN_MS: '20000' } });
});
afterEach(() => stack.close());

const userId = () => stack.accounts[0].userId;
// Every test has its own account and simulator.reset() clears the record, so all Chat calls are this test's
// (a refused token records no userId, so filtering by account would miss it).
const chatRequests = () => simulator.requests.filter((request) => request.path === chatPath);

async function snapshot() {
  const [only] = await stack.gateway.pool.snapshot();
  return only;
}

test('upstream 401 once: the gateway refreshes the token once and retries; the client gets the answer (§3.4)', async () => {
  const warm = await chat(stack.gatewayUrl, { prompt: 'warm up' });
  assert.equal(warm.status, 200);
  const refreshesBefore = simulator.refreshCount(userId());
  simulator.setScenario('unauthenticated', { userId: userId(), times: 1 });
  const result = await chat(stack.gatewayUrl, { prompt: 'after a 401' });
  assert.equal(result.status, 200, JSON.stringify(result.json));
  assert.equal(result.text, simulatedReply({ userText: 'after a 401', turn: 1 }).text);
  assert.equal(simulator.refreshCount(userId()), refreshesBefore + 1, 'exactly one refresh after the 401');
  assert.equal(chatRequests().length, 3, 'warm-up, the refused attempt, the retry');
});

test('upstream 401 and the refresh is refused too: 401 invalid_token through the openai SDK, the account marked invalid (§3.4)', async () => {
  // The SDK always sends a key; with API_KEYS set the gateway takes it as the gateway key, not a Kimi token.
  const keyed = await startStack({ serverPool: true, existingSimulator: simulator, env: { API_KEYS: 'fault-suite-key' } });
  try {
    const client = new OpenAI({ baseURL: `${keyed.gatewayUrl}/v1`, apiKey: 'fault-suite-key', maxRetries: 0 });
    const account = keyed.accounts[0].userId;
    await client.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'warm up' }] });
    const refreshesBefore = simulator.refreshCount(account);
    simulator.setScenario('refresh-fails', { userId: account });
    const error = await client.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'hi [[sim:unauthenticated]]' }] }).catch((caught: unknown) => caught);
    assert.ok(error instanceof OpenAI.AuthenticationError, `expected AuthenticationError, got ${String(error)}`);
    assert.equal(error.status, 401);
    assert.equal(error.code, 'invalid_token');
    assert.equal(chatRequests().length, 2, 'warm-up and the refused attempt; no retry without a fresh token');
    assert.equal(simulator.refreshCount(account), refreshesBefore, 'the refresh was refused');
    const [state] = await keyed.gateway.pool.snapshot();
    assert.equal(state.state, 'invalid');
  } finally {
    await keyed.close();
  }
});

for (const [scenario, retryAfter] of [['http-429', '7'], ['http-429-no-hint', '20']] as const) {
  test(`upstream ${scenario}: client gets 429 rate_limited with Retry-After ${retryAfter} s, the account cools down, the next request makes no upstream call (contract, §10.6)`, async () => {
    simulator.setScenario(scenario, { userId: userId() });
    const first = await chat(stack.gatewayUrl, { prompt: 'limit me' });
    assert.equal(first.status, 429);
    assert.equal(first.json.error.code, 'rate_limited');
    assert.equal(first.headers['retry-after'], retryAfter);
    const cooling = await snapshot();
    assert.equal(cooling.state, 'cooling');
    const expectedUntil = Date.now() + Number(retryAfter) * 1000;
    assert.ok(Math.abs((cooling.cooldownUntil ?? 0) - expectedUntil) < 2000, 'cooldown ends when Retry-After says');
    const calls = chatRequests().length;
    const second = await chat(stack.gatewayUrl, { prompt: 'still cooling', stream: true });
    assert.equal(second.status, 429);
    assert.ok(Number(second.headers['retry-after']) >= 1 && Number(second.headers['retry-after']) <= Number(retryAfter));
    assert.equal(chatRequests().length, calls, 'a cooling account is not asked');
  });
}

test('a 429 (Retry-After 7 s) on a continued turn cools the account too: the next requests are refused without an upstream call', async () => {
  const first = await chat(stack.gatewayUrl, { prompt: 'turn one' });
  assert.equal(first.status, 200);
  const limited = await chat(stack.gatewayUrl, { prompt: 'turn two [[sim:http-429]]', extra: { conversation_id: first.json.id } });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers['retry-after'], '7');
  assert.equal((await snapshot()).state, 'cooling');
  const calls = chatRequests().length;
  for (const prompt of ['a new chat', 'another']) assert.equal((await chat(stack.gatewayUrl, { prompt })).status, 429);
  assert.equal(chatRequests().length, calls, 'a cooling account is not asked');
});

test('an overload after the first text (§3.14 d, block exception): the error payload ends the stream and the account cools down', async () => {
  const cut = await chat(stack.gatewayUrl, { prompt: 'busy [[sim:exception-mid-stream]]', stream: true });
  assert.equal(cut.streamError?.code, 'upstream_overloaded');
  assert.equal((await snapshot()).state, 'cooling');
  const calls = chatRequests().length;
  assert.equal((await chat(stack.gatewayUrl, { prompt: 'next' })).status, 429);
  assert.equal(chatRequests().length, calls, 'a cooling account is not asked');
});

test('free-user overload in the stream (§3.14 d): 429 upstream_overloaded with Retry-After, the account cools down', async () => {
  simulator.setScenario('overload-free-user', { userId: userId() });
  const result = await chat(stack.gatewayUrl, { prompt: 'busy?', stream: true });
  assert.equal(result.status, 429);
  assert.equal(result.json.error.code, 'upstream_overloaded');
  assert.ok(Number(result.headers['retry-after']) >= 1);
  assert.equal((await snapshot()).state, 'cooling');
});

test('upstream 503 with an HTML page: 429 upstream_overloaded with Retry-After, no HTML passed to the client', async () => {
  simulator.setScenario('http-503', { userId: userId() });
  const result = await chat(stack.gatewayUrl, { prompt: 'overloaded' });
  assert.equal(result.status, 429);
  assert.equal(result.json.error.code, 'upstream_overloaded');
  assert.equal(result.headers['retry-after'], '20');
  assert.doesNotMatch(result.json.error.message, /<html|<body/i);
});

test('upstream 500 (Connect internal): 502 upstream_error, the stream never starts', async () => {
  simulator.setScenario('http-500', { userId: userId() });
  const result = await chat(stack.gatewayUrl, { prompt: 'break', stream: true });
  assert.equal(result.status, 502);
  assert.equal(result.json.error.code, 'upstream_error');
});

test('a continued turn that fails upstream (500): 502 to the client, the temporary chat and its first answer are kept, the retried turn continues it', async () => {
  const first = await chat(stack.gatewayUrl, { prompt: 'remember 42' });
  assert.equal(first.status, 200);
  const conversationId: string = first.json.id;
  simulator.setScenario('http-500', { userId: userId(), times: 1 });
  const failed = await chat(stack.gatewayUrl, { prompt: 'turn 2', extra: { conversation_id: conversationId } });
  assert.equal(failed.status, 502);
  await stack.gateway.chat.idle(); // a deletion, had one been started, has finished by now
  assert.equal(simulator.chats(userId()).find((item) => item.id === conversationId)?.deleted, false, 'the chat is still there');
  const retried = await chat(stack.gatewayUrl, { prompt: 'turn 2', extra: { conversation_id: conversationId } });
  assert.equal(retried.status, 200, JSON.stringify(retried.json));
  assert.equal(retried.json.id, conversationId);
  assert.equal(retried.text, simulatedReply({ userText: 'turn 2', turn: 2 }).text);
});

test('HTML page with status 200 instead of a stream: 502 upstream_error before any byte, never an empty success', async () => {
  simulator.setScenario('html-200', { userId: userId() });
  for (const stream of [false, true]) {
    const result = await chat(stack.gatewayUrl, { prompt: 'html', stream });
    assert.equal(result.status, 502, `stream=${stream}`);
    assert.equal(result.json.error.code, 'upstream_error');
    assert.doesNotMatch(result.json.error.message, /<html|<body/i);
  }
});

test('Connect error JSON with status 200 and application/json: mapped to an error, not an empty answer', async () => {
  const isolated = await startStack({ serverPool: true, existingSimulator: simulator, env: { KIMI_BASE_URL: proxy.url } });
  try {
    proxy.setRule({
      path: /ChatService\/Chat$/,
      rewrite: () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"code":"internal","message":"server error"}') }),
    });
    const result = await chat(isolated.gatewayUrl, { prompt: 'json error', stream: true });
    assert.ok(result.status >= 500 && result.status < 600, `status ${result.status}`);
    assert.equal(result.json.error.code, 'upstream_error');
    assert.ok(proxy.matched >= 1);
  } finally {
    proxy.setRule(undefined);
    await isolated.close();
  }
});

test('a 429 whose Retry-After is 0, negative or a past date cools the account for ACCOUNT_COOLDOWN_MS; a hint of years is capped at a day (§10.6)', async () => {
  const cases: [hint: string, expectedSeconds: number][] = [
    ['0', 20],
    ['-5', 20],
    [new Date(Date.now() - 60_000).toUTCString(), 20],
    ['99999999999', 86_400],
  ];
  try {
    for (const [hint, expectedSeconds] of cases) {
      // A fresh gateway per hint: each starts with an account that is not cooling.
      const isolated = await startStack({ serverPool: true, existingSimulator: simulator, env: { KIMI_BASE_URL: proxy.url, ACCOUNT_COOLDOWN_MS: '20000' } });
      try {
        proxy.setRule({ path: /ChatService\/Chat$/, rewrite: () => ({ status: 429, headers: { 'content-type': 'text/plain', 'retry-after': hint }, body: Buffer.from('slow down') }) });
        const limited = await chat(isolated.gatewayUrl, { prompt: `limit me (${hint})` });
        assert.equal(limited.status, 429, hint);
        assert.equal(limited.headers['retry-after'], String(expectedSeconds), `Retry-After ${hint}`);
        const [state] = await isolated.gateway.pool.snapshot();
        assert.equal(state.state, 'cooling', `Retry-After ${hint}: the account cools down`);
        assert.ok(Math.abs((state.cooldownUntil ?? 0) - (Date.now() + expectedSeconds * 1000)) < 2000, `Retry-After ${hint}: cooldown length`);
        const matched = proxy.matched;
        assert.equal((await chat(isolated.gatewayUrl, { prompt: 'again' })).status, 429);
        assert.equal(proxy.matched, matched, `Retry-After ${hint}: the limited account is not asked again`);
      } finally {
        await isolated.close();
      }
    }
  } finally {
    proxy.setRule(undefined);
  }
});

test('CHAT_RETENTION_SECONDS=0: a chat deleted when its answer ends leaves no record behind, and a refused token on the delete gets one refresh (§10.3)', async () => {
  const isolated = await startStack({ serverPool: true, existingSimulator: simulator, env: { KIMI_BASE_URL: proxy.url, CHAT_RETENTION_SECONDS: '0' } });
  try {
    let refusals = 0;
    proxy.setRule({
      path: /ChatService\/DeleteChat$/,
      // The first delete is refused as if the cached access token had been revoked; the one after the refresh passes.
      rewrite: (answer) => (refusals++ === 0 ? { status: 401, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"code":"unauthenticated","message":"token expired"}') } : answer),
    });
    const userId = isolated.accounts[0].userId;
    for (const prompt of ['one', 'two', 'three']) assert.equal((await chat(isolated.gatewayUrl, { prompt })).status, 200);
    await isolated.gateway.chat.idle();
    assert.deepEqual(simulator.chats(userId).filter((item) => !item.deleted).map((item) => item.id), [], 'every chat deleted upstream, the refused delete too');
    assert.equal(refusals, 4, 'one refusal, then three deletes that passed');
    assert.deepEqual(await isolated.gateway.store.scan('conv:'), [], 'no conversation record kept for chats that are gone');
  } finally {
    proxy.setRule(undefined);
    await isolated.close();
  }
});

test("Kimi's model catalogue missing (404): GET /v1/models falls back to the built-in names and the log says so once (§3.5)", async () => {
  const isolated = await startStack({ serverPool: true, existingSimulator: simulator, env: { KIMI_BASE_URL: proxy.url } });
  try {
    proxy.setRule({ path: /GetAvailableModels$/, rewrite: () => ({ status: 404, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"code":"unimplemented","message":"no such method"}') }) });
    for (let index = 0; index < 3; index += 1) {
      const response = await fetch(`${isolated.gatewayUrl}/v1/models`);
      assert.equal(response.status, 200);
      assert.ok(((await response.json()) as { data: { id: string }[] }).data.some((model) => model.id === 'kimi'));
    }
    const warnings = isolated.logs().split('\n').filter((line) => line.includes("model catalogue could not be read"));
    assert.equal(warnings.length, 1, 'one warning, not one per request');
    assert.ok(proxy.matched >= 1);
  } finally {
    proxy.setRule(undefined);
    await isolated.close();
  }
});

test('§3.4/§10.2 drift: a refresh answer that renames the rotated token field keeps the new token and shows the drift in /v1/status', async () => {
  const isolated = await startStack({ serverPool: true, existingSimulator: simulator, env: { KIMI_AUTH_URL: proxy.url } });
  try {
    proxy.setRule({
      path: /AuthService\/RefreshToken$/,
      rewrite: (answer) => {
        const body = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
        const { refreshToken, ...rest } = body;
        return { ...answer, body: Buffer.from(JSON.stringify({ ...rest, newRefreshToken: refreshToken })) };
      },
    });
    assert.equal((await chat(isolated.gatewayUrl, { prompt: 'after a renamed refresh' })).status, 200);
    assert.ok(proxy.matched >= 1, 'the refresh went through the rewriting proxy');
    const status = (await (await fetch(`${isolated.gatewayUrl}/v1/status`)).json()) as { unknownUpstream?: Record<string, number> };
    assert.ok((status.unknownUpstream?.['field:refresh.newRefreshToken'] ?? 0) >= 1, JSON.stringify(status.unknownUpstream));
  } finally {
    proxy.setRule(undefined);
    await isolated.close();
  }
});
