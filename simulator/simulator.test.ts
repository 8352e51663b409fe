// Simulator lifecycle, recording, unary RPCs (§3.4, §3.5, §3.9), the HTTP control surface and the README table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { SCENARIO_NAMES, startSimulator } from './simulator.ts';
import { chatBody, envelope, getJson, postChat, postJson } from './test-helpers.ts';

test('close() resolves promptly while streams stall before and between chunks', async () => {
  const simulator = await startSimulator();
  const account = simulator.issueAccount();
  const chat = await postJson(simulator.url, '/api/chat', { name: 'x' }, account.accessToken);
  const stalled = [
    postChat(simulator.url, account.accessToken, chatBody('[[sim:stall-between-chunks]] a')).catch((error: unknown) => error),
    request(`${simulator.url}/apiv2/kimi.gateway.chat.v1.ChatService/Chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${account.accessToken}`, 'content-type': 'application/connect+json' },
      body: envelope(chatBody('[[sim:stall-before-first-byte]] b')),
    }).catch((error: unknown) => error),
    request(`${simulator.url}/api/chat/${chat.json.id}/completion/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${account.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: '[[sim:stall-between-chunks]] c' }] }),
    }).then((response) => response.body.text()).catch((error: unknown) => error),
  ];
  while (simulator.requests.length < 4) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(simulator.activeStreams(account.userId), 2, 'stall-before-first-byte holds no stream slot');
  const started = performance.now();
  await simulator.close();
  assert.ok(performance.now() - started < 1000, 'close() took too long');
  const outcomes = await Promise.all(stalled);
  assert.ok(outcomes.every((outcome) => outcome instanceof Error), 'every stalled client sees its connection end');
  assert.equal(simulator.activeStreams(), 0);
});

test('records requests with lowercase headers and the decoded Chat envelope', async () => {
  const simulator = await startSimulator();
  try {
    const account = simulator.issueAccount();
    await postChat(simulator.url, account.accessToken, chatBody('record me'));
    const [record] = simulator.requests;
    assert.equal(record.method, 'POST');
    assert.equal(record.path, '/apiv2/kimi.gateway.chat.v1.ChatService/Chat');
    assert.equal(record.headers['connect-protocol-version'], '1');
    assert.equal(record.userId, account.userId);
    assert.equal((record.bodyJson as { message: { blocks: { text: { content: string } }[] } }).message.blocks[0].text.content, 'record me');
    const unknown = await postJson(simulator.url, '/apiv2/kimi.nothing.v1.Service/Method', {}, account.accessToken);
    assert.deepEqual([unknown.status, unknown.json.code], [404, 'unimplemented']);
  } finally {
    await simulator.close();
  }
});

test('unary RPCs: catalog (§3.5), current user, subscription stats, GET /api/user', async () => {
  const simulator = await startSimulator();
  try {
    const account = simulator.issueAccount({ region: 'overseas', membership: 'paid' });
    const models = await postJson(simulator.url, '/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels', {}, account.accessToken);
    assert.deepEqual(models.json.defaultScenario, { scenario: 'SCENARIO_CHAT', model: 'k2d6-chat' });
    const catalog = models.json.availableModels as Record<string, unknown>[];
    assert.deepEqual(catalog.map((model) => model.id), ['k2d6-chat', 'k28-agent-preview', 'k3-agent', 'k3-agent-swarm']);
    for (const key of ['key', 'scenario', 'displayName', 'reasoningEffortOptions', 'defaultReasoningEffort', 'contextLengthOptions', 'minMembershipLevel']) {
      assert.ok(key in catalog[0], `catalog entry has ${key}`);
    }
    assert.equal(catalog[2].kimiPlusId, 'ok-computer');
    const user = await postJson(simulator.url, '/apiv2/kimi.gateway.account.v1.UserService/GetCurrentUser', {}, account.accessToken);
    assert.deepEqual([(user.json.user as { id: string }).id, (user.json.user as { region: string }).region], [account.userId, 'REGION_OVERSEA']);
    const stats = await postJson(simulator.url, '/apiv2/kimi.gateway.membership.v2.MembershipService/GetSubscriptionStats', {}, account.accessToken);
    assert.ok('subscriptionBalance' in stats.json && 'ratelimitCode5h' in stats.json);
    const rest = await getJson(simulator.url, '/api/user', account.accessToken);
    assert.deepEqual([rest.json.id, rest.json.status], [account.userId, 'normal']);
    assert.equal((await postJson(simulator.url, '/apiv2/kimi.gateway.account.v1.UserService/GetCurrentUser', {})).status, 401);
  } finally {
    await simulator.close();
  }
});

test('the HTTP control surface issues accounts, sets scenarios and reports state', async () => {
  const simulator = await startSimulator();
  try {
    const issued = await postJson(simulator.url, '/__simulator/accounts', { region: 'cn' });
    const userId = String(issued.json.userId);
    assert.ok(issued.json.accessToken && issued.json.refreshToken && issued.json.legacyRefreshToken);
    assert.equal((await postJson(simulator.url, '/__simulator/scenario', { name: 'nope' })).status, 400);
    assert.equal((await postJson(simulator.url, '/__simulator/scenario', { name: 'http-429', userId, times: 1 })).status, 200);
    const limited = await postChat(simulator.url, String(issued.json.accessToken), chatBody('x'));
    assert.equal(limited.status, 429);
    const state = await getJson(simulator.url, '/__simulator/state');
    assert.deepEqual([state.json.accounts, state.json.requests], [1, 1]);
    const detail = await getJson(simulator.url, `/__simulator/accounts/${userId}`);
    assert.deepEqual(detail.json.chats, []);
    assert.equal(simulator.requests.length, 1, 'control requests are not recorded');
  } finally {
    await simulator.close();
  }
});

test('README documents every scenario in its table', async () => {
  const readme = await readFile(new URL('./README.md', import.meta.url), 'utf8');
  for (const name of SCENARIO_NAMES) assert.ok(readme.includes(`| \`${name}\` |`), `README row for ${name}`);
});
