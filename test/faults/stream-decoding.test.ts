// Fault suite (issue 7): malformed upstream streams and byte-level splitting. Connect frames with a bad
// length, truncated, non-JSON or with an unknown op (spec §3.2, §3.6); malformed legacy SSE lines (§2.5); and
// UTF-8 characters split at every byte offset across reads (§9 D14), for both dialects, compared with the
// simulator's own expected reply.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { simulatedReply, startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { chat } from '../support/gateway-client.ts';
import { connectFrames, offsetsInsideCharacters, startFaultProxy, withFaultRule, type FaultProxy, type FaultRule } from '../support/fault-proxy.ts';

const chatPath = '/apiv2/kimi.gateway.chat.v1.ChatService/Chat';
const legacyStreamPath = /\/api\/chat\/[^/]+\/completion\/stream$/;
let simulator: Simulator;
let proxy: FaultProxy;
let current: Stack;
let legacy: Stack;

before(async () => {
  simulator = await startSimulator();
  proxy = await startFaultProxy(simulator.url);
  const env = { KIMI_BASE_URL: proxy.url, KIMI_LEGACY_BASE_URL: proxy.url };
  current = await startStack({ serverPool: true, existingSimulator: simulator, env: { ...env, KIMI_DIALECT: 'current' } });
  legacy = await startStack({ serverPool: true, existingSimulator: simulator, tokenKind: 'legacy', env: { ...env, KIMI_DIALECT: 'legacy' } });
});
after(async () => {
  await current?.close();
  await legacy?.close();
  await proxy?.close();
  await simulator?.close();
});

/** The reply the simulator computed for the last prompt it received (what the gateway must reproduce exactly). */
function expectedReply(): string {
  const last = simulator.requests.filter((request) => request.path === chatPath || legacyStreamPath.test(request.path)).at(-1);
  const body = last?.bodyJson as { message?: { blocks?: { text?: { content?: string } }[] }; messages?: { content?: string }[] };
  const userText = body.message?.blocks?.[0]?.text?.content ?? body.messages?.[0]?.content ?? '';
  return simulatedReply({ userText, turn: 1, markerStyle: last?.path === chatPath ? 'e3a3' : 'none' }).text;
}

function withRule<T>(rule: FaultRule, run: () => Promise<T>): Promise<T> {
  return withFaultRule(proxy, rule, run);
}

/** Connect body with `inserted` placed right after the first answer-text frame. */
function insertAfterFirstText(body: Buffer, inserted: Buffer): Buffer {
  const frame = connectFrames(body).find((candidate) => body.subarray(candidate.start, candidate.end).includes('block.text'));
  assert.ok(frame, 'the stream has a text frame');
  return Buffer.concat([body.subarray(0, frame.end), inserted]);
}

test('Connect frame with an absurd length (2 GiB header, in its own read): the text so far, then error payload upstream_error, no [DONE], memory not reserved', async () => {
  const header = Buffer.from([0x00, 0x7f, 0xff, 0xff, 0xf0]);
  let cut = 0;
  const rssBefore = process.memoryUsage().rss;
  const rule = {
    path: /ChatService\/Chat$/,
    rewrite: (answer: { status: number; headers: Record<string, string>; body: Buffer }) => {
      const body = insertAfterFirstText(answer.body, Buffer.concat([header, Buffer.from('{"op":"x"}')]));
      cut = body.length - header.length - 10;
      return { ...answer, body };
    },
    splitAt: () => [cut],
  };
  const result = await withRule(rule, () => chat(current.gatewayUrl, { prompt: 'bad length', stream: true }));
  assert.equal(result.status, 200);
  assert.ok(result.text.length > 0);
  assert.ok(expectedReply().startsWith(result.text));
  assert.equal(result.streamError?.code, 'upstream_error');
  assert.equal(result.done, false);
  assert.ok(process.memoryUsage().rss - rssBefore < 256 * 1024 * 1024, 'no buffer of the claimed size');
});

test('truncated Connect frame (scenario malformed-frame): the text so far, then error payload upstream_error, no [DONE]', async () => {
  const result = await chat(current.gatewayUrl, { prompt: 'truncate [[sim:malformed-frame]]', stream: true });
  assert.equal(result.status, 200);
  assert.ok(result.text.length > 0);
  assert.ok(expectedReply().startsWith(result.text));
  assert.equal(result.streamError?.code, 'upstream_error');
  assert.equal(result.done, false);
});

test('non-JSON Connect frame (scenario non-json-frame): error payload upstream_error, no [DONE]', async () => {
  const result = await chat(current.gatewayUrl, { prompt: 'garbage [[sim:non-json-frame]]', stream: true });
  assert.equal(result.status, 200);
  assert.equal(result.streamError?.code, 'upstream_error');
  assert.equal(result.done, false);
});

test('unknown op and container (scenario unknown-op): ignored, the full answer and [DONE], drift logged once (issue 10)', async () => {
  const result = await chat(current.gatewayUrl, { prompt: 'drift [[sim:unknown-op]]', stream: true });
  assert.equal(result.status, 200);
  assert.equal(result.text, expectedReply());
  assert.equal(result.done, true);
  assert.match(current.logs(), /does not know/);
});

test('legacy non-JSON data line (scenario non-json-frame: two pieces, garbage, all_done): the line is skipped, the text so far and [DONE] (§2.5)', async () => {
  const result = await chat(legacy.gatewayUrl, { prompt: 'garbage [[sim:non-json-frame]]', stream: true });
  assert.equal(result.status, 200);
  assert.ok(result.text.length > 0);
  assert.ok(expectedReply().startsWith(result.text));
  assert.equal(result.streamError, undefined);
  assert.equal(result.done, true);
});

test('malformed legacy SSE lines (no colon, broken JSON, unknown event, bare comments, empty data, retry/id fields, CRLF): skipped, the full answer and [DONE]', async () => {
  const junk = Buffer.from(
    'garbage line without a colon\n\ndata: {not json\n\nevent: mystery\ndata: {"event":"mystery_event","x":1}\n\n: comment only\n\ndata:\n\nretry: 10\nid: 5\n\ndata: {"event":"ping"}\r\n\r\n',
  );
  const result = await withRule(
    {
      path: legacyStreamPath,
      rewrite: (answer) => {
        const cut = answer.body.indexOf('\n\n', answer.body.indexOf('"cmpl"')) + 2;
        return { ...answer, body: Buffer.concat([answer.body.subarray(0, cut), junk, answer.body.subarray(cut)]) };
      },
    },
    () => chat(legacy.gatewayUrl, { prompt: 'junk lines', stream: true }),
  );
  assert.equal(result.status, 200);
  assert.equal(result.text, expectedReply());
  assert.equal(result.done, true);
});

for (const [name, stack] of [['current', () => current], ['legacy', () => legacy]] as const) {
  test(`${name} dialect, scenario split-frames (1–7 byte writes): the text equals the simulator's reply exactly`, async () => {
    for (const stream of [true, false]) {
      const result = await chat(stack().gatewayUrl, { prompt: `split 分割 🌏 [[sim:split-frames]] ${stream}`, stream });
      assert.equal(result.status, 200);
      assert.equal(result.text, expectedReply(), `stream=${stream}`);
    }
  });

  test(`${name} dialect: every UTF-8 character split at each of its inner byte offsets (1, 2, 3) across reads; text exact`, async () => {
    for (const position of [1, 2, 3]) {
      const result = await withRule({ path: name === 'current' ? /ChatService\/Chat$/ : legacyStreamPath, splitAt: (body) => offsetsInsideCharacters(body, position), pauseMs: 1 }, () =>
        chat(stack().gatewayUrl, { prompt: `offset ${position}: 你好 👋🏽 ünïcödé`, stream: true }),
      );
      assert.equal(result.status, 200);
      assert.equal(result.text, expectedReply(), `split at inner offset ${position}`);
      assert.equal(result.done, true);
    }
  });

  test(`${name} dialect: the whole stream delivered one byte per write; text exact`, async () => {
    const result = await withRule({ path: name === 'current' ? /ChatService\/Chat$/ : legacyStreamPath, splitAt: (body) => Array.from({ length: body.length - 1 }, (_unused, index) => index + 1), pauseMs: 0 }, () =>
      chat(stack().gatewayUrl, { prompt: 'byte by byte 字节 🧩', stream: true }),
    );
    assert.equal(result.status, 200);
    assert.equal(result.text, expectedReply());
    assert.equal(result.done, true);
  });
}
