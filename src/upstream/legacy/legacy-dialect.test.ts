/**
 * @module upstream/legacy/legacy-dialect.test
 * The legacy dialect against a loopback host: the §2.6 transcripts as exact ChatEvent sequences and request
 * bodies, length continuation, truncation, consumer departure, and the conversation calls.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AuthenticationError, ConflictError, NotFoundError, RateLimitError, UpstreamError } from '../../errors.ts';
import { eachEvent, type ChatEvent, type KimiPrompt } from '../dialect.ts';
import { createLegacyDialect, type LegacyDialect } from './legacy-dialect.ts';
import { collect, createTestHttp, modelChoice, readFixture, sendJson, sendSse, startLoopbackServer, testSession, type LoopbackServer } from './legacy-test-server.ts';
import type { UpstreamHttp } from '../upstream-http.ts';

const chatId = 'cr0000000000000chat1';
const streamRoute = `POST /api/chat/${chatId}/completion/stream`;
const citations = { citations: 'numbered' as const };

function prompt(overrides: Partial<KimiPrompt> = {}): KimiPrompt {
  return { text: '1+1', model: modelChoice(), files: [], ...overrides };
}

function defaultCompletion(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kimiplus_id: 'kimi',
    messages: [{ role: 'user', content: '1+1' }],
    refs: [],
    refs_file: [],
    use_search: false,
    use_research: false,
    use_math: false,
    extend: { sidebar: true },
    ...overrides,
  };
}

describe('legacy streamReply over loopback (§2.4–§2.6)', () => {
  let server: LoopbackServer;
  let http: UpstreamHttp;
  let dialect: LegacyDialect;
  const unknown: string[] = [];

  /** Consumes a reply, keeping the events that arrived before an error. */
  async function consume(reply: AsyncIterable<ChatEvent>): Promise<{ events: ChatEvent[]; error: unknown }> {
    const events: ChatEvent[] = [];
    try {
      for await (const event of reply) events.push(event);
      return { events, error: undefined };
    } catch (error) {
      return { events, error };
    }
  }
  const streamRequests = () => server.requests.filter((request) => request.path.endsWith('/completion/stream'));

  before(async () => {
    server = await startLoopbackServer();
    http = createTestHttp();
    dialect = createLegacyDialect({ baseUrl: `${server.url}/`, http, maxContinuations: 2, onUnknown: (kind, name) => unknown.push(`${kind}:${name}`) });
  });
  beforeEach(() => {
    server.requests.length = 0;
    server.routes.clear();
    unknown.length = 0;
    server.routes.set('POST /api/chat', (_request, response) => sendJson(response, 200, { id: chatId, name: '未命名会话' }));
  });
  after(async () => {
    await http.close();
    await server.close();
  });

  it('(a) creates a chat and maps a plain answer; request bodies and headers are exact', async () => {
    server.routes.set(streamRoute, (_request, response) => sendSse(response, readFixture('a-plain-answer.sse')));
    const events = await collect(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))));
    assert.deepEqual(events, [
      { type: 'conversation-start', conversationId: chatId },
      { type: 'message-start', messageId: 'cr1a2b3c4d5e6f7g8h9k' },
      { type: 'text-delta', text: '1+1' },
      { type: 'text-delta', text: ' = 2' },
      { type: 'finish', reason: 'stop' },
    ]);
    const [create, completion] = server.requests;
    assert.deepEqual(create.json, {
      name: '未命名会话',
      is_example: false,
      enter_method: 'new_chat',
      kimiplus_id: 'kimi',
      born_from: 'home',
      source: 'web',
      tags: [],
    });
    assert.equal(completion.path, `/api/chat/${chatId}/completion/stream`);
    assert.deepEqual(completion.json, defaultCompletion());
    assert.equal(completion.headers.authorization, `Bearer ${testSession.accessToken}`);
    assert.equal(completion.headers['x-traffic-id'], testSession.identity.userId);
    assert.equal(completion.headers['x-msh-device-id'], testSession.identity.deviceId);
    assert.equal(completion.headers['x-msh-platform'], 'web');
    assert.equal(completion.headers.referer, `${server.url}/chat/${chatId}`);
    assert.equal(completion.headers['content-type'], 'application/json');
    assert.deepEqual(unknown, []);
  });

  it('hands on what one read carried as one batch of events, not one batch per SSE event', async () => {
    server.routes.set(streamRoute, (_request, response) => sendSse(response, readFixture('a-plain-answer.sse')));
    const batches: ChatEvent[][] = [];
    for await (const batch of dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))) batches.push([...batch]);
    const answer = batches.slice(1, -1);
    assert.deepEqual(answer.flat().map((event) => event.type), ['message-start', 'text-delta', 'text-delta']);
    // The whole answer was one write; the loopback read may still split it, but never into one batch per event.
    assert.ok(answer.length < 3, `${answer.length} batches`);
  });

  it('reads nothing after all_done: a malformed message behind it in the same read is neither parsed nor reported', async () => {
    server.routes.set(streamRoute, (_request, response) => sendSse(response, `${readFixture('a-plain-answer.sse')}data: {not json\n\n`));
    const events = await collect(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))));
    assert.deepEqual(events.at(-1), { type: 'finish', reason: 'stop' });
    assert.deepEqual(unknown, []);
  });

  it('(b) continues a known chat with the k1 agent and maps reasoning', async () => {
    server.routes.set(streamRoute, (_request, response) => sendSse(response, readFixture('b-thinking.sse')));
    const reply = eachEvent(dialect.streamReply(testSession, prompt({ model: modelChoice({ thinking: true }), conversation: { id: chatId } }), citations, AbortSignal.timeout(5_000)));
    assert.deepEqual(await collect(reply), [
      { type: 'conversation-start', conversationId: chatId },
      { type: 'message-start', messageId: 'cr2b000000000000000k' },
      { type: 'reasoning-delta', text: 'The user asks for 1+1. ' },
      { type: 'reasoning-delta', text: 'Trivial.' },
      { type: 'text-delta', text: '2' },
      { type: 'finish', reason: 'stop' },
    ]);
    assert.deepEqual(server.requests.map((request) => request.path), [`/api/chat/${chatId}/completion/stream`]);
    assert.deepEqual(server.requests[0].json, defaultCompletion({ kimiplus_id: 'crm40ee9e5jvhsn7ptcg' }));
  });

  it('(c) turns search results into numbered sources and sends use_search and file refs', async () => {
    server.routes.set(streamRoute, (_request, response) => sendSse(response, readFixture('c-web-search.sse')));
    const file = { id: 'file-1', name: 'a.pdf', mediaType: 'application/pdf', sizeBytes: 123, kind: 'document' as const, detail: { id: 'file-1', name: 'a.pdf', size: 123, status: 'parsed' } };
    const reply = eachEvent(dialect.streamReply(testSession, prompt({ text: '南京今天天气', model: modelChoice({ search: true }), files: [file] }), citations, AbortSignal.timeout(5_000)));
    assert.deepEqual(await collect(reply), [
      { type: 'conversation-start', conversationId: chatId },
      { type: 'search-source', source: { index: 1, title: '南京天气', url: 'http://example.cn/nj' } },
      { type: 'search-source', source: { index: 2, title: '南京预报', url: 'http://example.cn/nj2' } },
      { type: 'text-delta', text: '今天南京多云……' },
      { type: 'finish', reason: 'stop' },
    ]);
    assert.deepEqual(
      streamRequests()[0].json,
      defaultCompletion({
        messages: [{ role: 'user', content: '南京今天天气' }],
        use_search: true,
        refs: ['file-1'],
        refs_file: [
          {
            id: 'file-1',
            name: 'a.pdf',
            size: 123,
            file: {},
            file_info: file.detail,
            detail: file.detail,
            done: true,
            parse_status: 'success',
            upload_progress: 100,
            upload_status: 'success',
          },
        ],
      }),
    );
  });

  it('(d) throws the overload error after the partial text', async () => {
    server.routes.set(streamRoute, (_request, response) => sendSse(response, readFixture('d-error-mid-stream.sse')));
    const { events, error } = await consume(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))));
    assert.deepEqual(events, [
      { type: 'conversation-start', conversationId: chatId },
      { type: 'text-delta', text: '部分回答' },
    ]);
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.code, 'upstream_overloaded');
    assert.equal(error.retryAfterMs, 45_000);
    assert.match(error.message, /Kimi 现在有点累了/);
  });

  it('(e) maps the HTTP 401 JSON answer to invalid_token', async () => {
    server.routes.set(streamRoute, (_request, response) => response.writeHead(401, { 'content-type': 'application/json' }).end(readFixture('e-auth-failure.json')));
    const { events, error } = await consume(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))));
    assert.deepEqual(events, [{ type: 'conversation-start', conversationId: chatId }]);
    assert.ok(error instanceof AuthenticationError);
    assert.equal(error.blamesAccount, true);
    assert.equal(error.message.includes(testSession.accessToken), false);
  });

  it('continues after a length cut with the segment id and joins the text into one answer (§2.4)', async () => {
    let call = 0;
    server.routes.set(streamRoute, (_request, response) => {
      call += 1;
      sendSse(response, readFixture(call === 1 ? 'd-length-cut.sse' : 'd-length-continuation.sse'));
    });
    const events = await collect(eachEvent(dialect.streamReply(testSession, prompt({ text: 'long story' }), citations, AbortSignal.timeout(5_000))));
    assert.deepEqual(events, [
      { type: 'conversation-start', conversationId: chatId },
      { type: 'message-start', messageId: 'cr4d0000000000000msg' },
      { type: 'text-delta', text: 'Once upon a time' },
      { type: 'text-delta', text: ', the end.' },
      { type: 'finish', reason: 'stop' },
    ]);
    assert.deepEqual(streamRequests()[1].json, {
      segment_id: 'cr4d00000000000seg1',
      action: 'continue',
      messages: [{ role: 'user', content: ' ' }],
      kimiplus_id: 'kimi',
      extend: { sidebar: true },
    });
  });

  it('stops continuing after maxContinuations and finishes with length', async () => {
    server.routes.set(streamRoute, (_request, response) => sendSse(response, readFixture('d-length-cut.sse')));
    const events = await collect(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))));
    assert.equal(streamRequests().length, 3, 'the first request and two continuations');
    assert.deepEqual(events.at(-1), { type: 'finish', reason: 'length' });
    assert.equal(events.filter((event) => event.type === 'text-delta').length, 3);
  });

  it('reports a stream cut before all_done as a retryable upstream error, and an empty answer as an error', async () => {
    server.routes.set(streamRoute, (_request, response) => sendSse(response, 'data: {"event":"cmpl","text":"half"}\n\n'));
    const truncated = await consume(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))));
    assert.deepEqual(truncated.events.at(-1), { type: 'text-delta', text: 'half' });
    assert.ok(truncated.error instanceof UpstreamError && truncated.error.isRetryable);
    server.routes.set(streamRoute, (_request, response) => sendSse(response, 'data: {"event":"all_done"}\n\n'));
    const empty = await consume(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))));
    assert.ok(empty.error instanceof UpstreamError);
    assert.match(empty.error.message, /without producing any answer/);
  });

  it('maps a busy chat (HTTP 400 and a 200 JSON body) to 409 and HTTP 429 to rate_limited with Retry-After', async () => {
    const busy = { error_type: 'chat.user_stream_pushing', message: '当前会话正在生成中' };
    server.routes.set(streamRoute, (_request, response) => sendJson(response, 400, busy));
    assert.ok((await consume(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))))).error instanceof ConflictError);
    server.routes.set(streamRoute, (_request, response) => sendJson(response, 200, busy));
    assert.ok((await consume(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))))).error instanceof ConflictError);
    server.routes.set(streamRoute, (_request, response) => sendJson(response, 429, {}, { 'retry-after': '12' }));
    const { error } = await consume(eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000))));
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.retryAfterMs, 12_000);
  });

  it('refuses a research turn when no research runs remain, before creating a chat', async () => {
    server.routes.set('GET /api/chat/research/usage', (_request, response) => sendJson(response, 200, { remain: 0, total: 20, used: 20 }));
    const { error } = await consume(eachEvent(dialect.streamReply(testSession, prompt({ model: modelChoice({ research: true }) }), citations, AbortSignal.timeout(5_000))));
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.code, 'insufficient_quota');
    assert.deepEqual(server.requests.map((request) => request.path), ['/api/chat/research/usage']);
    assert.deepEqual(await dialect.researchUsage(testSession, AbortSignal.timeout(5_000)), { remain: 0, total: 20, used: 20 });
  });

  it('closes the upstream socket promptly when the consumer breaks off or aborts', async () => {
    let closed: () => void = () => {};
    server.routes.set(streamRoute, (_request, response) => {
      response.on('close', () => closed());
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: {"event":"resp","id":"m1"}\n\ndata: {"event":"cmpl","text":"first"}\n\n');
      // Never ends: only the client can close this stream.
    });
    const wait = () => new Promise<number>((resolve) => {
      const started = Date.now();
      closed = () => resolve(Date.now() - started);
    });

    const afterBreak = wait();
    for await (const event of eachEvent(dialect.streamReply(testSession, prompt(), citations, AbortSignal.timeout(5_000)))) {
      if (event.type === 'text-delta') break;
    }
    assert.ok((await afterBreak) < 500);

    const controller = new AbortController();
    const afterAbort = wait();
    const started = Date.now();
    const consumed = consume(eachEvent(dialect.streamReply(testSession, prompt(), citations, controller.signal)));
    setTimeout(() => controller.abort(), 100);
    const { events, error } = await consumed;
    assert.deepEqual(events.at(-1), { type: 'text-delta', text: 'first' });
    assert.equal((error as Error).name, 'AbortError');
    assert.ok(Date.now() - started < 1_000);
    assert.ok((await afterAbort) < 1_000);
  });
});

describe('legacy conversation calls and catalogue (§2.3, §2.7)', () => {
  let server: LoopbackServer;
  let http: UpstreamHttp;
  let dialect: LegacyDialect;

  before(async () => {
    server = await startLoopbackServer();
    http = createTestHttp();
    dialect = createLegacyDialect({ baseUrl: server.url, http });
  });
  beforeEach(() => {
    server.requests.length = 0;
    server.routes.clear();
  });
  after(async () => {
    await http.close();
    await server.close();
  });

  it('findConversation: GET /api/chat/{id} 200 → found, 404 → conversation_not_found, malformed id → no request', async () => {
    server.routes.set(`GET /api/chat/${chatId}`, (_request, response) => sendJson(response, 200, { id: chatId, name: 'x' }));
    server.routes.set('GET /api/chat/cr0000000000000gone1', (_request, response) => sendJson(response, 404, { error_type: 'chat.not_found', message: '会话不存在' }));
    assert.deepEqual(await dialect.findConversation(testSession, chatId, AbortSignal.timeout(5_000)), {});
    for (const id of ['cr0000000000000gone1', '../user']) {
      await assert.rejects(dialect.findConversation(testSession, id, AbortSignal.timeout(5_000)), (error: unknown) => {
        assert.ok(error instanceof NotFoundError);
        assert.equal(error.code, 'conversation_not_found');
        return true;
      });
    }
    assert.deepEqual(server.requests.map((request) => request.path), [`/api/chat/${chatId}`, '/api/chat/cr0000000000000gone1']);
  });

  it('deleteConversation: DELETE /api/chat/{id}; 404 counts as deleted, 500 fails', async () => {
    server.routes.set(`DELETE /api/chat/${chatId}`, (_request, response) => sendJson(response, 200, {}));
    server.routes.set('DELETE /api/chat/cr0000000000000gone1', (_request, response) => sendJson(response, 404, { error_type: 'chat.not_found' }));
    await dialect.deleteConversation(testSession, chatId, AbortSignal.timeout(5_000));
    await dialect.deleteConversation(testSession, 'cr0000000000000gone1', AbortSignal.timeout(5_000));
    assert.deepEqual(server.requests.map((request) => `${request.method} ${request.path}`), [`DELETE /api/chat/${chatId}`, 'DELETE /api/chat/cr0000000000000gone1']);
    server.routes.set(`DELETE /api/chat/${chatId}`, (_request, response) => sendJson(response, 500, { message: 'boom' }));
    await assert.rejects(dialect.deleteConversation(testSession, chatId, AbortSignal.timeout(5_000)), UpstreamError);
  });

  it('checkSession reads GET /api/user; 401 → AuthenticationError', async () => {
    server.routes.set('GET /api/user', (_request, response) => sendJson(response, 200, { id: 'cuser1', name: 'N' }));
    assert.deepEqual(await dialect.checkSession(testSession, AbortSignal.timeout(5_000)), { userId: 'cuser1', name: 'N' });
    server.routes.set('GET /api/user', (_request, response) => sendJson(response, 401, { error_type: 'auth.token.invalid' }));
    await assert.rejects(dialect.checkSession(testSession, AbortSignal.timeout(5_000)), AuthenticationError);
  });

  it('lists the static legacy catalogue', async () => {
    const models = await dialect.listModels(testSession, AbortSignal.timeout(5_000));
    assert.deepEqual(models.map((model) => model.id), ['kimi', 'kimi-search', 'kimi-k1', 'kimi-research', 'kimi-math']);
    assert.deepEqual(models.find((model) => model.thinking), { id: 'kimi-k1', displayName: 'Kimi k1 (thinking)', kimiplusId: 'crm40ee9e5jvhsn7ptcg', thinking: true });
    assert.equal(dialect.name, 'legacy');
  });
});
