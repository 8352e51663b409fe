// Legacy dialect on the simulator (§2.2–§2.8, §9 D7/D13): SSE shapes, UTF-8 split reads, continuation, errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, simulatedReply, simulatedSearchSources, simulatedThinkingText, type Simulator } from './simulator.ts';
import { getJson, postJson, postLegacyCompletion } from './test-helpers.ts';

let simulator: Simulator;
let accessToken: string;

before(async () => {
  simulator = await startSimulator();
  const account = simulator.issueAccount();
  const refreshed = await getJson(simulator.url, '/api/auth/token/refresh', account.legacyRefreshToken);
  accessToken = String(refreshed.json.access_token);
});
after(() => simulator.close());

async function newChat(): Promise<string> {
  const created = await postJson(simulator.url, '/api/chat', { name: '未命名会话', is_example: false, enter_method: 'new_chat', kimiplus_id: 'kimi' }, accessToken);
  assert.equal(created.status, 200);
  assert.match(String(created.json.id), /^[0-9a-v]{20}$/);
  return String(created.json.id);
}

const joined = (events: Record<string, unknown>[], name: string) =>
  events.filter((event) => event.event === name).map((event) => String(event.text)).join('');

describe('legacy completion stream (§2.5, §2.6)', () => {
  test('req, resp, cmpl deltas split inside UTF-8 characters across reads, rename, all_done', async () => {
    const chatId = await newChat();
    const body = { kimiplus_id: 'kimi', messages: [{ role: 'user', content: 'user:你好，请介绍一下南京的天气、历史和美食\n' }, { role: 'user', content: 'ignored' }], refs: [], use_search: false, extend: { sidebar: true } };
    const response = await postLegacyCompletion(simulator.url, accessToken, chatId, body);
    assert.equal(response.status, 200);
    assert.match(response.contentType, /text\/event-stream/);
    const names = response.events.map((event) => event.event);
    assert.deepEqual(names.slice(0, 2), ['req', 'resp']);
    assert.deepEqual(names.slice(-2), ['rename', 'all_done']);
    assert.equal(joined(response.events, 'cmpl'), simulatedReply({ userText: 'user:你好，请介绍一下南京的天气、历史和美食\n', turn: 1, search: false, markerStyle: 'none' }).text);
    assert.ok(response.splitUtf8Reads > 0, 'some read ended inside a multi-byte character');
    assert.ok(response.bodyText.includes(': keep-alive'));
  });

  test('k1 thinking for the k1 kimiplus id or model, search_plus get_res with use_search (§2.4, §2.6 b/c)', async () => {
    const chatId = await newChat();
    const response = await postLegacyCompletion(simulator.url, accessToken, chatId, { kimiplus_id: 'crm40ee9e5jvhsn7ptcg', use_search: true, messages: [{ role: 'user', content: '南京天气' }] });
    assert.equal(joined(response.events, 'k1'), simulatedThinkingText('南京天气', 1));
    const results = response.events.filter((event) => (event.msg as { type?: string } | undefined)?.type === 'get_res');
    assert.deepEqual(results.map((event) => (event.msg as { url: string }).url), simulatedSearchSources('南京天气').map((source) => source.url));
    assert.ok(!joined(response.events, 'cmpl').includes('\uE3A0'), 'legacy citations are never inline');
    const second = await postLegacyCompletion(simulator.url, accessToken, chatId, { model: 'k1', messages: [{ role: 'user', content: 'again' }] });
    assert.match(joined(second.events, 'cmpl'), /\(turn 2\)/);
    assert.ok(joined(second.events, 'k1').length > 0);
  });

  test('legacy-length: `length` then continuation with segment_id + action "continue" completes the text (§2.4)', async () => {
    const chatId = await newChat();
    const first = await postLegacyCompletion(simulator.url, accessToken, chatId, { messages: [{ role: 'user', content: '[[sim:legacy-length]] long' }] });
    assert.ok(first.events.some((event) => event.event === 'length'));
    const segmentId = String(first.events.find((event) => event.event === 'req')?.id);
    const rest = await postLegacyCompletion(simulator.url, accessToken, chatId, { segment_id: segmentId, action: 'continue', messages: [{ role: 'user', content: ' ' }], kimiplus_id: 'kimi', extend: { sidebar: true } });
    assert.equal(rest.status, 200);
    assert.equal(rest.events.at(-1)?.event, 'all_done');
    const whole = joined(first.events, 'cmpl') + joined(rest.events, 'cmpl');
    assert.equal(whole, simulatedReply({ userText: '[[sim:legacy-length]] long', turn: 1, markerStyle: 'none' }).text);
  });

  test('long-answer: the paragraph 40 times over many cmpl events', async () => {
    const chatId = await newChat();
    const prompt = '[[sim:long-answer]] many events';
    const response = await postLegacyCompletion(simulator.url, accessToken, chatId, { messages: [{ role: 'user', content: prompt }] });
    assert.equal(joined(response.events, 'cmpl'), simulatedReply({ userText: prompt, turn: 1, markerStyle: 'none', paragraphs: 40 }).text);
    assert.ok(response.events.filter((event) => event.event === 'cmpl').length >= 400);
  });

  test('mid-stream error, overload text, token too long (§2.8, §9 D13)', async () => {
    const chatId = await newChat();
    const mid = await postLegacyCompletion(simulator.url, accessToken, chatId, { messages: [{ role: 'user', content: '[[sim:legacy-error-mid-stream]]' }] });
    assert.ok(joined(mid.events, 'cmpl').length > 0);
    assert.equal((mid.events.at(-1)?.error as { error_type: string }).error_type, 'openai.completion.stream');
    const overload = await postLegacyCompletion(simulator.url, accessToken, chatId, { messages: [{ role: 'user', content: '[[sim:legacy-overload]]' }] });
    assert.equal((overload.events.at(-1)?.error as { message: string }).message, '算力不够，请稍后再试');
    const tooLong = await postLegacyCompletion(simulator.url, accessToken, chatId, { messages: [{ role: 'user', content: '[[sim:legacy-token-too-long]]' }] });
    assert.equal((tooLong.events.at(-1)?.error as { error_type: string }).error_type, 'openai.completion.token_length_too_long');
  });

  test('chat.user_stream_pushing, 401 auth.token.invalid, and DELETE /api/chat/{id}', async () => {
    const chatId = await newChat();
    const pushing = await postJson(simulator.url, `/api/chat/${chatId}/completion/stream`, { messages: [{ role: 'user', content: '[[sim:legacy-stream-pushing]]' }] }, accessToken);
    assert.equal(pushing.json.error_type, 'chat.user_stream_pushing');
    const unauthorized = await postJson(simulator.url, `/api/chat/${chatId}/completion/stream`, { messages: [{ role: 'user', content: 'x' }] }, 'bogus');
    assert.deepEqual([unauthorized.status, unauthorized.json.error_type], [401, 'auth.token.invalid']);
    assert.equal((await getJson(simulator.url, `/api/chat/${chatId}`, accessToken, 'DELETE')).status, 200);
    assert.equal((await getJson(simulator.url, `/api/chat/${chatId}`, accessToken, 'DELETE')).status, 404);
    const usage = await getJson(simulator.url, '/api/chat/research/usage', accessToken);
    assert.deepEqual(Object.keys(usage.json).sort(), ['remain', 'total', 'used']);
  });
});
