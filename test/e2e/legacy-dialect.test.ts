/**
 * Legacy-dialect behaviour that has no current-dialect twin (issue 3, protocol spec §2): transparent
 * length continuation, its error table as HTTP statuses, research mode, and choosing the dialect
 * (KIMI_DIALECT and the per-token prefix, §10.1).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { simulatedReply } from '../../simulator/reply-text.ts';
import { startSimulator } from '../../simulator/simulator.ts';
import { buildPdf, buildPng } from '../support/attachment-samples.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { chat } from '../support/gateway-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

describe('legacy dialect', () => {
  let stack: Stack;
  let client: OpenAI;
  before(async () => {
    stack = await startStack({ tokenKind: 'legacy', accounts: 1 });
    client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
  });
  after(() => stack.close());

  const ask = (content: string, model = 'kimi') => client.chat.completions.create({ model, messages: [{ role: 'user', content }] });
  const statusOf = (promise: Promise<unknown>) =>
    promise.then(
      () => ({ status: 200, code: undefined as string | undefined }),
      (error: InstanceType<typeof OpenAI.APIError>) => ({ status: error.status, code: (error.error as { code?: string } | undefined)?.code ?? error.code ?? undefined }),
    );

  test('a `length` cut is continued transparently and the text joined (§2.4 continuation)', async () => {
    const text = 'long answer [[sim:legacy-length]]';
    const completion = await ask(text);
    assert.equal(completion.choices[0].message.content, simulatedReply({ userText: text, turn: 1, markerStyle: 'none' }).plainText);
    assert.equal(completion.choices[0].finish_reason, 'stop');
    const continuation = stack.simulator.requests.find((request) => /"action":"continue"/.test(request.bodyText ?? ''));
    assert.ok(continuation, 'the gateway sent a continue request with the segment id');
  });

  test('chat.user_stream_pushing → 409 conversation_busy (§10.7)', async () => {
    assert.deepEqual(await statusOf(ask('twice [[sim:legacy-stream-pushing]]')), { status: 409, code: 'conversation_busy' });
  });

  test('"算力不够" overload → 429 upstream_overloaded, never assistant text (§9 D13)', async () => {
    const other = await startStack({ tokenKind: 'legacy', existingSimulator: stack.simulator });
    try {
      const otherClient = new OpenAI({ baseURL: `${other.gatewayUrl}/v1`, apiKey: other.token, maxRetries: 0 });
      const result = await statusOf(otherClient.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'busy [[sim:legacy-overload]]' }] }));
      assert.deepEqual(result, { status: 429, code: 'upstream_overloaded' });
    } finally {
      await other.close();
    }
  });

  test('token_length_too_long → 400 context_length_exceeded', async () => {
    assert.deepEqual(await statusOf(ask('huge [[sim:legacy-token-too-long]]')), { status: 400, code: 'context_length_exceeded' });
  });

  test('research and k1 thinking switch by model name (§2.4)', async () => {
    const before = stack.simulator.requests.length;
    const research = await client.chat.completions.create({ model: 'kimi-research', messages: [{ role: 'user', content: 'study this' }] });
    assert.ok(research.choices[0].message.content?.includes('Simulated reply to: "study this"'));
    const sent = stack.simulator.requests.slice(before).map((request) => request.bodyText ?? '').join('\n');
    assert.match(sent, /"use_research":true/);
    assert.ok(stack.simulator.requests.slice(before).some((request) => request.path === '/api/chat/research/usage'), 'the research quota was checked first');
  });
});

describe('dialect choice (§10.1)', () => {
  async function pathsFor(stack: Stack, token: string, label: string): Promise<string[]> {
    const before = stack.simulator.requests.length;
    const response = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'kimi', messages: [{ role: 'user', content: label }] }),
    });
    assert.equal(response.status, 200, `${label}: ${await response.clone().text()}`);
    return stack.simulator.requests.slice(before).map((request) => request.path);
  }
  const isLegacyPath = (paths: string[]) => paths.some((path) => /\/completion\/stream$/.test(path));

  test('auto: a user-center refresh token goes legacy, an account-service token goes current; prefixes override', async () => {
    const stack = await startStack({ tokenKind: 'legacy' });
    try {
      const account = stack.simulator.issueAccount();
      assert.equal(isLegacyPath(await pathsFor(stack, stack.tokens[0], 'auto legacy')), true);
      assert.equal(isLegacyPath(await pathsFor(stack, account.refreshToken, 'auto current')), false);
      // A prefix decides when the gateway first sees the token; an account already in the state store keeps
      // the dialect its session was made with.
      const forced = stack.simulator.issueAccount();
      assert.equal(isLegacyPath(await pathsFor(stack, `legacy:${forced.refreshToken}`, 'legacy prefix')), true);
      const other = stack.simulator.issueAccount();
      assert.equal(isLegacyPath(await pathsFor(stack, `current:${other.refreshToken}`, 'current prefix')), false);
    } finally {
      await stack.close();
    }
  });

  test('KIMI_DIALECT=legacy sends every unprefixed token down the legacy path', async () => {
    const stack = await startStack({ env: { KIMI_DIALECT: 'legacy' } });
    try {
      assert.equal(isLegacyPath(await pathsFor(stack, stack.tokens[0], 'forced legacy')), true);
    } finally {
      await stack.close();
    }
  });

  test('§10.1: a user-center refresh token the legacy host refuses is refreshed by the current host\'s GET path, never declared invalid', async () => {
    const simulator = await startSimulator();
    const legacyHost = await startFaultProxy(simulator.url);
    legacyHost.setRule({
      path: /\/api\/auth\/token\/refresh$/,
      rewrite: () => ({ status: 401, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"error_type":"auth.token.invalid","message":"您的授权已过期，请重新登录"}') }),
    });
    const stack = await startStack({ existingSimulator: simulator, tokenKind: 'legacy', env: { KIMI_LEGACY_BASE_URL: legacyHost.url } });
    try {
      const client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: stack.token, maxRetries: 0 });
      const completion = await client.chat.completions.create({ model: 'kimi', messages: [{ role: 'user', content: 'fall back' }] });
      assert.equal(completion.choices[0].message.content, simulatedReply({ userText: 'fall back', turn: 1 }).text);
      assert.equal(legacyHost.matched, 1, 'the legacy host was asked first and refused');
      const refreshes = simulator.requests.filter((request) => /refresh/i.test(request.path)).map((request) => `${request.method} ${request.path}`);
      // The fault proxy forwards the legacy host's call before rewriting its answer, so the simulator sees it too.
      assert.deepEqual(refreshes, ['GET /api/auth/token/refresh', 'GET /api/auth/token/refresh'], 'then the current host, by the web GET path, not the account service');
    } finally {
      await stack.close();
      await legacyHost.close();
      await simulator.close();
    }
  });

  test('§3.4 a 401 on a legacy upload refreshes once and uploads again; the account stays live', async () => {
    const simulator = await startSimulator();
    const legacyHost = await startFaultProxy(simulator.url);
    let refused = 0;
    legacyHost.setRule({
      path: /\/api\/pre-sign-url$/,
      rewrite: (answer) => (refused++ === 0 ? { status: 401, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"error_type":"auth.token.invalid","message":"您的授权已过期，请重新登录"}') } : answer),
    });
    const stack = await startStack({ existingSimulator: simulator, tokenKind: 'legacy', serverPool: true, env: { KIMI_LEGACY_BASE_URL: legacyHost.url } });
    try {
      const png = `data:image/png;base64,${buildPng(2, 2).toString('base64')}`;
      const answered = await chat(stack.gatewayUrl, { messages: [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: png } }] }] });
      assert.equal(answered.status, 200, JSON.stringify(answered.json));
      assert.match(answered.text, /^Simulated reply to/);
      assert.equal(legacyHost.matched, 2, 'the refused pre-sign, then the one after the refresh');
      const [state] = await stack.gateway.pool.snapshot();
      assert.equal(state.state, 'live', 'one refused upload does not make the account invalid');
      assert.equal((await chat(stack.gatewayUrl, { prompt: 'again' })).status, 200);
    } finally {
      await stack.close();
      await legacyHost.close();
      await simulator.close();
    }
  });

  test('§10.3 a legacy chat created by an attempt Kimi refused with 401 is deleted too (CHAT_RETENTION_SECONDS=0)', async () => {
    const stack = await startStack({ tokenKind: 'legacy', serverPool: true, env: { CHAT_RETENTION_SECONDS: '0' } });
    try {
      const [account] = stack.accounts;
      stack.simulator.setScenario('unauthenticated', { userId: account.userId, times: 1 });
      assert.equal((await chat(stack.gatewayUrl, { prompt: 'refused once' })).status, 200);
      await stack.gateway.chat.idle();
      const chats = stack.simulator.chats(account.userId);
      assert.equal(chats.length, 2, 'the refused attempt made a chat, the retry another');
      assert.deepEqual(chats.filter((item) => !item.deleted).map((item) => item.id), [], 'none is left behind');
    } finally {
      await stack.close();
    }
  });

  test('a file Kimi\'s storage refuses as too large (HTTP 413 on the upload) is 400 attachment_too_large, as on the current dialect', async () => {
    const stack = await startStack({ tokenKind: 'legacy', serverPool: true, simulator: { maxUploadBytes: 1_000 } });
    try {
      const text = `data:text/plain;base64,${Buffer.from('x'.repeat(4_000)).toString('base64')}`;
      const refused = await chat(stack.gatewayUrl, { messages: [{ role: 'user', content: [{ type: 'text', text: 'read' }, { type: 'file', file_url: { url: text } }] }] });
      assert.equal(refused.status, 400, JSON.stringify(refused.json));
      assert.equal(refused.json.error.code, 'attachment_too_large');
    } finally {
      await stack.close();
    }
  });

  test('a document whose parse takes longer than the first-byte timeout is waited for (ATTACHMENT_PARSE_TIMEOUT_MS), not cut as upstream_timeout', async () => {
    const stack = await startStack({ tokenKind: 'legacy', serverPool: true, env: { UPSTREAM_FIRST_BYTE_TIMEOUT_MS: '1000', ATTACHMENT_PARSE_TIMEOUT_MS: '10000' } });
    try {
      stack.simulator.setScenario('parse-slow', { userId: stack.accounts[0].userId, times: 1 });
      const pdf = `data:application/pdf;base64,${buildPdf('slow to parse').toString('base64')}`;
      const answered = await chat(stack.gatewayUrl, { messages: [{ role: 'user', content: [{ type: 'text', text: 'Read this.' }, { type: 'file', file: { file_data: pdf, filename: 'report.pdf' } }] }] });
      assert.equal(answered.status, 200, JSON.stringify(answered.json));
      assert.match(answered.text, /File: report\.pdf/);
    } finally {
      await stack.close();
    }
  });
});
