// Kimi drifting under a running gateway (protocol spec §3.2, §3.6, §3.12): a renamed op, event or chat id, an HTML
// 404 where the Chat RPC was, Connect frames under another content type. Through the real gateway, the simulator and
// the fault proxy on loopback: never a short success, and every error names what changed without quoting raw bytes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startSimulator, type Simulator } from '../../../simulator/simulator.ts';
import type { ScenarioName } from '../../../simulator/scenarios.ts';
import { startStack, type Stack } from '../../../test/support/stack.ts';
import { chat, waitUntil } from '../../../test/support/gateway-client.ts';
import { connectFrames, startFaultProxy, withFaultRule, type FaultProxy, type FaultRule, type UpstreamAnswer } from '../../../test/support/fault-proxy.ts';

const chatRpc = /ChatService\/Chat$/;
let simulator: Simulator;
let proxy: FaultProxy;
let stack: Stack;

before(async () => {
  simulator = await startSimulator({ port: 0, chunkDelayMs: 1 });
  proxy = await startFaultProxy(simulator.url);
  stack = await startStack({ serverPool: true, existingSimulator: simulator, env: { KIMI_BASE_URL: proxy.url, KIMI_DIALECT: 'current', CHAT_RETENTION_SECONDS: '0' } });
});
after(async () => {
  await stack?.close();
  await proxy?.close();
  await simulator?.close();
});

function withRule<T>(rule: FaultRule, run: () => Promise<T>): Promise<T> {
  return withFaultRule(proxy, rule, run);
}

async function withScenario<T>(scenario: ScenarioName, run: () => Promise<T>): Promise<T> {
  simulator.setScenario(scenario, { userId: stack.accounts[0]!.userId });
  try {
    return await run();
  } finally {
    simulator.setScenario('normal', { userId: stack.accounts[0]!.userId });
  }
}

/** Rewrites every data frame's JSON of a Connect answer. */
function rewriteFrames(change: (frame: Record<string, unknown>) => Record<string, unknown>): (answer: UpstreamAnswer) => UpstreamAnswer {
  return (answer) => {
    const out: Buffer[] = [];
    for (const frame of connectFrames(answer.body)) {
      const raw = answer.body.subarray(frame.start + 5, frame.end).toString('utf8');
      const json = frame.flags === 0 && raw ? change(JSON.parse(raw)) : raw ? JSON.parse(raw) : {};
      const payload = Buffer.from(JSON.stringify(json));
      const header = Buffer.alloc(5);
      header[0] = frame.flags;
      header.writeUInt32BE(payload.length, 1);
      out.push(header, payload);
    }
    return { ...answer, body: Buffer.concat(out) };
  };
}

async function unknownUpstream(): Promise<Record<string, number>> {
  const response = await request(`${stack.gatewayUrl}/v1/status`);
  return ((await response.body.json()) as { unknownUpstream: Record<string, number> }).unknownUpstream;
}

test('every append renamed to op "patch": never a short 200; the error names the op and the op is counted (§3.6)', async () => {
  const rule = { path: chatRpc, rewrite: rewriteFrames((frame) => (frame.op === 'append' ? { ...frame, op: 'patch' } : frame)) };
  const message = 'Kimi sent answer text in an unknown op "patch" (§3.6); the gateway needs an update — run doctor.';
  const plain = await withRule(rule, () => chat(stack.gatewayUrl, { prompt: 'renamed op' }));
  assert.equal(plain.status, 502);
  assert.equal(plain.json.error.code, 'upstream_error');
  assert.equal(plain.json.error.message, message);
  const streamed = await withRule(rule, () => chat(stack.gatewayUrl, { prompt: 'renamed op', stream: true }));
  assert.equal(streamed.status, 200);
  assert.equal(streamed.streamError?.message, message);
  assert.equal(streamed.done, false);
  assert.ok(!streamed.chunks.some((chunk) => chunk.choices?.[0]?.finish_reason), 'no finish_reason after text was dropped');
  assert.ok((await unknownUpstream())['op:patch']! >= 2);
});

test('an unknown op without text (the unknown-op scenario) is still counted and skipped: the whole answer arrives (§3.6)', async () => {
  const result = await withScenario('unknown-op', () => chat(stack.gatewayUrl, { prompt: 'unknown op' }));
  assert.equal(result.status, 200);
  assert.match(result.text, /^Simulated reply to: "unknown op"/);
  assert.equal(result.json.choices[0].finish_reason, 'stop');
  const counted = await unknownUpstream();
  assert.ok(counted['op:merge']! >= 1 && counted['event:widget']! >= 1);
});

test('chat.id renamed to chatId: the answer keeps the chat id, the drift is counted, the temporary chat is deleted (§3.6, §10.3)', async () => {
  const userId = stack.accounts[0]!.userId;
  const result = await withScenario('drift-renamed-field', () => chat(stack.gatewayUrl, { prompt: 'renamed field' }));
  assert.equal(result.status, 200);
  const upstream = simulator.chats(userId).find((candidate) => candidate.name.includes('renamed field'));
  assert.ok(upstream, 'the simulator has the chat');
  assert.equal(result.json.id, upstream.id, 'the response id is the Kimi chat id, not a made-up chatcmpl- id');
  assert.ok((await unknownUpstream())['field:chat.chatId']! >= 1);
  assert.ok(await waitUntil(() => simulator.chats(userId).find((candidate) => candidate.id === upstream.id)?.deleted === true, 5_000), 'deleted with CHAT_RETENTION_SECONDS=0');
});

test('text frames renamed to block.content: the empty-answer error names the unknown field (§3.6)', async () => {
  const result = await withScenario('drift-renamed-event', () => chat(stack.gatewayUrl, { prompt: 'renamed event' }));
  assert.equal(result.status, 502);
  assert.equal(
    result.json.error.message,
    'Kimi returned an empty answer (no text, no reasoning, no error); it sent unknown field:block.content frames instead (§3.6): the gateway needs an update — run doctor.',
  );
});

test('an HTML 404 from a CDN where the Chat RPC was names the operation and path and suggests doctor (§3.12)', async () => {
  const page = Buffer.from('<html><head><title>404 Not Found</title></head><body>nginx</body></html>');
  const rule = { path: chatRpc, rewrite: () => ({ status: 404, headers: { 'content-type': 'text/html' }, body: page }) };
  for (const stream of [false, true]) {
    const result = await withRule(rule, () => chat(stack.gatewayUrl, { prompt: 'moved', stream }));
    assert.equal(result.status, 502);
    assert.equal(
      result.json?.error?.message ?? result.streamError?.message,
      'Kimi answered HTTP 404 for chat at /apiv2/kimi.gateway.chat.v1.ChatService/Chat: an HTML page ("404 Not Found nginx"); the endpoint may have moved; run doctor',
    );
  }
});

test('Connect frames under another content type are measured, never quoted into the client error (§3.2)', async () => {
  let size = 0;
  const rule = {
    path: chatRpc,
    rewrite: (answer: UpstreamAnswer) => {
      size = answer.body.length;
      return { ...answer, headers: { ...answer.headers, 'content-type': 'application/connect+proto' } };
    },
  };
  const result = await withRule(rule, () => chat(stack.gatewayUrl, { prompt: 'content type' }));
  assert.equal(result.status, 502);
  const message: string = result.json.error.message;
  assert.equal(message, `Kimi answered the chat with application/connect+proto instead of a Connect stream: a Connect-framed body of ${size} bytes.`);
  assert.doesNotMatch(message, /\u0000|heartbeat|"chat"/);
});
