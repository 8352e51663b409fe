import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthenticationError, RateLimitError, UpstreamError, type GatewayError } from '../../errors.ts';
import type { ChatEvent } from '../dialect.ts';
import { readFixture, transcript, type FixtureFrame, type FixtureName } from './__fixtures__/fixture-frames.ts';
import { initialStreamState, mapConnectFrame, mapEndOfStream, type MapperOptions, type UnknownReport } from './connect-events.ts';
import { frameSchema } from './connect-frame-schema.ts';

const numbered: MapperOptions = { citations: 'numbered', defaultRetryAfterMs: 60_000 };
const chatId = '1a0a4ba7-0db2-835e-8000-09e4fa50aa86';

interface Run {
  events: ChatEvent[];
  unknowns: UnknownReport[];
  error?: GatewayError;
}

/** Feeds frames through the pure mapper the way the dialect does; `endless` drops the end-stream frame. */
function run(frames: FixtureFrame[], options: MapperOptions = numbered): Run {
  let state = initialStreamState();
  const events: ChatEvent[] = [];
  const unknowns: UnknownReport[] = [];
  for (const frame of frames) {
    if (frame.flag === 2) {
      const end = mapEndOfStream(state, { sawEndFrame: true, payload: frame.data }, options);
      return { events: [...events, ...end.events], unknowns, error: end.error };
    }
    const result = mapConnectFrame(state, frame.data, options);
    state = result.state;
    events.push(...result.events);
    unknowns.push(...result.unknowns);
    if (result.error) return { events, unknowns, error: result.error };
  }
  const end = mapEndOfStream(state, { sawEndFrame: false }, options);
  return { events: [...events, ...end.events], unknowns, error: end.error };
}

const fixture = (name: FixtureName, options?: MapperOptions) => run(readFixture(name), options);
const textOf = (events: ChatEvent[]) => events.map((event) => (event.type === 'text-delta' ? event.text : '')).join('');
const start = [
  { op: 'set', mask: 'chat.lastRequest', eventOffset: 1, chat: { id: 'c1' } },
  { op: 'set', mask: 'message', eventOffset: 2, message: { id: 'a1', role: 'assistant', status: 'MESSAGE_STATUS_GENERATING' } },
];
const textFrame = (eventOffset: number, op: string, blockId: string, content: string) => ({
  op,
  mask: op === 'set' ? 'block.text' : 'block.text.content',
  eventOffset,
  block: { id: blockId, text: { content } },
});
const done = (eventOffset: number) => ({ eventOffset, done: {} });

describe('§3.14 transcripts through the mapper', () => {
  it('(a) plain answer: chat id, message id, text, finish; heartbeats and user echo ignored', () => {
    const result = fixture('plain-answer');
    assert.equal(result.error, undefined);
    assert.deepEqual(result.events, [
      { type: 'conversation-start', conversationId: chatId },
      { type: 'message-start', messageId: '1a0a4ba7-0db2-8360-8000-0ae42ea84c31' },
      { type: 'text-delta', text: '1 + 1' },
      { type: 'text-delta', text: ' = 2' },
      { type: 'finish', reason: 'stop' },
    ]);
    assert.deepEqual(result.unknowns, []);
  });

  it('(b) thinking goes to reasoning-delta, the answer to text-delta', () => {
    const result = fixture('thinking-answer');
    assert.deepEqual(result.events, [
      { type: 'conversation-start', conversationId: chatId },
      { type: 'message-start', messageId: 'a1' },
      { type: 'reasoning-delta', text: 'The user wants 17×23. ' },
      { type: 'reasoning-delta', text: '17×20=340, 17×3=51, total 391.' },
      { type: 'text-delta', text: '17 × 23 = ' },
      { type: 'text-delta', text: '391' },
      { type: 'finish', reason: 'stop' },
    ]);
  });

  it('(c) search: one source from tool result and searchChunks, marker rendered as [1]', () => {
    const result = fixture('search-answer');
    assert.deepEqual(result.events.slice(2), [
      {
        type: 'search-source',
        source: { index: 1, title: '北京天气预报', url: 'https://weather.example.cn/bj', siteName: 'Example Weather', snippet: '晴转多云，最高30℃' },
      },
      { type: 'text-delta', text: '今天北京晴转多云，最高约30℃' },
      { type: 'text-delta', text: '[1]。' },
      { type: 'finish', reason: 'stop' },
    ]);
  });

  it('(c) with citations "strip" removes the marker but still reports the source', () => {
    const result = fixture('search-answer', { ...numbered, citations: 'strip' });
    assert.equal(textOf(result.events), '今天北京晴转多云，最高约30℃。');
    assert.equal(result.events.filter((event) => event.type === 'search-source').length, 1);
  });

  it('(d) free-user overload in the end frame after done → upstream_overloaded', () => {
    const result = fixture('overload-before-text');
    assert.deepEqual(result.events, [{ type: 'conversation-start', conversationId: chatId }]);
    assert.ok(result.error instanceof RateLimitError);
    assert.equal(result.error.code, 'upstream_overloaded');
    assert.equal(result.error.upstreamReason, 'REASON_SERVER_OVERLOADED_FOR_FREE_USER');
    assert.match(result.error.message, /Too many people are chatting with Kimi/);
  });

  it('(d) block.exception mid-answer → retryable upstream_overloaded after the partial text', () => {
    const result = fixture('exception-mid-answer');
    assert.equal(textOf(result.events), '1 + 1 = 2');
    assert.ok(result.error instanceof RateLimitError);
    assert.equal(result.error.code, 'upstream_overloaded');
    assert.equal(result.error.isRetryable, true);
    assert.equal(result.error.upstreamReason, 'REASON_COMPLETION_OVERLOADED');
    assert.match(result.error.message, /stopped the answer because it is overloaded: 不好意思/);
  });
});

describe('stream rules (§3.6)', () => {
  it('drops frames replayed with an old eventOffset', () => {
    const frames = transcript([...start, textFrame(3, 'set', '0_0', 'A'), textFrame(3, 'set', '0_0', 'A'), textFrame(4, 'append', '0_0', 'B'), textFrame(4, 'append', '0_0', 'B'), start[0], done(5)]);
    const result = run(frames);
    assert.equal(textOf(result.events), 'AB');
    assert.equal(result.events.filter((event) => event.type === 'conversation-start').length, 1);
  });

  it('accepts a first chunk that is an append, and a set with empty text', () => {
    const appendFirst = run(transcript([...start, textFrame(3, 'append', '0_0', 'Hi'), done(4)]));
    assert.equal(textOf(appendFirst.events), 'Hi');
    const emptySet = run(transcript([...start, { op: 'set', mask: 'block.text.content', eventOffset: 3, block: { id: '0_0', text: {} } }, textFrame(4, 'append', '0_0', 'Yo'), done(5)]));
    assert.equal(textOf(emptySet.events), 'Yo');
  });

  it('a set that repeats the streamed text adds only its new tail', () => {
    const result = run(transcript([...start, textFrame(3, 'set', '0_0', 'Hel'), textFrame(4, 'append', '0_0', 'lo'), textFrame(5, 'set', '0_0', 'Hello!'), done(6)]));
    assert.deepEqual(result.events.filter((event) => event.type === 'text-delta'), [
      { type: 'text-delta', text: 'Hel' },
      { type: 'text-delta', text: 'lo' },
      { type: 'text-delta', text: '!' },
    ]);
  });

  it('joins a new text block after another block with a newline, and think blocks likewise', () => {
    const tool = { op: 'set', eventOffset: 5, block: { id: '0_2', tool: { name: 'web_search', status: 'STATUS_PENDING' } } };
    const think = (offset: number, id: string, content: string) => ({ op: 'set', mask: 'block.think', eventOffset: offset, block: { id, think: { content } } });
    const result = run(transcript([...start, think(3, '0_0', 'plan'), textFrame(4, 'set', '0_1', 'First.'), tool, think(6, '0_3', 'more'), textFrame(7, 'set', '0_4', 'Second.'), done(8)]));
    assert.equal(textOf(result.events), 'First.\nSecond.');
    const reasoning = result.events.map((event) => (event.type === 'reasoning-delta' ? event.text : '')).join('');
    assert.equal(reasoning, 'plan\nmore');
    assert.deepEqual(result.unknowns, []);
  });

  it('an error in the end frame wins even after done and text (§3.6, D14)', () => {
    const result = run(transcript([...start, textFrame(3, 'set', '0_0', 'partial'), done(4)], { error: { code: 'unauthenticated' } }));
    assert.equal(textOf(result.events), 'partial');
    assert.ok(result.error instanceof AuthenticationError);
    assert.ok(!result.events.some((event) => event.type === 'finish'));
  });

  it('a stream with no text, no reasoning and no error is an upstream failure', () => {
    const result = run(transcript([{ heartbeat: {} }]));
    assert.ok(result.error instanceof UpstreamError);
    assert.match(result.error.message, /empty answer/);
    assert.equal(result.error.isRetryable, true);
  });

  it('transport end without done, COMPLETED or end frame is a retryable truncation; otherwise it finishes', () => {
    const truncated = run([...transcript([...start, textFrame(3, 'set', '0_0', 'x')])].slice(0, -1));
    assert.ok(truncated.error instanceof UpstreamError);
    assert.match(truncated.error.message, /ended before it was complete/);
    assert.equal(truncated.error.isRetryable, true);
    const finished = run(transcript([...start, textFrame(3, 'set', '0_0', 'x'), done(4)]).slice(0, -1));
    assert.equal(finished.error, undefined);
    assert.deepEqual(finished.events.at(-1), { type: 'finish', reason: 'stop' });
    const completed = { op: 'set', mask: 'message.status', eventOffset: 4, message: { id: 'a1', status: 'MESSAGE_STATUS_COMPLETED' } };
    const whole = run(transcript([...start, textFrame(3, 'set', '0_0', 'x'), completed]).slice(0, -1));
    assert.deepEqual(whole.events.at(-1), { type: 'finish', reason: 'stop' });
  });

  it('TYPE_MODEL_DEGRADE becomes a notice and the stream continues (§3.13)', () => {
    const notice = { notification: { type: 'TYPE_MODEL_DEGRADE', message: 'Switched to K2.6 fast' } };
    const result = run(transcript([...start, notice, textFrame(3, 'set', '0_0', 'ok'), done(4)]));
    assert.deepEqual(result.events[2], { type: 'notice', kind: 'model-degrade', message: 'Switched to K2.6 fast' });
    assert.equal(textOf(result.events), 'ok');
  });

  it('a quota notice with no answer ends as insufficient_quota (§3.13, D12)', () => {
    const notice = { notification: { type: 'TYPE_MEMBERSHIP', message: 'Monthly quota used up', needUpgrade: true } };
    const result = run(transcript([...start, notice, done(3)]));
    assert.ok(result.error instanceof RateLimitError);
    assert.equal(result.error.code, 'insufficient_quota');
  });

  it('reports unknown containers, ops, block fields and enums, and keeps streaming', () => {
    const result = run(
      transcript([
        ...start,
        { eventOffset: 3, op: 'set', widget: { id: 'w' } },
        { eventOffset: 4, op: 'merge', block: { id: '0_0', stage: { name: 'STAGE_NAME_LAYOUT' } } },
        { eventOffset: 5, op: 'set', block: { id: '0_9', hologram: { beams: 3 } } },
        { eventOffset: 6, op: 'set', message: { id: 'a1', status: 'MESSAGE_STATUS_LEVITATING' } },
        textFrame(7, 'set', '0_0', 'still here'),
        done(8),
      ]),
    );
    assert.equal(result.error, undefined);
    assert.equal(textOf(result.events), 'still here');
    assert.deepEqual(result.unknowns, [
      { kind: 'event', name: 'widget' },
      { kind: 'op', name: 'merge' },
      { kind: 'field', name: 'block.hologram' },
      { kind: 'enum', name: 'message.status:MESSAGE_STATUS_LEVITATING' },
    ]);
  });

  it('an unknown op whose frame carries answer text fails the answer, naming the op, instead of a short success (§3.6 drift)', () => {
    for (const [mask, part] of [['block.text.content', 'text'], ['block.think.content', 'think']] as const) {
      const renamed = { op: 'patch', mask, eventOffset: 4, block: { id: '0_0', [part]: { content: 'ulated reply' } } };
      const result = run(transcript([...start, textFrame(3, 'set', '0_0', 'Sim'), renamed, done(5)]));
      assert.ok(result.error instanceof UpstreamError, part);
      assert.equal(result.error.code, 'upstream_error');
      assert.equal(result.error.message, 'Kimi sent answer text in an unknown op "patch" (§3.6); the gateway needs an update — run doctor.');
      assert.ok(!result.events.some((event) => event.type === 'finish'), 'never a finish after text was dropped');
      assert.deepEqual(result.unknowns, [{ kind: 'op', name: 'patch' }], 'still counted');
    }
    // Without text (an empty content, or no text part at all) nothing is lost: counted and skipped as before.
    const empty = run(transcript([...start, { op: 'patch', eventOffset: 3, block: { id: '0_0', text: { content: '' } } }, textFrame(4, 'set', '0_0', 'ok'), done(5)]));
    assert.equal(empty.error, undefined);
    assert.equal(textOf(empty.events), 'ok');
  });

  it('a chat object without id is reported by its unknown keys, and a renamed chatId or chat_id still names the conversation (§3.6 drift)', () => {
    for (const key of ['chatId', 'chat_id']) {
      for (const extra of [{}, { heartbeat: undefined }]) {
        // An extra own key, even undefined, sends the frame through the schema; without it the hand-read opening path reads it.
        const renamed = { op: 'set', mask: 'chat.lastRequest', eventOffset: 1, chat: { [key]: 'c-renamed', name: 'Untitled Chat', createTime: 't' }, ...extra };
        const result = run(transcript([renamed, start[1], { op: 'set', mask: 'chat.name', eventOffset: 3, chat: { name: 'Hi' } }, textFrame(4, 'set', '0_0', 'ok'), done(5)]));
        assert.equal(result.error, undefined);
        assert.deepEqual(result.events[0], { type: 'conversation-start', conversationId: 'c-renamed' }, key);
        assert.deepEqual(result.unknowns, [{ kind: 'field', name: `chat.${key}` }], key);
      }
    }
    const normal = run(transcript([...start, { op: 'set', mask: 'chat.name', eventOffset: 3, chat: { name: 'Hi' } }, textFrame(4, 'set', '0_0', 'ok'), done(5)]));
    assert.deepEqual(normal.unknowns, [], 'a chat.name without id after the chat id is normal');
    const unnamed = run(transcript([{ op: 'set', mask: 'chat.lastRequest', eventOffset: 1, chat: { uuid: 'c-2', name: 'x' } }, start[1], textFrame(3, 'set', '0_0', 'ok'), done(4)]));
    assert.deepEqual(unnamed.unknowns, [{ kind: 'field', name: 'chat.uuid' }]);
    assert.ok(!unnamed.events.some((event) => event.type === 'conversation-start'));
  });

  it('an empty answer names the unknowns the stream carried instead (§3.6 drift)', () => {
    const renamed = (eventOffset: number, op: string, content: string) => ({ op, mask: 'block.content.content', eventOffset, block: { id: '0_0', content: { content } } });
    const result = run(transcript([...start, renamed(3, 'set', 'Sim'), renamed(4, 'append', 'ulated'), done(5)]));
    assert.ok(result.error instanceof UpstreamError);
    assert.equal(
      result.error.message,
      'Kimi returned an empty answer (no text, no reasoning, no error); it sent unknown field:block.content frames instead (§3.6): the gateway needs an update — run doctor.',
    );
    assert.equal(result.error.isRetryable, false, 'drift is the same on every account: no failover');
    const plain = run(transcript([...start, done(3)]));
    assert.equal(plain.error?.message, 'Kimi returned an empty answer (no text, no reasoning, no error).');
    assert.equal((plain.error as UpstreamError).isRetryable, true, 'an unexplained empty answer may work on another account');
  });

  it('tolerates wrong-typed fields instead of dropping the frame', () => {
    const result = run(transcript([...start, { op: 'set', eventOffset: '3', block: { id: 7, text: { content: 'ok' }, think: 'nonsense' } }, { eventOffset: 4, done: {} }]));
    assert.equal(textOf(result.events), 'ok');
  });
});

describe('citations and sources in the stream (§3.7)', () => {
  const chunks = { op: 'append', mask: 'message.refs.searchChunks', eventOffset: 3, message: { refs: { searchChunks: [{ base: { title: 'A', url: 'https://a.example' }, refIndex: 'web_search:1#0' }, { base: { title: 'B', url: 'https://b.example' }, refIndex: 'web_search:1#1' }] } } };

  it('renders a U+1F6E0 marker split across three frames', () => {
    const result = run(
      transcript([
        ...start,
        chunks,
        textFrame(4, 'set', '0_0', 'Fact\uE3A0ci'),
        textFrame(5, 'append', '0_0', 'te\u{1F6E0}web_search:1#1:~:text=quo'),
        textFrame(6, 'append', '0_0', 'te\u{1F6E0}\uE3A8 end'),
        done(7),
      ]),
    );
    assert.deepEqual(result.events.filter((event) => event.type === 'text-delta').map((event) => event.text), ['Fact', '[2] end']);
  });

  it('releases an unterminated marker as text when the stream ends', () => {
    const result = run(transcript([...start, textFrame(3, 'set', '0_0', 'x\uE3A0cite\uE3A3web_search:1#0'), done(4)]));
    assert.equal(textOf(result.events), 'x\uE3A0cite\uE3A3web_search:1#0');
  });

  it('numbers older block.search.webPages and de-duplicates by URL', () => {
    const pages = { op: 'append', mask: 'block.search.webPages', eventOffset: 4, block: { id: '0_s', search: { webPages: [{ title: 'B again', url: 'https://b.example' }, { title: 'C', url: 'https://c.example', snippet: 's' }] } } };
    const result = run(transcript([...start, chunks, pages, textFrame(5, 'set', '0_0', 'ok'), done(6)]));
    const sources = result.events.flatMap((event) => (event.type === 'search-source' ? [event.source] : []));
    assert.deepEqual(sources.map((source) => [source.index, source.title, source.url]), [
      [1, 'A', 'https://a.example'],
      [2, 'B', 'https://b.example'],
      [3, 'C', 'https://c.example'],
    ]);
  });
});

describe('UTF-16 halves across frames', () => {
  it('holds a high surrogate until its low half arrives in the next frame', () => {
    const first = JSON.parse('{"op":"set","eventOffset":3,"block":{"id":"0_0","text":{"content":"a\\ud83d"}}}');
    const second = JSON.parse('{"op":"append","eventOffset":4,"block":{"id":"0_0","text":{"content":"\\ude00b"}}}');
    const result = run(transcript([...start, first, second, done(5)]));
    assert.deepEqual(result.events.filter((event) => event.type === 'text-delta').map((event) => event.text), ['a', '😀b']);
  });
});

describe('the hand-read frames (content, heartbeats, closing status and done)', () => {
  const options: MapperOptions = { citations: 'numbered', defaultRetryAfterMs: 1000 };
  /** Runs `body` counting the frames that went through the zod frame schema. */
  function countingSchemaParses(body: () => void): number {
    const original = frameSchema.safeParse;
    let parses = 0;
    frameSchema.safeParse = ((...args: Parameters<typeof original>) => {
      parses += 1;
      return original.apply(frameSchema, args);
    }) as typeof original;
    try {
      body();
    } finally {
      frameSchema.safeParse = original;
    }
    return parses;
  }
  const frames = [
    { op: 'set', mask: 'block.text', eventOffset: 5, block: { id: '0_0', text: { content: '你好' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 6, block: { id: '0_0', text: { content: ' world \uE3A0cite\uE3A3web' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 7, block: { id: '0_0', text: { content: '_search:1#0\uE3A8 done' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 7, block: { id: '0_0', text: { content: 'duplicate' } } },
    { op: 'append', mask: 'block.think.content', eventOffset: 8, block: { id: '0_1', think: { content: 'thought' } } },
    { op: 'append', mask: 'block.think.content', eventOffset: 9, block: { id: '0_1', think: { content: ' more thought' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 10, block: { id: '0_0', text: { content: ' plain 你好' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 11, block: { text: { content: ' no id' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 12, block: { id: '0_0', text: { content: 'half \uD83C' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 13, block: { id: '0_0', text: { content: '\uDF0F whole again' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 14, block: { id: '0_0', text: { content: '' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 15, block: { id: '0_2', text: { content: 'a new block' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 16, block: { id: '0_2', text: { content: ' then plain' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 17, block: { id: '0_2', text: { content: ' \u{1F6E0}tool' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 18, block: { id: '0_2', text: { content: ' and \uE3A0' } } },
    { op: 'append', mask: 'block.text.content', eventOffset: 19, block: { id: '0_2', text: { content: 'cite\uE3A3web_search:1#0\uE3A8 end' } } },
    { op: 'set', mask: 'block.think', eventOffset: 20, block: { id: '0_3', think: { content: 'second thought' } } },
    { op: 'set', mask: 'block.text', eventOffset: 21, block: { id: '0_2', text: { content: 'a new block then plain and more' } } },
    { op: 'set', mask: 'message.status', eventOffset: 22, message: { id: 'm-1', status: 'MESSAGE_STATUS_GENERATING' } },
    { op: 'set', mask: 'message.status', eventOffset: 23, message: { id: 'm-1', status: 'MESSAGE_STATUS_COMPLETED' } },
    { op: 'set', mask: 'message.status', eventOffset: 23, message: { id: 'm-1', status: 'MESSAGE_STATUS_GENERATING' } },
    { eventOffset: 24, done: {} },
    { eventOffset: 24, done: {} },
  ];

  it('maps exactly as the schema path does (§3.6 dedup, blocks, citations and surrogates held across frames, plain appends)', () => {
    let fastState = initialStreamState();
    let slowState = initialStreamState();
    let schemaParses = 0;
    for (const frame of frames) {
      let fast: ReturnType<typeof mapConnectFrame> | undefined;
      schemaParses += countingSchemaParses(() => (fast = mapConnectFrame(fastState, frame, options)));
      // An extra own key, even undefined, sends the same frame through the full schema.
      const slow = mapConnectFrame(slowState, { ...frame, heartbeat: undefined }, options);
      assert.deepEqual(fast!.events, slow.events);
      assert.deepEqual(fast!.unknowns, slow.unknowns);
      fastState = fast!.state;
      slowState = slow.state;
    }
    assert.deepEqual(fastState, slowState);
    assert.equal(schemaParses, 0, 'every one of these frames is read by hand');
  });

  it('reads the frames that open an answer (chat and messages, §3.14 a) exactly as the schema path does', () => {
    const opening = [
      { op: 'set', mask: 'chat.lastRequest', eventOffset: 1, chat: { id: 'chat-1', name: 'Untitled Chat', createTime: '2026-11-28T06:41:27.637Z' } },
      { op: 'set', mask: 'message', eventOffset: 2, message: { id: 'u-1', role: 'user', status: 'MESSAGE_STATUS_COMPLETED', blocks: [{ id: 'text_0_0', text: { content: 'Say hi.' } }] } },
      { op: 'set', mask: 'message', eventOffset: 3, message: { id: 'a-1', parentId: 'u-1', role: 'assistant', status: 'MESSAGE_STATUS_GENERATING', scenario: 'SCENARIO_CHAT' } },
      { op: 'set', mask: 'message', eventOffset: 3, message: { id: 'a-duplicate', role: 'assistant' } },
      { op: 'set', mask: 'chat.name', eventOffset: 4, chat: { name: 'Say hi.' } },
      { op: 'set', mask: 'chat.lastRequest', eventOffset: 5, chat: { id: 'chat-2' } },
      { op: 'set', mask: 'message', eventOffset: 6, message: { id: 42, role: 'assistant', status: 'MESSAGE_STATUS_THINKING' } },
      { op: 'set', mask: 'message', eventOffset: 7, message: { id: 'a-3', role: 'system' } },
      { op: 'set', mask: 'message', eventOffset: 8, message: { id: 'a-4', role: 7, status: false } },
      { op: 'set', mask: 'chat', eventOffset: 9, chat: ['not', 'an', 'object'] },
      { op: 'set', mask: 'message', eventOffset: 10, message: { id: 'a-5', role: 'assistant', refs: { searchChunks: [{ refIndex: '1', title: 'T', url: 'https://example.com' }] } } },
    ];
    let fastState = initialStreamState();
    let slowState = initialStreamState();
    const fastEvents: unknown[] = [];
    const throughSchema: string[] = [];
    for (const frame of opening) {
      let fast: ReturnType<typeof mapConnectFrame> | undefined;
      if (countingSchemaParses(() => (fast = mapConnectFrame(fastState, frame, options))) > 0) throughSchema.push(JSON.stringify(frame));
      const slow = mapConnectFrame(slowState, { ...frame, heartbeat: undefined }, options);
      assert.deepEqual(fast!.events, slow.events, JSON.stringify(frame));
      assert.deepEqual(fast!.unknowns, slow.unknowns, JSON.stringify(frame));
      fastEvents.push(...fast!.events);
      fastState = fast!.state;
      slowState = slow.state;
    }
    assert.deepEqual(fastState, slowState);
    // Only the array-valued chat and the message with search refs take the schema; the rest are read by hand.
    assert.deepEqual(throughSchema, [JSON.stringify(opening[9]), JSON.stringify(opening[10])]);
    assert.deepEqual(fastEvents.slice(0, 2), [{ type: 'conversation-start', conversationId: 'chat-1' }, { type: 'message-start', messageId: 'a-1' }]);
    assert.ok(fastEvents.some((event) => (event as { messageId?: string }).messageId === '42'));
    assert.equal(fastState.conversationId, 'chat-1');
  });

  it('skips plain heartbeats without touching the state (§3.6), and sends odd ones through the schema', () => {
    const state = { ...initialStreamState(), lastEventOffset: 4 };
    for (const heartbeat of [{ heartbeat: {} }, { eventOffset: 4, heartbeat: {} }]) {
      const result = mapConnectFrame(state, heartbeat, options);
      assert.equal(result.state, state);
      assert.deepEqual([result.events, result.unknowns], [[], []]);
    }
    const odd = mapConnectFrame(state, { heartbeat: {}, pulse: { beat: 1 } }, options);
    assert.deepEqual(odd.unknowns, [{ kind: 'event', name: 'pulse' }]);
  });

  it('leaves anything unusual to the schema path, so unknown parts are still reported', () => {
    const odd = mapConnectFrame(initialStreamState(), { op: 'append', mask: 'block.text.content', eventOffset: 1, block: { id: '0_0', text: { content: 'x' }, blob: {} } }, options);
    assert.deepEqual(odd.unknowns, [{ kind: 'field', name: 'block.blob' }]);
  });
});
