// End to end (issue 10, "honest errors before the first byte"): Kimi's refusals reach the client as the contract's
// status and code — free-user overload → 429 upstream_overloaded (§3.14 d), quota used up → 429 insufficient_quota
// and the account cools down (§3.13, §9 D12), paywall → 403 upstream_forbidden with the upstream reason (§3.12), a
// refused refresh → 401 invalid_token and the account shown invalid (§3.4) — never as assistant text that ends
// with finish_reason "stop"; a streamed request gets the error status before any content chunk. A degrade notice
// (TYPE_MODEL_DEGRADE) is not an error: the answer still arrives.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { request } from 'undici';
import { simulatedReply, startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { chat, type ChatResult } from '../support/gateway-client.ts';
import { chatCallsOf } from '../support/gateway-instance.ts';
import { startStack, type Stack } from '../support/stack.ts';

const GATEWAY_KEY = 'honest-errors-key';
let simulator: Simulator;
let stack: Stack;

before(async () => {
  simulator = await startSimulator({ chunkDelayMs: 1 });
});
after(() => simulator?.close());
// A fresh gateway and account per test, so a cooldown or an invalid mark never leaks into the next test.
beforeEach(async () => {
  simulator.reset();
  stack = await startStack({ serverPool: true, existingSimulator: simulator, env: { API_KEYS: GATEWAY_KEY, ACCOUNT_COOLDOWN_MS: '45000' } });
});
afterEach(() => stack.close());

const keyed = { authorization: `Bearer ${GATEWAY_KEY}` };
const userId = () => stack.accounts[0].userId;
const ask = (prompt: string, stream: boolean) => chat(stack.gatewayUrl, { prompt, stream, headers: keyed });

async function accountsView(): Promise<any[]> {
  const response = await request(`${stack.gatewayUrl}/v1/accounts`, { headers: keyed });
  assert.equal(response.statusCode, 200);
  return ((await response.body.json()) as { data: any[] }).data;
}

/** The error arrived as an HTTP error before any byte of an answer: no SSE, no content, no finish_reason "stop". */
function assertNoDisguisedAnswer(result: ChatResult, label: string): void {
  assert.notEqual(result.status, 200, `${label}: an error, not a success`);
  assert.match(String(result.headers['content-type']), /application\/json/, `${label}: a JSON error, not a stream`);
  assert.ok(result.json?.error?.code, `${label}: the OpenAI error envelope`);
  assert.equal(result.json.choices, undefined, `${label}: no completion object`);
  assert.equal(result.chunks.length, 0, `${label}: no chunk precedes the error`);
  assert.equal(result.text, '', `${label}: no assistant text`);
  assert.doesNotMatch(JSON.stringify(result.json), /"finish_reason"\s*:\s*"stop"/, `${label}: never finish_reason stop`);
}

for (const stream of [false, true]) {
  test(`free-user overload (§3.14 d, stream ${stream}): 429 upstream_overloaded with Retry-After, no text`, async () => {
    simulator.setScenario('overload-free-user', { userId: userId() });
    const result = await ask('are you busy?', stream);
    assertNoDisguisedAnswer(result, 'overload');
    assert.equal(result.status, 429);
    assert.equal(result.json.error.code, 'upstream_overloaded');
    assert.ok(Number(result.headers['retry-after']) >= 1, `Retry-After ${String(result.headers['retry-after'])}`);
  });

  test(`quota used up (§3.13, stream ${stream}): 429 insufficient_quota with Retry-After; the account cools, the next request never reaches Kimi`, async () => {
    simulator.setScenario('quota-exhausted', { userId: userId() });
    const result = await ask('one more please', stream);
    assertNoDisguisedAnswer(result, 'quota');
    assert.equal(result.status, 429);
    assert.equal(result.json.error.code, 'insufficient_quota');
    assert.match(result.json.error.message, /Monthly quota used up/, 'the upstream reason is passed on');
    const retryAfter = Number(result.headers['retry-after']);
    assert.ok(retryAfter >= 1, 'Retry-After present');

    const calls = chatCallsOf(simulator, userId()).length;
    const second = await ask('and another', !stream);
    assertNoDisguisedAnswer(second, 'quota, second request');
    assert.equal(second.status, 429);
    assert.equal(second.json.error.code, 'insufficient_quota', 'still the quota, not a generic limit');
    assert.ok(Number(second.headers['retry-after']) >= 1 && Number(second.headers['retry-after']) <= retryAfter);
    assert.equal(chatCallsOf(simulator, userId()).length, calls, 'a cooling account is not asked again');
    const [view] = await accountsView();
    assert.equal(view.state, 'cooling');
    assert.equal(view.cooldownCode, 'insufficient_quota');
  });

  test(`paywall (§3.12, stream ${stream}): 403 upstream_forbidden with the upstream reason in the message`, async () => {
    simulator.setScenario('paywall', { userId: userId() });
    const result = await ask('use the paid model', stream);
    assertNoDisguisedAnswer(result, 'paywall');
    assert.equal(result.status, 403);
    assert.equal(result.json.error.code, 'upstream_forbidden');
    assert.match(result.json.error.message, /This model needs a subscription/, 'the upstream’s own words');
    assert.match(result.json.error.message, /REASON_PAYWALL/);
  });

  test(`degrade notice (TYPE_MODEL_DEGRADE, stream ${stream}): not an error, the whole answer arrives`, async () => {
    simulator.setScenario('degrade-notice', { userId: userId() });
    const result = await ask('degraded but fine', stream);
    assert.equal(result.status, 200, JSON.stringify(result.json));
    assert.equal(result.streamError, undefined);
    assert.equal(result.text, simulatedReply({ userText: 'degraded but fine', turn: 1 }).text);
    if (stream) assert.equal(result.done, true);
    else assert.equal(result.json.choices[0].finish_reason, 'stop');
  });
}

test('refresh refused on a cold account (§3.4): 401 invalid_token, streamed too, and GET /v1/accounts reports the account invalid', async () => {
  const cold = await startStack({ serverPool: true, existingSimulator: simulator, env: { API_KEYS: GATEWAY_KEY } });
  try {
    // Global scenario: the gateway's first refresh (possibly its start-up catalogue fetch) is refused too.
    simulator.setScenario('refresh-fails');
    for (const stream of [false, true]) {
      const result = await chat(cold.gatewayUrl, { prompt: 'cold account', stream, headers: keyed });
      assertNoDisguisedAnswer(result, `refresh refused, stream ${stream}`);
      assert.equal(result.status, 401);
      assert.equal(result.json.error.code, 'invalid_token');
    }
    assert.equal(simulator.refreshCount(cold.accounts[0].userId), 0);
    assert.equal(chatCallsOf(simulator, cold.accounts[0].userId).length, 0, 'no chat without a session');
    const response = await request(`${cold.gatewayUrl}/v1/accounts`, { headers: keyed });
    const [view] = ((await response.body.json()) as { data: any[] }).data;
    assert.equal(view.state, 'invalid');
    assert.match(view.invalidReason, /refused/);
  } finally {
    simulator.reset();
    await cold.close();
  }
});

test('401 mid-life and the refresh refused (§3.4): 401 invalid_token before the first byte, the account invalid', async () => {
  assert.equal((await ask('warm up', false)).status, 200);
  simulator.setScenario('refresh-fails', { userId: userId() });
  simulator.setScenario('unauthenticated');
  const result = await ask('expired now', true);
  assertNoDisguisedAnswer(result, 'refused after refresh');
  assert.equal(result.status, 401);
  assert.equal(result.json.error.code, 'invalid_token');
  const [view] = await accountsView();
  assert.equal(view.state, 'invalid');
});
