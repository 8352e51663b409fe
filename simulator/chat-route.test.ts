// Connect Chat on the simulator: event order (§3.6, §3.14), envelopes (§3.2), multi-turn (§3.8), concurrency (§3.12).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, simulatedReply, simulatedThinkingText, stripCitationMarkers, type Simulator, type SimulatedAccount } from './simulator.ts';
import { answerText, chatBody, envelope, postChat, postJson } from './test-helpers.ts';

let simulator: Simulator;
let account: SimulatedAccount;

before(async () => {
  simulator = await startSimulator();
  account = simulator.issueAccount();
});
after(() => simulator.close());

function containerOf(event: Record<string, unknown>): string {
  return ['chat', 'message', 'block', 'heartbeat', 'done', 'notification'].find((key) => key in event) ?? 'none';
}

describe('Chat stream (§3.14 a)', () => {
  test('events come in the documented order with strictly increasing eventOffset (§3.6)', async () => {
    const response = await postChat(simulator.url, account.accessToken, chatBody('1+1= 你好'));
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-type'], 'application/connect+json');
    assert.equal(response.leftoverBytes, 0);
    const { events } = response;
    assert.deepEqual(events[0], { heartbeat: {} });
    assert.equal(events[1].mask, 'chat.lastRequest');
    const chat = events[1].chat as { id: string; name: string };
    assert.match(chat.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const user = events[2].message as { id: string; role: string; blocks: { text: { content: string } }[] };
    assert.equal(user.role, 'user');
    assert.equal(user.blocks[0].text.content, '1+1= 你好');
    const assistant = events[3].message as { id: string; parentId: string; role: string; status: string };
    assert.deepEqual([assistant.role, assistant.status, assistant.parentId], ['assistant', 'MESSAGE_STATUS_GENERATING', user.id]);
    assert.equal(events[4].mask, 'chat.name');
    assert.deepEqual(events[5], { eventOffset: events[4].eventOffset, heartbeat: {} });
    assert.equal(events[6].mask, 'block.text');
    assert.equal(events[6].op, 'set');
    const tail = events.slice(-2);
    assert.equal(tail[0].mask, 'message.status');
    assert.deepEqual(Object.keys(tail[1]).sort(), ['done', 'eventOffset']);
    assert.deepEqual(response.end, {});
    assert.equal(response.frames.at(-1)?.flags, 2);

    let last = 0;
    for (const event of events) {
      if ('heartbeat' in event) {
        if ('eventOffset' in event) assert.equal(event.eventOffset, last, 'heartbeats reuse the current offset');
        continue;
      }
      assert.equal(event.eventOffset, last + 1, `offset after ${last} in ${containerOf(event)}`);
      last = event.eventOffset as number;
    }
    const appends = events.filter((event) => event.mask === 'block.text.content');
    assert.ok(appends.length >= 5, 'text arrives over several appends');
    assert.equal(answerText(events), simulatedReply({ userText: '1+1= 你好', turn: 1 }).text);
  });

  test('long-answer: the paragraph 40 times, numbered, over hundreds of text frames (bench B4)', async () => {
    const prompt = 'Write a lot. [[sim:long-answer]]';
    const response = await postChat(simulator.url, account.accessToken, chatBody(prompt));
    const expected = simulatedReply({ userText: prompt, turn: 1, paragraphs: 40 }).text;
    assert.equal(answerText(response.events), expected);
    assert.equal(expected.split('\n').length, 40);
    assert.match(expected.split('\n')[39], /^40\. Simulated reply to:/);
    assert.ok(response.events.filter((event) => event.mask === 'block.text.content').length >= 450);
  });

  test('thinking (§3.14 b): multiStage START, think set + appends, multiStage END, then text', async () => {
    const { events } = await postChat(simulator.url, account.accessToken, chatBody('17*23?', { thinking: true }));
    const masks = events.map((event) => event.mask).filter(Boolean);
    const start = masks.indexOf('block.multiStage');
    const end = masks.lastIndexOf('block.multiStage');
    assert.ok(start >= 0 && end > start);
    assert.equal(masks[start + 1], 'block.think');
    assert.ok(masks.slice(start + 2, end).every((mask) => mask === 'block.think.content'));
    assert.equal(masks[end + 1], 'block.text');
    const think = events
      .filter((event) => event.mask === 'block.think' || event.mask === 'block.think.content')
      .map((event) => (event.block as { think: { content: string } }).think.content)
      .join('');
    assert.equal(think, simulatedThinkingText('17*23?', 1));
  });

  test('search (§3.14 c): tool frames, searchChunks, E3A3 markers, one marker split across frames', async () => {
    const { events } = await postChat(simulator.url, account.accessToken, chatBody('北京 今天 天气', { search: true }));
    const statuses = events.map((event) => (event.block as { tool?: { status?: string } } | undefined)?.tool?.status).filter(Boolean);
    assert.deepEqual(statuses, ['STATUS_PENDING', 'STATUS_RUNNING', 'STATUS_DONE']);
    const argsFrames = events.filter((event) => event.mask === 'block.tool.args');
    assert.equal(argsFrames.length, 2);
    const chunks = events.find((event) => event.mask === 'message.refs.searchChunks');
    const sources = (chunks?.message as { refs: { searchChunks: { refIndex: string }[] } }).refs.searchChunks;
    const expected = simulatedReply({ userText: '北京 今天 天气', turn: 1, search: true });
    assert.deepEqual(sources.map((source) => source.refIndex), expected.sources.map((source) => source.refIndex));
    assert.ok(sources.length >= 2 && sources.length <= 3);
    const text = answerText(events);
    assert.equal(text, expected.text);
    assert.match(text, /\uE3A0cite\uE3A3web_search:1#0\uE3A8/);
    const pieces = events.filter((event) => event.mask?.toString().startsWith('block.text')).map((event) => (event.block as { text: { content: string } }).text.content);
    assert.ok(pieces.some((piece) => piece.includes('\uE3A0') && !piece.includes('\uE3A8')), 'a marker is split across frames');
    assert.equal(stripCitationMarkers(text), expected.plainText);
  });

  test('snake_case and camelCase bodies, chat_id "" accepted as a new chat (§3.2, §3.5)', async () => {
    const camel = { chatId: '', scenario: 'SCENARIO_CHAT', message: { role: 'user', blocks: [{ text: { content: 'camel' } }] }, options: { thinking: false } };
    const response = await postChat(simulator.url, account.accessToken, camel);
    assert.equal(response.status, 200);
    assert.match(answerText(response.events), /^Simulated reply to: "camel" \(turn 1\)/);
  });

  test('a bare JSON body is rejected with invalid_argument (§3.2)', async () => {
    const response = await postChat(simulator.url, account.accessToken, undefined, { raw: Buffer.from(JSON.stringify(chatBody('hi'))) });
    assert.equal(response.status, 400);
    assert.equal(JSON.parse(response.bodyText).code, 'invalid_argument');
    const truncated = await postChat(simulator.url, account.accessToken, undefined, { raw: envelope(chatBody('hi')).subarray(0, 20) });
    assert.equal(truncated.status, 400);
  });

  test('expired or forged access tokens get 401 with REASON_INVALID_AUTH_TOKEN (§3.14 e)', async () => {
    const [header, payload] = account.accessToken.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, exp: claims.exp + 9999 })).toString('base64url')}.${account.accessToken.split('.')[2]}`;
    const response = await postChat(simulator.url, forged, chatBody('hi'));
    assert.equal(response.status, 401);
    const body = JSON.parse(response.bodyText);
    assert.equal(body.code, 'unauthenticated');
    assert.equal(body.details[0].debug.reason, 'REASON_INVALID_AUTH_TOKEN');

    const shortLived = await startSimulator({ accessTokenTtlSeconds: 0 });
    try {
      const expired = shortLived.issueAccount();
      assert.equal((await postChat(shortLived.url, expired.accessToken, chatBody('hi'))).status, 401);
    } finally {
      await shortLived.close();
    }
  });
});

describe('multi-turn (§3.8)', () => {
  test('continues with chat_id + parent_id, counts turns, and validates the parent', async () => {
    const first = await postChat(simulator.url, account.accessToken, chatBody('first question'));
    const chatId = (first.events[1].chat as { id: string }).id;
    const assistantId = (first.events[3].message as { id: string }).id;
    const wrongParent = await postChat(simulator.url, account.accessToken, chatBody('second', { chatId, parentId: 'not-the-parent' }));
    assert.equal(wrongParent.status, 400);
    assert.equal(JSON.parse(wrongParent.bodyText).code, 'invalid_argument');
    const missingParent = await postChat(simulator.url, account.accessToken, chatBody('second', { chatId }));
    assert.equal(missingParent.status, 400);

    const second = await postChat(simulator.url, account.accessToken, chatBody('second', { chatId, parentId: assistantId }));
    assert.equal(second.status, 200);
    assert.equal((second.events[1].chat as { id: string }).id, chatId);
    assert.ok(!second.events.some((event) => event.mask === 'chat.name'), 'auto title only on the first turn');
    assert.match(answerText(second.events), /\(turn 2\)/);
    const stored = simulator.chats(account.userId).find((chat) => chat.id === chatId);
    assert.deepEqual(stored?.messages.map((message) => message.role), ['user', 'assistant', 'user', 'assistant']);
    assert.equal(stored?.messages[2].parentId, assistantId);
  });

  test('an unknown chat_id is HTTP 404 not_found', async () => {
    const response = await postChat(simulator.url, account.accessToken, chatBody('x', { chatId: '00000000-0000-8000-8000-000000000000' }));
    assert.equal(response.status, 404);
    assert.equal(JSON.parse(response.bodyText).code, 'not_found');
  });

  test('ListMessages is newest first; DeleteChat removes the chat (§3.9, §3.11)', async () => {
    const first = await postChat(simulator.url, account.accessToken, chatBody('to delete'));
    const chatId = (first.events[1].chat as { id: string }).id;
    const listed = await postJson(simulator.url, '/apiv2/kimi.gateway.chat.v1.ChatService/ListMessages', { chat_id: chatId, page_size: 200 }, account.accessToken);
    const roles = (listed.json.messages as { role: string }[]).map((message) => message.role);
    assert.deepEqual(roles, ['assistant', 'user']);
    const chats = await postJson(simulator.url, '/apiv2/kimi.chat.v1.ChatService/ListChats', { page_size: 50 }, account.accessToken);
    assert.ok((chats.json.chats as { id: string }[]).some((chat) => chat.id === chatId));
    assert.equal((await postJson(simulator.url, '/apiv2/kimi.chat.v1.ChatService/DeleteChat', { chat_id: chatId }, account.accessToken)).status, 200);
    assert.equal((await postJson(simulator.url, '/apiv2/kimi.chat.v1.ChatService/DeleteChat', { chat_id: chatId }, account.accessToken)).status, 404);
    assert.equal((await postJson(simulator.url, '/apiv2/kimi.gateway.chat.v1.ChatService/GetChat', { chat_id: chatId }, account.accessToken)).status, 404);
    assert.equal(simulator.chats(account.userId).find((chat) => chat.id === chatId)?.deleted, true);
  });
});

describe('concurrency (§3.12, §3.13)', () => {
  test('a third concurrent stream, or a second in the same chat, ends with resource_exhausted "session in progress"', async () => {
    const busy = simulator.issueAccount();
    const first = await postChat(simulator.url, busy.accessToken, chatBody('seed'));
    const chatId = (first.events[1].chat as { id: string }).id;
    const parentId = (first.events[3].message as { id: string }).id;
    const controller = new AbortController();
    const stalled = [
      postChat(simulator.url, busy.accessToken, chatBody('[[sim:stall-between-chunks]] one', { chatId, parentId }), { signal: controller.signal }).catch(() => undefined),
      postChat(simulator.url, busy.accessToken, chatBody('[[sim:stall-between-chunks]] two'), { signal: controller.signal }).catch(() => undefined),
    ];
    while (simulator.activeStreams(busy.userId) < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    const third = await postChat(simulator.url, busy.accessToken, chatBody('three'));
    assert.equal(third.status, 200);
    assert.equal(third.events.length, 0);
    const error = third.end?.error as { code: string; message: string };
    assert.equal(error.code, 'resource_exhausted');
    assert.match(error.message, /session in progress/);
    controller.abort();
    await Promise.all(stalled);
    while (simulator.activeStreams(busy.userId) > 0) await new Promise((resolve) => setTimeout(resolve, 5));

    // Same chat while its stream runs: refused even though the account has a free slot.
    const controller2 = new AbortController();
    const again = postChat(simulator.url, busy.accessToken, chatBody('[[sim:stall-between-chunks]] x', { chatId, parentId: (simulator.chats(busy.userId).find((chat) => chat.id === chatId)?.messages.at(-1))?.id }), { signal: controller2.signal }).catch(() => undefined);
    while (simulator.activeStreams(busy.userId) < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    const sameChat = await postChat(simulator.url, busy.accessToken, chatBody('y', { chatId, parentId: 'whatever' }));
    assert.match(String((sameChat.end?.error as { message: string }).message), /session in progress/);
    controller2.abort();
    await again;
  });
});
