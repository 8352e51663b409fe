// End to end (issues 5 and 10): the account pool seen from a client — per-request `Bearer T1,T2` failover before
// the first byte, 429 with Retry-After = the soonest cooldown when every account cools, conversation affinity,
// gateway keys (API_KEYS) with the server pool and `GET /v1/accounts`, and the per-account concurrency limit with
// its bounded waiting room (20 concurrent requests on one account never exceed ACCOUNT_MAX_CONCURRENCY upstream).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { simulatedReply, startSimulator } from '../../simulator/simulator.ts';
import { accountIdFor } from '../../src/accounts/account.ts';
import { chat, type ChatResult } from '../support/gateway-client.ts';
import { chatCallsOf, startGatewayInstance, withMaxSample } from '../support/gateway-instance.ts';
import { startStack, type Stack } from '../support/stack.ts';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function withStack(options: Parameters<typeof startStack>[0], body: (stack: Stack) => Promise<void>): Promise<void> {
  const stack = await startStack(options);
  try {
    await body(stack);
  } finally {
    await stack.close();
  }
}

test('Bearer T1,T2: account 1 refuses with the free-user overload (§3.14 d), account 2 answers before the first byte', async () => {
  await withStack({ accounts: 2 }, async (stack) => {
    const [first, second] = stack.accounts;
    stack.simulator.setScenario('overload-free-user', { userId: first.userId });
    const result = await chat(stack.gatewayUrl, { prompt: 'fail over please', stream: true, headers: bearer(stack.token) });
    assert.equal(result.status, 200, JSON.stringify(result.json));
    assert.equal(result.streamError, undefined);
    assert.equal(result.done, true);
    assert.equal(result.text, simulatedReply({ userText: 'fail over please', turn: 1 }).text, 'the client sees only account 2’s answer');
    const refused = chatCallsOf(stack.simulator, first.userId);
    assert.equal(refused.length, 1, 'account 1 was tried first');
    assert.equal(refused[0].scenario, 'overload-free-user');
    assert.equal(chatCallsOf(stack.simulator, second.userId).length, 1, 'account 2 answered');
    const [state] = await stack.gateway.pool.snapshot(await stack.gateway.pool.accountsFromBearer([stack.tokens[0]]));
    assert.equal(state.state, 'cooling', 'the overloaded account cools down');
  });
});

test('every account cooling: 429 with Retry-After = the soonest cooldown, and no upstream call while they cool', async () => {
  await withStack({ accounts: 2, env: { ACCOUNT_COOLDOWN_MS: '30000' } }, async (stack) => {
    const [first, second] = stack.accounts;
    stack.simulator.setScenario('http-429', { userId: first.userId }); // Retry-After: 7
    stack.simulator.setScenario('http-429-no-hint', { userId: second.userId }); // configured 30 s
    const limited = await chat(stack.gatewayUrl, { prompt: 'both limited', headers: bearer(stack.token) });
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error.code, 'rate_limited');
    assert.equal(chatCallsOf(stack.simulator, first.userId).length + chatCallsOf(stack.simulator, second.userId).length, 2, 'both were tried');

    const callsBefore = stack.simulator.requests.length;
    const again = await chat(stack.gatewayUrl, { prompt: 'still cooling', stream: true, headers: bearer(stack.token) });
    assert.equal(again.status, 429);
    assert.equal(again.json.error.code, 'rate_limited');
    const retryAfter = Number(again.headers['retry-after']);
    assert.ok(retryAfter >= 6 && retryAfter <= 7, `Retry-After ${retryAfter} = the soonest (7 s), not the latest (30 s)`);
    assert.equal(stack.simulator.requests.length, callsBefore, 'cooling accounts are not asked');
    // Contract: every 429's Retry-After is when the pool expects an account back — also on the request that found
    // both accounts limited: account 1 returns in 7 s, even though account 2 (tried last) needs 30 s.
    assert.equal(limited.headers['retry-after'], '7', 'Retry-After of the request that tried both accounts = the soonest');
  });
});

test('conversation affinity: with two tokens, conversation_id always goes back to the account that created it', async () => {
  await withStack({ accounts: 2, env: { CHAT_RETENTION_SECONDS: '-1' } }, async (stack) => {
    const opening = await chat(stack.gatewayUrl, { prompt: 'remember 42', headers: bearer(stack.token) });
    assert.equal(opening.status, 200);
    const conversationId: string = opening.json.id;
    const ownerIndex = stack.accounts.findIndex((account) => stack.simulator.chats(account.userId).some((item) => item.id === conversationId));
    assert.ok(ownerIndex >= 0, 'the conversation is an upstream chat of one account');
    const owner = stack.accounts[ownerIndex];
    const other = stack.accounts[1 - ownerIndex];

    const history: Array<{ role: string; content: string }> = [{ role: 'user', content: 'remember 42' }, { role: 'assistant', content: opening.text }];
    for (let turn = 2; turn <= 4; turn += 1) {
      // A plain request in between makes the owner the least recently used account... or not: affinity must win anyway.
      assert.equal((await chat(stack.gatewayUrl, { prompt: `unrelated ${turn}`, headers: bearer(stack.token) })).status, 200);
      history.push({ role: 'user', content: `turn ${turn}` });
      const next = await chat(stack.gatewayUrl, { messages: history, headers: bearer(stack.token), extra: { conversation_id: conversationId } });
      assert.equal(next.status, 200, JSON.stringify(next.json));
      assert.equal(next.json.id, conversationId);
      assert.equal(next.text, simulatedReply({ userText: `turn ${turn}`, turn }).text);
      history.push({ role: 'assistant', content: next.text });
    }
    const ownerChat = stack.simulator.chats(owner.userId).find((item) => item.id === conversationId);
    assert.equal(ownerChat?.messages.length, 8, 'four turns in the owner’s chat');
    const strayCalls = chatCallsOf(stack.simulator, other.userId).filter((call) => JSON.stringify(call.bodyJson ?? '').includes(conversationId));
    assert.equal(strayCalls.length, 0, 'the other account never saw this conversation');

    const wrongAccount = await chat(stack.gatewayUrl, { prompt: 'turn 5', headers: bearer(stack.tokens[1 - ownerIndex]), extra: { conversation_id: conversationId } });
    assert.equal(wrongAccount.status, 404, 'without its account the conversation is not found');
    assert.equal(wrongAccount.json.error.code, 'conversation_not_found');
  });
});

test('API_KEYS: no or wrong key → 401 invalid_api_key; a key uses the server pool; GET /v1/accounts needs the key and shows no token', async () => {
  await withStack({ accounts: 2, serverPool: true, env: { API_KEYS: 'gateway-key-one,gateway-key-two' } }, async (stack) => {
    for (const headers of [{}, bearer('gateway-key-three'), bearer(stack.tokens[0])]) {
      const refused = await chat(stack.gatewayUrl, { prompt: 'no key', headers });
      assert.equal(refused.status, 401, JSON.stringify(headers).slice(0, 40));
      assert.equal(refused.json.error.code, 'invalid_api_key');
    }
    const chatCalls = () => stack.accounts.reduce((sum, account) => sum + chatCallsOf(stack.simulator, account.userId).length, 0);
    assert.equal(chatCalls(), 0, 'refused requests never reach Kimi');

    const answered = await chat(stack.gatewayUrl, { prompt: 'with a key', headers: bearer('gateway-key-two') });
    assert.equal(answered.status, 200);
    assert.equal(answered.text, simulatedReply({ userText: 'with a key', turn: 1 }).text);
    const servedBy = stack.accounts.filter((account) => chatCallsOf(stack.simulator, account.userId).length > 0);
    assert.equal(servedBy.length, 1, 'a server-pool account answered');

    for (const headers of [{}, bearer('nope')]) {
      const listing = await request(`${stack.gatewayUrl}/v1/accounts`, { headers });
      assert.equal(listing.statusCode, 401);
      assert.equal(((await listing.body.json()) as any).error.code, 'invalid_api_key');
    }
    const adding = await request(`${stack.gatewayUrl}/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'x' }) });
    assert.equal(adding.statusCode, 401, 'POST /v1/accounts needs the key too');
    await adding.body.dump();
    // /token/check makes the gateway call Kimi with the given token: key holders only.
    const checkBody = JSON.stringify({ token: stack.tokens[0] });
    const unkeyed = await request(`${stack.gatewayUrl}/token/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: checkBody });
    assert.equal(unkeyed.statusCode, 401, 'POST /token/check needs the key');
    assert.equal(((await unkeyed.body.json()) as any).error.code, 'invalid_api_key');
    const keyed = await request(`${stack.gatewayUrl}/token/check`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer('gateway-key-one') }, body: checkBody });
    assert.deepEqual(await keyed.body.json(), { live: true });

    const listing = await request(`${stack.gatewayUrl}/v1/accounts`, { headers: bearer('gateway-key-one') });
    assert.equal(listing.statusCode, 200);
    const raw = await listing.body.text();
    const body = JSON.parse(raw);
    assert.deepEqual(body.data.map((account: any) => account.id).sort(), stack.tokens.map(accountIdFor).sort(), 'accounts by hash');
    assert.ok(body.data.some((account: any) => account.state === 'live'), 'the account that answered is live');
    for (const account of stack.accounts) {
      for (const secret of [account.refreshToken, account.accessToken, account.refreshToken.split('.')[2], account.refreshToken.split('.')[1]]) {
        assert.ok(!raw.includes(secret), 'no token or token part in GET /v1/accounts');
      }
    }
    assert.doesNotMatch(raw, /eyJ/, 'no JWT-looking text at all');
    const record = JSON.parse((await stack.gateway.store.get(`account:${servedBy[0] && accountIdFor(stack.tokens[stack.accounts.indexOf(servedBy[0])])}`)) ?? '{}');
    assert.notEqual(record.token, undefined, 'the rotated token is in the store…');
    assert.ok(!raw.includes(record.token), '…and not in the listing');
  });
});

test('20 concurrent requests on ONE account (ACCOUNT_MAX_CONCURRENCY=2, QUEUE_MAX=5): never more than 2 upstream streams; each completes or gets 429 with Retry-After', async () => {
  const env = { ACCOUNT_MAX_CONCURRENCY: '2', QUEUE_MAX: '5', QUEUE_TIMEOUT_MS: '4000' };
  // The simulator would allow 10 streams, so only the gateway's limit can hold the line at 2.
  await withStack({ serverPool: true, env, simulator: { maxConcurrentStreamsPerAccount: 10 } }, async (stack) => {
    const { userId } = stack.accounts[0];
    assert.equal((await chat(stack.gatewayUrl, { prompt: 'warm up' })).status, 200);
    stack.simulator.setScenario('slow', { userId });
    const { result: results, max } = await withMaxSample(
      () => stack.simulator.activeStreams(userId),
      () => Promise.all(Array.from({ length: 20 }, (_unused, index) => chat(stack.gatewayUrl, { prompt: `queued ${index}`, stream: index % 2 === 0 }))),
    );
    assert.ok(max <= 2, `at most 2 streams upstream at once, saw ${max}`);
    assert.equal(max, 2, 'the limit was reached (the test really ran requests side by side)');
    const answered: ChatResult[] = [];
    for (const [index, result] of results.entries()) {
      if (result.status === 200) {
        assert.equal(result.streamError, undefined, `request ${index} was cut`);
        assert.equal(result.text, simulatedReply({ userText: `queued ${index}`, turn: 1 }).text);
        answered.push(result);
        continue;
      }
      assert.equal(result.status, 429, `request ${index}: ${result.status} ${JSON.stringify(result.json)}`);
      assert.equal(result.json.error.code, 'rate_limited');
      assert.ok(Number(result.headers['retry-after']) >= 1, `request ${index}: 429 without Retry-After`);
      assert.equal(result.chunks.length, 0);
    }
    // 2 slots + 5 places: at most 7 can be answered; the queue must have served some (≥ 2 beyond the first slots)
    // before its 4 s timeout, the rest were turned away at once (room full) or after waiting (timeout).
    assert.ok(answered.length >= 4 && answered.length <= 7, `2 slots + 5 queue places, ${answered.length} answered`);
  });
});

test('§3.4 POST /v1/accounts with the original token of an account marked invalid checks its stored rotated token and revives it, never storing the dead one', async () => {
  await withStack({ accounts: 1, serverPool: true, simulator: { refreshGraceSeconds: 0 } }, async (stack) => {
    const [account] = stack.accounts;
    assert.equal((await chat(stack.gatewayUrl, { prompt: 'first' })).status, 200);
    // Kimi refuses twice: the refresh in between rotates the token, then the retried call is refused: marked invalid.
    stack.simulator.setScenario('unauthenticated', { userId: account.userId, times: 2 });
    assert.equal((await chat(stack.gatewayUrl, { prompt: 'refused' })).status, 401);
    const [invalid] = await stack.gateway.pool.snapshot();
    assert.equal(invalid.state, 'invalid');

    const adding = await request(`${stack.gatewayUrl}/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: account.refreshToken }) });
    const added = (await adding.body.json()) as any;
    assert.equal(adding.statusCode, 201, JSON.stringify(added));
    assert.equal(added.account.state, 'live');
    assert.equal(added.account.source, 'server', 'still a server account');
    const answered = await chat(stack.gatewayUrl, { prompt: 'after the re-add' });
    assert.equal(answered.status, 200, 'the server pool answers again');
  });
});

test('an account added at run time answers right after a restart (no KIMI_TOKENS), not only after the first reload', async () => {
  const simulator = await startSimulator();
  const folder = mkdtempSync(join(tmpdir(), 'kfa-restart-'));
  const env = { STATE_FILE: join(folder, 'state.json') };
  try {
    const first = await startGatewayInstance(simulator, env);
    const account = simulator.issueAccount();
    const added = await request(`${first.url}/v1/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: account.refreshToken }) });
    assert.equal(added.statusCode, 201, await added.body.text());
    await first.close();
    const second = await startGatewayInstance(simulator, env);
    try {
      const answered = await chat(second.url, { prompt: 'right after the restart' });
      assert.equal(answered.status, 200, JSON.stringify(answered.json));
    } finally {
      await second.close();
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
    await simulator.close();
  }
});

test('QR login: GET /v1/accounts/qr/{id} answers like ?id= in the running gateway', async () => {
  await withStack({ accounts: 1, serverPool: true }, async (stack) => {
    const started = await request(`${stack.gatewayUrl}/v1/accounts/qr`, { method: 'POST' });
    const login = (await started.body.json()) as { id: string };
    assert.ok(login.id, JSON.stringify(login));
    const byQuery = (await (await request(`${stack.gatewayUrl}/v1/accounts/qr?id=${login.id}`)).body.json()) as { status: string };
    const byPath = await request(`${stack.gatewayUrl}/v1/accounts/qr/${login.id}`);
    assert.equal(byPath.statusCode, 200);
    assert.equal(((await byPath.body.json()) as { status: string }).status, byQuery.status);
    assert.equal((await request(`${stack.gatewayUrl}/v1/accounts/qr/no-such-login`)).statusCode, 404);
  });
});
