// Fault suite (issue 7): transport faults. A connection reset before the first byte is retried on another
// account; after it the stream ends with an error payload and no [DONE] (contract "Error codes"). Upstream
// stalls meet separate timeouts: UPSTREAM_FIRST_BYTE_TIMEOUT_MS before the first byte, UPSTREAM_IDLE_TIMEOUT_MS
// between chunks, and a stall that would last forever still ends and releases the upstream stream.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { simulatedReply, startSimulator, type Simulator } from '../../simulator/simulator.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { chat, waitUntil } from '../support/gateway-client.ts';

const chatPath = '/apiv2/kimi.gateway.chat.v1.ChatService/Chat';
const firstByteTimeoutMs = 400;
const idleTimeoutMs = 1200;
let simulator: Simulator;

before(async () => {
  simulator = await startSimulator();
});
after(() => simulator?.close());

async function withStack<T>(options: Parameters<typeof startStack>[0], run: (stack: Stack) => Promise<T>): Promise<T> {
  const stack = await startStack({ serverPool: true, existingSimulator: simulator, ...options });
  try {
    return await run(stack);
  } finally {
    await stack.close();
  }
}

const timeouts = { UPSTREAM_FIRST_BYTE_TIMEOUT_MS: String(firstByteTimeoutMs), UPSTREAM_IDLE_TIMEOUT_MS: String(idleTimeoutMs) };

/** A stream that went quiet (or only kept alive) after some text: that text, then an upstream_timeout payload once the idle timeout passed, no [DONE]. */
function assertCutByIdleTimeout(result: Awaited<ReturnType<typeof chat>>): void {
    assert.equal(result.status, 200);
    assert.ok(result.text.length > 0);
    assert.equal(result.streamError?.code, 'upstream_timeout');
    assert.equal(result.done, false);
    assert.ok(result.elapsedMs >= idleTimeoutMs - 50 && result.elapsedMs < idleTimeoutMs + 2000, `took ${result.elapsedMs} ms`);
}

test('connection reset before the first byte: retried on the other account, the client gets the full answer', async () => {
  await withStack({ accounts: 2 }, async (stack) => {
    const chatsBy = () => simulator.requests.filter((request) => request.path === chatPath).map((request) => request.userId);
    assert.equal((await chat(stack.gatewayUrl, { prompt: 'warm up' })).status, 200);
    const usedFirst = chatsBy().at(-1);
    // The pool prefers the least recently used account, so the other one is asked next.
    const other = stack.accounts.find((account) => account.userId !== usedFirst)!;
    simulator.setScenario('reset-before-first-byte', { userId: other.userId, times: 1 });
    const before = chatsBy().length;
    const result = await chat(stack.gatewayUrl, { prompt: 'survive a reset', stream: true });
    assert.equal(result.status, 200);
    assert.equal(result.done, true);
    assert.equal(result.streamError, undefined);
    assert.equal(result.text, simulatedReply({ userText: 'survive a reset', turn: 1 }).text);
    assert.deepEqual(chatsBy().slice(before), [other.userId, usedFirst], 'reset account first, then the other');
  });
});

test('connection reset after the first byte: the text so far, then an error payload (upstream_error) and no [DONE]', async () => {
  await withStack({}, async (stack) => {
    const result = await chat(stack.gatewayUrl, { prompt: 'cut me off [[sim:reset-after-first-byte]]', stream: true });
    assert.equal(result.status, 200);
    assert.ok(result.text.length > 0, 'some text arrived before the reset');
    assert.ok(simulatedReply({ userText: 'cut me off [[sim:reset-after-first-byte]]', turn: 1 }).text.startsWith(result.text));
    assert.equal(result.streamError?.code, 'upstream_error');
    assert.equal(result.done, false);
  });
});

test('connection reset after the first byte, non-stream: 502 upstream_error, never a truncated success', async () => {
  await withStack({}, async (stack) => {
    const result = await chat(stack.gatewayUrl, { prompt: 'cut me off [[sim:reset-after-first-byte]]' });
    assert.equal(result.status, 502);
    assert.equal(result.json.error.code, 'upstream_error');
  });
});

test(`upstream stalls before the first byte: 504 upstream_timeout after UPSTREAM_FIRST_BYTE_TIMEOUT_MS (${firstByteTimeoutMs} ms), not the idle timeout`, async () => {
  await withStack({ env: timeouts }, async (stack) => {
    assert.equal((await chat(stack.gatewayUrl, { prompt: 'warm up' })).status, 200);
    const result = await chat(stack.gatewayUrl, { prompt: 'wait [[sim:stall-before-first-byte]]', stream: true });
    assert.equal(result.status, 504);
    assert.equal(result.json.error.code, 'upstream_timeout');
    assert.ok(result.elapsedMs >= firstByteTimeoutMs - 50 && result.elapsedMs < idleTimeoutMs, `took ${result.elapsedMs} ms`);
  });
});

test(`upstream stalls between chunks: the text so far, then an upstream_timeout error payload after UPSTREAM_IDLE_TIMEOUT_MS (${idleTimeoutMs} ms), no [DONE]`, async () => {
  await withStack({ env: timeouts }, async (stack) => {
    const result = await chat(stack.gatewayUrl, { prompt: 'pause [[sim:stall-between-chunks]]', stream: true });
    assertCutByIdleTimeout(result);
  });
});

test('upstream stalls forever mid-answer (non-stream): 504 upstream_timeout, the upstream stream is aborted and nothing stays open', async () => {
  await withStack({ env: timeouts }, async (stack) => {
    const result = await chat(stack.gatewayUrl, { prompt: 'forever [[sim:stall-between-chunks]]' });
    assert.equal(result.status, 504);
    assert.equal(result.json.error.code, 'upstream_timeout');
    assert.ok(await waitUntil(() => simulator.activeStreams(stack.accounts[0].userId) === 0, 500), 'the stalled upstream stream was closed');
    assert.ok(await waitUntil(() => stack.gateway.app.openRequests === 0, 500));
  });
});

// Keep-alives reset the transport's idle timer but carry no answer (spec §3.6 heartbeats, legacy pings): an upstream
// that sends only them must still meet the two timeouts, counted from the last events.
test(`upstream sends only heartbeats after opening the chat (stream): 504 upstream_timeout after UPSTREAM_IDLE_TIMEOUT_MS (${idleTimeoutMs} ms), the upstream stream closed`, async () => {
  await withStack({ env: timeouts }, async (stack) => {
    const result = await chat(stack.gatewayUrl, { prompt: 'beat [[sim:heartbeats-only]]', stream: true, signal: AbortSignal.timeout(8_000) });
    assert.equal(result.status, 504);
    assert.equal(result.json.error.code, 'upstream_timeout');
    assert.match(result.json.error.message, /keep-alives/);
    assert.ok(result.elapsedMs >= idleTimeoutMs - 50 && result.elapsedMs < idleTimeoutMs + 2000, `took ${result.elapsedMs} ms`);
    assert.ok(await waitUntil(() => simulator.activeStreams(stack.accounts[0].userId) === 0, 500), 'the upstream stream was closed');
  });
});

test(`upstream sends text, then only heartbeats (stream): the text so far, then an upstream_timeout payload after UPSTREAM_IDLE_TIMEOUT_MS, no [DONE]`, async () => {
  await withStack({ env: timeouts }, async (stack) => {
    const result = await chat(stack.gatewayUrl, { prompt: 'then beat [[sim:text-then-heartbeats]]', stream: true, signal: AbortSignal.timeout(8_000) });
    assertCutByIdleTimeout(result);
  });
});

test('legacy dialect, text then only keep-alive comments and pings (non-stream): 504 upstream_timeout, never a hung request', async () => {
  await withStack({ env: timeouts, tokenKind: 'legacy' }, async (stack) => {
    const result = await chat(stack.gatewayUrl, { prompt: 'legacy beat [[sim:text-then-heartbeats]]', signal: AbortSignal.timeout(8_000) });
    assert.equal(result.status, 504);
    assert.equal(result.json.error.code, 'upstream_timeout');
    assert.ok(result.elapsedMs < idleTimeoutMs + 2000, `took ${result.elapsedMs} ms`);
    assert.ok(await waitUntil(() => stack.gateway.app.openRequests === 0, 500));
  });
});

test('a continued turn cut by keep-alives alone (Kimi kept an interrupted answer the gateway never heard of): the next turn continues the chat (§3.8)', async () => {
  await withStack({ env: { CHAT_RETENTION_SECONDS: '600', UPSTREAM_IDLE_TIMEOUT_MS: '800', UPSTREAM_FIRST_BYTE_TIMEOUT_MS: '800' } }, async (stack) => {
    const first = await chat(stack.gatewayUrl, { prompt: 'one' });
    assert.equal(first.status, 200);
    const conversationId = first.json.id as string;
    const cut = await chat(stack.gatewayUrl, { prompt: 'two [[sim:heartbeats-only]]', extra: { conversation_id: conversationId }, signal: AbortSignal.timeout(8_000) });
    assert.equal(cut.status, 504);
    const next = await chat(stack.gatewayUrl, { prompt: 'three', extra: { conversation_id: conversationId } });
    assert.equal(next.status, 200, `the chat is still usable: ${JSON.stringify(next.json)}`);
    assert.equal(next.text, simulatedReply({ userText: 'three', turn: 3 }).text, 'continued after the interrupted turn');
  });
});
