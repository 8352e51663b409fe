import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { AuthenticationError, NotFoundError, RateLimitError, UpstreamError } from '../../errors.ts';
import { eachEvent, type ChatEvent, type KimiDialect, type KimiPrompt, type ModelChoice, type Session } from '../dialect.ts';
import type { UpstreamHttp } from '../upstream-http.ts';
import { fixtureBytes, framesToBytes, readAuthFailure, transcript } from './__fixtures__/fixture-frames.ts';
import { sendJson, startLoopbackServer, testUpstreamHttp, type LoopbackServer } from './__fixtures__/loopback-server.ts';
import { accessToken } from './__fixtures__/test-tokens.ts';
import { createConnectDialect } from './connect-dialect.ts';
import { encodeEnvelope } from './connect-framing.ts';

const chatPath = '/apiv2/kimi.gateway.chat.v1.ChatService/Chat';
const instant: ModelChoice = { publicId: 'kimi-k2.6', upstreamModel: 'k2d6-chat', scenario: 'SCENARIO_CHAT', thinking: false, search: false, silentSearch: false };
const prompt = (overrides: Partial<KimiPrompt> = {}): KimiPrompt => ({ text: '1+1=', model: instant, files: [], ...overrides });

/** Writes the bytes in small pieces with pauses, so frames and UTF-8 sequences straddle TCP reads. */
async function replyStream(response: ServerResponse, bytes: Uint8Array, pieceBytes = 7): Promise<void> {
  response.writeHead(200, { 'content-type': 'application/connect+json' });
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) {
    response.write(bytes.subarray(offset, offset + pieceBytes));
    await new Promise(setImmediate);
  }
  response.end();
}

async function collect(stream: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const events: ChatEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

describe('connect dialect over loopback (§3)', () => {
  let server: LoopbackServer;
  let http: UpstreamHttp;
  let dialect: KimiDialect;
  let session: Session;
  const unknowns: string[] = [];
  const signal = () => AbortSignal.timeout(5_000);

  before(async () => {
    server = await startLoopbackServer();
    http = testUpstreamHttp();
    dialect = createConnectDialect({
      baseUrl: `${server.url}/`,
      authUrl: server.url,
      http,
      timeZone: 'Asia/Shanghai',
      defaultRetryAfterMs: 30_000,
      onUnknown: (kind, name) => unknowns.push(`${kind}:${name}`),
    });
    session = dialect.sessionFromAccessToken(accessToken());
  });
  beforeEach(() => {
    server.requests.length = 0;
    unknowns.length = 0;
  });
  after(async () => {
    await http.close();
    await server.close();
  });

  describe('streamReply', () => {
    it('sends one envelope with the exact §3.5 body and headers, and yields the (a) events', async () => {
      server.handle((_request, response) => replyStream(response, fixtureBytes('plain-answer')));
      const events = await collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal())));
      assert.deepEqual(events, [
        { type: 'conversation-start', conversationId: '1a0a4ba7-0db2-835e-8000-09e4fa50aa86' },
        { type: 'message-start', messageId: '1a0a4ba7-0db2-8360-8000-0ae42ea84c31' },
        { type: 'text-delta', text: '1 + 1' },
        { type: 'text-delta', text: ' = 2' },
        { type: 'finish', reason: 'stop' },
      ]);
      const [request] = server.requests;
      assert.equal(request.method, 'POST');
      assert.equal(request.path, chatPath);
      assert.equal(request.body[0], 0x00);
      assert.equal(request.body.readUInt32BE(1), request.body.length - 5);
      assert.equal(
        request.body.subarray(5).toString('utf8'),
        '{"scenario":"SCENARIO_CHAT","message":{"role":"user","blocks":[{"text":{"content":"1+1="}}],"scenario":"SCENARIO_CHAT"},' +
          '"options":{"thinking":false,"enable_plugin":true,"model":"k2d6-chat"}}',
      );
      assert.equal(request.headers['content-type'], 'application/connect+json');
      assert.equal(request.headers['connect-protocol-version'], '1');
      assert.equal(request.headers.authorization, `Bearer ${session.accessToken}`);
      assert.equal(request.headers['x-msh-platform'], 'web');
      assert.equal(request.headers['x-msh-version'], '2.2.0');
      assert.equal(request.headers['x-msh-device-id'], '7470123456789012345');
      assert.equal(request.headers['x-msh-session-id'], '1730123456789012345');
      assert.equal(request.headers['x-traffic-id'], 'd5ig6pin7541vtcbh9t0');
      assert.equal(request.headers['x-language'], 'en-US');
      assert.equal(request.headers['r-timezone'], 'Asia/Shanghai');
      assert.equal(request.headers.origin, server.url);
    });

    it('a follow-up turn with search, thinking, agent and files sends ids, tools and file blocks (§3.5, §3.8)', async () => {
      server.handle((_request, response) => replyStream(response, fixtureBytes('thinking-answer')));
      const agent: ModelChoice = { ...instant, upstreamModel: 'k3-agent', scenario: 'SCENARIO_OK_COMPUTER', kimiplusId: 'ok-computer', agentMode: 'TYPE_NORMAL', reasoningEffort: 'high', thinking: true, search: true };
      const files = [{ id: 'f-1', name: 'a.png', mediaType: 'image/png', sizeBytes: 3, kind: 'image' as const }];
      const events = await collect(eachEvent(dialect.streamReply(session, prompt({ text: 'next', model: agent, files, conversation: { id: 'chat-9', parentMessageId: 'msg-8' } }), { citations: 'numbered' }, signal())));
      assert.deepEqual(events.map((event) => event.type), ['conversation-start', 'message-start', 'reasoning-delta', 'reasoning-delta', 'text-delta', 'text-delta', 'finish']);
      assert.deepEqual(JSON.parse(server.requests[0].body.subarray(5).toString('utf8')), {
        chat_id: 'chat-9',
        scenario: 'SCENARIO_OK_COMPUTER',
        kimiplus_id: 'ok-computer',
        agent_mode: 'TYPE_NORMAL',
        tools: [{ type: 'TOOL_TYPE_SEARCH', search: {} }],
        message: { parent_id: 'msg-8', role: 'user', blocks: [{ text: { content: 'next' } }, { file: { id: 'f-1' } }], scenario: 'SCENARIO_OK_COMPUTER' },
        options: { thinking: true, reasoning_effort: 'REASONING_EFFORT_HIGH', enable_plugin: true, model: 'k3-agent' },
      });
    });

    it('(c) arrives byte by byte: sources, [n] markers and Chinese text come out exact', async () => {
      server.handle((_request, response) => replyStream(response, fixtureBytes('search-answer'), 1));
      const events = await collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal())));
      const text = events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('');
      assert.equal(text, '今天北京晴转多云，最高约30℃[1]。');
      assert.equal(events.filter((event) => event.type === 'search-source').length, 1);
    });

    it('4-byte UTF-8 and emoji sent as escaped surrogate halves in two frames come out exact (D14)', async () => {
      const frames = transcript([
        { eventOffset: 1, op: 'set', block: { id: '0', text: { content: '😀👍🏽 é 北' } } },
        { eventOffset: 2, op: 'append', block: { id: '0', text: { content: ' 𝄞' } } },
        { eventOffset: 5, done: {} },
      ]);
      const bytes = Buffer.concat([
        framesToBytes(frames.slice(0, 2)),
        encodeEnvelope('{"eventOffset":3,"op":"append","block":{"id":"0","text":{"content":"\\ud83c"}}}'),
        encodeEnvelope('{"eventOffset":4,"op":"append","block":{"id":"0","text":{"content":"\\udf0d!"}}}'),
        framesToBytes(frames.slice(2)),
      ]);
      server.handle((_request, response) => replyStream(response, bytes, 1));
      const events = await collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal())));
      const deltas = events.flatMap((event) => (event.type === 'text-delta' ? [event.text] : []));
      assert.equal(deltas.join(''), '😀👍🏽 é 北 𝄞🌍!');
      assert.ok(deltas.every((text) => Buffer.from(text, 'utf8').toString('utf8') === text), 'no delta carries half a surrogate pair');
    });

    it('(d) overload in the end frame → RateLimitError upstream_overloaded', async () => {
      server.handle((_request, response) => replyStream(response, fixtureBytes('overload-before-text')));
      await assert.rejects(collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))), (error: unknown) => {
        assert.ok(error instanceof RateLimitError);
        assert.equal(error.code, 'upstream_overloaded');
        assert.equal(error.retryAfterMs, 30_000);
        return true;
      });
    });

    it('(d) exception mid-answer: yields the partial text, then throws', async () => {
      server.handle((_request, response) => replyStream(response, fixtureBytes('exception-mid-answer')));
      const seen: ChatEvent[] = [];
      await assert.rejects(async () => {
        for await (const event of eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))) seen.push(event);
      }, RateLimitError);
      assert.deepEqual(seen.filter((event) => event.type === 'text-delta').map((event) => event.text), ['1 + 1', ' = 2']);
    });

    it('(e) HTTP 401 with a Connect body → AuthenticationError', async () => {
      const failure = readAuthFailure();
      server.handle((_request, response) => sendJson(response, failure.status, failure.body));
      await assert.rejects(collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))), (error: unknown) => {
        assert.ok(error instanceof AuthenticationError);
        assert.equal(error.upstreamReason, 'REASON_INVALID_AUTH_TOKEN');
        assert.ok(!error.message.includes(session.accessToken));
        return true;
      });
    });

    it('a 404 on a continued chat → conversation_not_found', async () => {
      server.handle((_request, response) => sendJson(response, 404, { code: 'not_found', message: 'chat not found' }));
      const stream = eachEvent(dialect.streamReply(session, prompt({ conversation: { id: 'gone' } }), { citations: 'numbered' }, signal()));
      await assert.rejects(collect(stream), (error: unknown) => error instanceof NotFoundError && error.code === 'conversation_not_found');
    });

    it('a 200 HTML page is an UpstreamError naming what came back', async () => {
      server.handle((_request, response) => {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        response.end('<html><title>Just a moment...</title></html>');
      });
      await assert.rejects(collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))), /answered the chat with text\/html.*Just a moment/);
    });

    it('a transport end in the middle of a frame is a retryable truncation', async () => {
      const bytes = fixtureBytes('plain-answer');
      server.handle((_request, response) => replyStream(response, bytes.subarray(0, bytes.length - 10)));
      await assert.rejects(collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))), (error: unknown) => {
        assert.ok(error instanceof UpstreamError);
        assert.equal(error.isRetryable, true);
        assert.match(error.message, /broke off|ended before/);
        return true;
      });
    });

    it('an empty stream (only the {} end frame) is an upstream failure (§3.12)', async () => {
      server.handle((_request, response) => replyStream(response, framesToBytes(transcript([]))));
      await assert.rejects(collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))), (error: unknown) => {
        assert.ok(error instanceof UpstreamError);
        assert.match(error.message, /empty answer/);
        return true;
      });
    });

    it('a compressed frame is refused with a typed error', async () => {
      server.handle((_request, response) => replyStream(response, encodeEnvelope('{}', 0x01)));
      await assert.rejects(collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))), /compressed/);
    });

    it('an unreadable frame header ends the stream only after the frames before it, even within one read', async () => {
      server.handle((_request, response) => {
        response.writeHead(200, { 'content-type': 'application/connect+json' });
        // Separate HTTP chunks written at once: one read, one run of chunks for the gateway.
        response.write(encodeEnvelope(JSON.stringify({ eventOffset: 1, op: 'set', chat: { id: 'chat-1' } })));
        response.end(
          Buffer.concat([
            encodeEnvelope(JSON.stringify({ eventOffset: 2, op: 'set', block: { id: '0', text: { content: 'hello' } } })),
            encodeEnvelope('{}', 0x01),
          ]),
        );
      });
      const seen: ChatEvent[] = [];
      await assert.rejects(async () => {
        for await (const event of eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))) seen.push(event);
      }, /compressed/);
      assert.deepEqual(seen, [{ type: 'conversation-start', conversationId: 'chat-1' }, { type: 'text-delta', text: 'hello' }]);
    });

    it('ends at the end-of-stream frame: an unreadable header after it in the same read is ignored (§3.2)', async () => {
      server.handle((_request, response) => {
        response.writeHead(200, { 'content-type': 'application/connect+json' });
        const answer = framesToBytes(transcript([{ eventOffset: 1, op: 'set', block: { id: '0', text: { content: 'whole' } } }]));
        response.end(Buffer.concat([answer, encodeEnvelope('{}', 0x01)]));
      });
      const events = await collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal())));
      assert.deepEqual(events.filter((event) => event.type === 'text-delta' || event.type === 'finish'), [{ type: 'text-delta', text: 'whole' }, { type: 'finish', reason: 'stop' }]);
    });

    it('reports unknown protocol parts once each through onUnknown and keeps streaming', async () => {
      const frames = transcript([
        { eventOffset: 1, op: 'set', chat: { id: 'c' } },
        { eventOffset: 2, op: 'upsert', block: { id: '0_0', stage: { name: 'STAGE_NAME_X' } } },
        { eventOffset: 3, op: 'upsert', block: { id: '0_0', stage: { name: 'STAGE_NAME_X' } } },
        { eventOffset: 4, op: 'set', block: { id: '0_0', text: { content: 'fine' } } },
        { eventOffset: 5, done: {} },
      ]);
      server.handle((_request, response) => replyStream(response, framesToBytes(frames)));
      const events = await collect(eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal())));
      assert.deepEqual(unknowns, ['op:upsert']);
      assert.deepEqual(events.at(-2), { type: 'text-delta', text: 'fine' });
    });

    it('breaking out of the loop closes the upstream connection promptly (style §2.6)', async () => {
      let closed!: () => void;
      const upstreamClosed = new Promise<void>((resolve) => (closed = resolve));
      server.handle((_request, response) => {
        response.on('close', () => closed());
        response.writeHead(200, { 'content-type': 'application/connect+json' });
        response.write(encodeEnvelope(JSON.stringify({ eventOffset: 1, op: 'set', block: { id: '0', text: { content: 'first' } } })));
        // …and never ends on its own.
      });
      for await (const event of eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, signal()))) {
        assert.deepEqual(event, { type: 'text-delta', text: 'first' });
        break;
      }
      await Promise.race([upstreamClosed, delay(2_000, undefined, { ref: false }).then(() => assert.fail('upstream connection still open'))]);
    });

    it('an abort signal ends the stream with an AbortError and closes the connection', async () => {
      let closed!: () => void;
      const upstreamClosed = new Promise<void>((resolve) => (closed = resolve));
      server.handle((_request, response) => {
        response.on('close', () => closed());
        response.writeHead(200, { 'content-type': 'application/connect+json' });
        response.write(encodeEnvelope(JSON.stringify({ eventOffset: 1, op: 'set', block: { id: '0', text: { content: 'first' } } })));
      });
      const controller = new AbortController();
      // The client gives up after the first event, as a disconnecting HTTP client would.
      await assert.rejects(async () => {
        for await (const _event of eachEvent(dialect.streamReply(session, prompt(), { citations: 'numbered' }, controller.signal))) controller.abort();
      }, (error: unknown) => (error as Error).name === 'AbortError');
      await Promise.race([upstreamClosed, delay(2_000, undefined, { ref: false }).then(() => assert.fail('upstream connection still open'))]);
    });
  });

  describe('unary RPCs (§3.9, §3.11)', () => {
    it('findConversation returns the newest assistant message id', async () => {
      server.handle((_request, response) =>
        sendJson(response, 200, {
          messages: [
            { id: 'a2', role: 'assistant', createTime: '2026-09-15T11:02:00Z' },
            { id: 'u2', role: 'user', createTime: '2026-09-15T11:01:59Z' },
            { id: 'a1', role: 'assistant', createTime: '2026-09-15T11:01:00Z' },
          ],
        }),
      );
      assert.deepEqual(await dialect.findConversation(session, 'chat-1', signal()), { lastAssistantMessageId: 'a2' });
      assert.equal(server.requests[0].path, '/apiv2/kimi.gateway.chat.v1.ChatService/ListMessages');
      assert.deepEqual(JSON.parse(server.requests[0].body.toString()), { chat_id: 'chat-1', page_size: 200 });
      assert.equal(server.requests[0].headers['content-type'], 'application/json');
    });

    it('findConversation on a missing chat → NotFoundError conversation_not_found', async () => {
      server.handle((_request, response) => sendJson(response, 404, { code: 'not_found' }));
      await assert.rejects(dialect.findConversation(session, 'nope', signal()), (error: unknown) => {
        assert.ok(error instanceof NotFoundError);
        assert.equal(error.code, 'conversation_not_found');
        assert.match(error.message, /nope/);
        return true;
      });
    });

    it('deleteConversation posts DeleteChat; 404 counts as already deleted; 500 throws', async () => {
      server.handle((_request, response) => sendJson(response, 200, {}));
      await dialect.deleteConversation(session, 'chat-1', signal());
      assert.equal(server.requests[0].path, '/apiv2/kimi.chat.v1.ChatService/DeleteChat');
      assert.deepEqual(JSON.parse(server.requests[0].body.toString()), { chat_id: 'chat-1' });
      server.handle((_request, response) => sendJson(response, 404, { code: 'not_found' }));
      await dialect.deleteConversation(session, 'chat-1', signal());
      server.handle((_request, response) => sendJson(response, 500, { code: 'internal', message: 'db down' }));
      await assert.rejects(dialect.deleteConversation(session, 'chat-1', signal()), /db down/);
    });

    it('checkSession reads GetCurrentUser and fills region/membership from claims', async () => {
      server.handle((_request, response) => sendJson(response, 200, { user: { id: 'd5ig6pin7541vtcbh9t0', nickname: 'Ada', region: 'REGION_OVERSEA' } }));
      assert.deepEqual(await dialect.checkSession(session, signal()), { userId: 'd5ig6pin7541vtcbh9t0', name: 'Ada', region: 'REGION_OVERSEA', membershipLevel: '10' });
      assert.equal(server.requests[0].path, '/apiv2/kimi.gateway.account.v1.UserService/GetCurrentUser');
    });

    it('checkSession falls back to GET /api/user when the RPC is missing, and maps 401', async () => {
      server.handle((request, response) =>
        request.path === '/api/user' ? sendJson(response, 200, { id: 'u-rest', status: 'normal' }) : sendJson(response, 404, { code: 'not_found' }),
      );
      assert.equal((await dialect.checkSession(session, signal())).userId, 'u-rest');
      server.handle((_request, response) => sendJson(response, 401, { code: 'unauthenticated' }));
      await assert.rejects(dialect.checkSession(session, signal()), AuthenticationError);
    });

    it('listModels maps the GetAvailableModels catalog (§3.5)', async () => {
      server.handle((_request, response) =>
        sendJson(response, 200, {
          availableModels: [
            { id: 'k2d6-chat', key: 'k2d6', displayName: 'Instant', scenario: 'SCENARIO_CHAT', thinking: false, reasoningEffortOptions: [{ effort: 'REASONING_EFFORT_NONE' }, { effort: 'REASONING_EFFORT_LOW' }], defaultReasoningEffort: 'REASONING_EFFORT_LOW' },
            { id: 'k3-agent', displayName: 'K3', scenario: 'SCENARIO_OK_COMPUTER', kimiPlusId: 'ok-computer', agentMode: 'TYPE_NORMAL', futureField: { x: 1 } },
            { displayName: 'no id, skipped' },
          ],
          defaultScenario: { scenario: 'SCENARIO_CHAT', model: 'k2d6-chat' },
        }),
      );
      assert.deepEqual(await dialect.listModels(session, signal()), [
        { id: 'k2d6-chat', displayName: 'Instant', scenario: 'SCENARIO_CHAT', thinking: false, reasoningEfforts: ['REASONING_EFFORT_NONE', 'REASONING_EFFORT_LOW'], defaultReasoningEffort: 'REASONING_EFFORT_LOW' },
        { id: 'k3-agent', displayName: 'K3', scenario: 'SCENARIO_OK_COMPUTER', kimiplusId: 'ok-computer', agentMode: 'TYPE_NORMAL' },
      ]);
      assert.equal(server.requests[0].path, '/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels');
    });

    it('a CDN 404 page on a unary RPC names the operation and its path, and says the endpoint may have moved', async () => {
      server.handle((_request, response) => {
        response.writeHead(404, { 'content-type': 'text/html' }).end('<html><head><title>404 Not Found</title></head><body>nginx</body></html>');
      });
      await assert.rejects(dialect.listModels(session, signal()), (error: Error) => {
        assert.match(error.message, /for model list at \/apiv2\/kimi\.gateway\.config\.v1\.ConfigService\/GetAvailableModels/);
        assert.match(error.message, /the endpoint may have moved; run doctor/);
        return true;
      });
    });
  });
});
