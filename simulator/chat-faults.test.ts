// Fault scenarios on Connect Chat (§3.12, §3.13, §3.14 d, §9 D12/D14) and how scenarios are chosen.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startSimulator, simulatedReply, type Simulator, type SimulatedAccount } from './simulator.ts';
import { answerText, chatBody, envelope, postChat } from './test-helpers.ts';

let simulator: Simulator;
let account: SimulatedAccount;

before(async () => {
  simulator = await startSimulator();
  account = simulator.issueAccount();
});
after(() => simulator.close());

const ask = (text: string, extra: Parameters<typeof chatBody>[1] = {}) => postChat(simulator.url, account.accessToken, chatBody(text, extra));
const debugOf = (end: Record<string, unknown> | undefined) =>
  ((end?.error as { details?: { debug: Record<string, unknown> }[] }).details?.[0].debug ?? {}) as Record<string, unknown>;

describe('in-stream refusals', () => {
  test('overload-free-user: done, then end-stream resource_exhausted with no text (§3.14 d)', async () => {
    const response = await ask('[[sim:overload-free-user]] hi');
    assert.equal(response.status, 200);
    assert.equal(answerText(response.events), '');
    assert.ok('done' in (response.events.at(-1) ?? {}));
    assert.equal((response.end?.error as { code: string }).code, 'resource_exhausted');
    assert.equal(debugOf(response.end).reason, 'REASON_SERVER_OVERLOADED_FOR_FREE_USER');
  });

  test('exception-mid-stream: partial text, then block.exception REASON_COMPLETION_OVERLOADED, clean end', async () => {
    const response = await ask('[[sim:exception-mid-stream]] hi');
    const exception = response.events.find((event) => event.mask === 'block.exception');
    const error = (exception?.block as { exception: { error: { reason: string; severity: string } } }).exception.error;
    assert.deepEqual([error.reason, error.severity], ['REASON_COMPLETION_OVERLOADED', 'SEVERITY_BLOCK_RETRACT']);
    assert.ok(answerText(response.events).length > 0);
    assert.ok(simulatedReply({ userText: '[[sim:exception-mid-stream]] hi', turn: 1 }).text.startsWith(answerText(response.events)));
    assert.deepEqual(response.end, {});
  });

  test('error-after-done: full text and done, then end-stream internal (§9 D14)', async () => {
    const response = await ask('[[sim:error-after-done]] hi');
    assert.equal(answerText(response.events), simulatedReply({ userText: '[[sim:error-after-done]] hi', turn: 1 }).text);
    assert.ok('done' in (response.events.at(-1) ?? {}));
    assert.equal((response.end?.error as { code: string }).code, 'internal');
  });

  test('quota-exhausted and paywall carry needUpgrade / paywall debug (§3.13, §9 D12)', async () => {
    const quota = await ask('[[sim:quota-exhausted]] hi');
    assert.match(String((quota.end?.error as { message: string }).message), /Monthly quota used up/);
    assert.equal(debugOf(quota.end).needUpgrade, true);
    const paywall = await ask('[[sim:paywall]] hi');
    assert.ok(debugOf(paywall.end).paywall);
  });

  test('unauthenticated (HTTP 401), unauthenticated-in-stream and empty-stream', async () => {
    assert.equal((await ask('[[sim:unauthenticated]] hi')).status, 401);
    const inStream = await ask('[[sim:unauthenticated-in-stream]] hi');
    assert.deepEqual([inStream.status, inStream.events.length, (inStream.end?.error as { code: string }).code], [200, 0, 'unauthenticated']);
    const empty = await ask('[[sim:empty-stream]] hi');
    assert.deepEqual([empty.events.length, empty.end], [0, {}]);
  });

  test('degrade-notice and unknown-op precede a normal answer', async () => {
    const degrade = await ask('[[sim:degrade-notice]] hi');
    assert.ok(degrade.events.some((event) => (event.notification as { type?: string } | undefined)?.type === 'TYPE_MODEL_DEGRADE'));
    assert.equal(answerText(degrade.events), simulatedReply({ userText: '[[sim:degrade-notice]] hi', turn: 1 }).text);
    const unknown = await ask('[[sim:unknown-op]] hi');
    assert.ok(unknown.events.some((event) => event.op === 'merge'));
    assert.deepEqual(unknown.end, {});
  });

  test('search-alt-markers uses the U+1F6E0 form (§3.7, §10.5)', async () => {
    const response = await ask('[[sim:search-alt-markers]] weather', { search: true });
    const text = answerText(response.events);
    assert.match(text, /\uE3A0cite\u{1F6E0}web_search:1#0:~:text=[^\u{1F6E0}]*\u{1F6E0}\uE3A8/u);
    assert.match(text, /\uE3A0article\u{1F6E0}web_search:1\u{1F3A8}/u);
    assert.ok(!text.includes('\uE3A3'));
  });
});

describe('transport faults', () => {
  test('http-429 carries Retry-After: 7; http-429-no-hint does not; http-503/500/html-200 have their bodies', async () => {
    const limited = await ask('[[sim:http-429]] hi');
    assert.deepEqual([limited.status, limited.headers['retry-after']], [429, '7']);
    const noHint = await ask('[[sim:http-429-no-hint]] hi');
    assert.deepEqual([noHint.status, noHint.headers['retry-after']], [429, undefined]);
    assert.equal((await ask('[[sim:http-503]] hi')).status, 503);
    const internal = await ask('[[sim:http-500]] hi');
    assert.deepEqual([internal.status, JSON.parse(internal.bodyText).code], [500, 'internal']);
    const html = await ask('[[sim:html-200]] hi');
    assert.equal(html.status, 200);
    assert.match(String(html.headers['content-type']), /text\/html/);
  });

  test('split-frames: many small reads still decode to the same answer (§3.2 envelopes vs TCP chunks)', async () => {
    const response = await ask('[[sim:split-frames]] 分帧 test');
    assert.ok(response.reads > 20, `expected many reads, got ${response.reads}`);
    assert.equal(answerText(response.events), simulatedReply({ userText: '[[sim:split-frames]] 分帧 test', turn: 1 }).text);
    assert.deepEqual(response.end, {});
  });

  test('reset-before-first-byte and reset-after-first-byte surface as socket errors', async () => {
    await assert.rejects(ask('[[sim:reset-before-first-byte]] hi'));
    await assert.rejects(ask('[[sim:reset-after-first-byte]] hi'));
  });

  test('malformed-frame ends inside a frame; non-json-frame sends an unparsable data frame', async () => {
    const malformed = await ask('[[sim:malformed-frame]] hi');
    assert.ok(malformed.leftoverBytes > 0);
    assert.equal(malformed.end, undefined);
    const nonJson = await ask('[[sim:non-json-frame]] hi');
    assert.ok(nonJson.events.some((event) => 'unparsable' in event));
  });

  test('stall-before-first-byte holds the request until the client gives up', async () => {
    const controller = new AbortController();
    const pending = request(`${simulator.url}/apiv2/kimi.gateway.chat.v1.ChatService/Chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${account.accessToken}`, 'content-type': 'application/connect+json' },
      body: envelope(chatBody('[[sim:stall-before-first-byte]] hi')),
      signal: controller.signal,
    });
    const raced = await Promise.race([pending.then(() => 'answered'), new Promise((resolve) => setTimeout(resolve, 150, 'stalled'))]);
    assert.equal(raced, 'stalled');
    controller.abort();
    await assert.rejects(pending);
  });
});

describe('choosing the scenario', () => {
  test('global scenario with times reverts to normal; other request kinds do not use it up', async () => {
    simulator.setScenario('http-503', { times: 2 });
    await request(`${simulator.url}/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels`, { method: 'POST', headers: { authorization: `Bearer ${account.accessToken}`, 'content-type': 'application/json' }, body: '{}' }).then((response) => response.body.dump());
    assert.equal((await ask('a')).status, 503);
    assert.equal((await ask('b')).status, 503);
    assert.equal((await ask('c')).status, 200);
  });

  test('a per-account scenario wins over the global one and leaves other accounts alone', async () => {
    const other = simulator.issueAccount();
    simulator.setScenario('http-500');
    simulator.setScenario('normal', { userId: account.userId });
    assert.equal((await ask('mine')).status, 200);
    assert.equal((await postChat(simulator.url, other.accessToken, chatBody('theirs'))).status, 500);
    simulator.reset();
    assert.equal((await postChat(simulator.url, other.accessToken, chatBody('theirs'))).status, 200);
    assert.equal(simulator.requests.length, 1, 'reset() cleared recorded requests');
    assert.equal(simulator.requests[0].scenario, 'normal');
  });

  test('an unknown [[sim:…]] name is invalid_argument, so typos fail loudly', async () => {
    const response = await ask('[[sim:no-such-scenario]]');
    assert.equal(response.status, 400);
    assert.match(response.bodyText, /no-such-scenario/);
  });
});
