import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holdAbort } from './held-abort.ts';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a client abort waits until the chat is known (§10.3), then passes through with its reason', async () => {
  const client = new AbortController();
  const held = holdAbort(client.signal, 5_000);
  client.abort(new Error('client left'));
  await tick(20);
  assert.equal(held.signal.aborted, false, 'held while the chat id is unknown');
  held.release();
  assert.equal(held.signal.aborted, true);
  assert.equal((held.signal.reason as Error).message, 'client left');
  held.dispose();
});

test('the hold is bounded: without the chat id the abort goes through after holdMs', async () => {
  const client = new AbortController();
  const held = holdAbort(client.signal, 50);
  client.abort();
  await tick(20);
  assert.equal(held.signal.aborted, false);
  await tick(80);
  assert.equal(held.signal.aborted, true);
  held.dispose();
});

test('once released (or for a chat known from the start), an abort passes at once; an abort before the call is immediate', () => {
  const client = new AbortController();
  const held = holdAbort(client.signal, 5_000);
  held.release();
  client.abort();
  assert.equal(held.signal.aborted, true);
  const known = new AbortController();
  const continued = holdAbort(known.signal, 5_000, true);
  known.abort();
  assert.equal(continued.signal.aborted, true);
  const gone = new AbortController();
  gone.abort();
  assert.equal(holdAbort(gone.signal, 5_000).signal.aborted, true, 'nothing sent yet: nothing to wait for');
});
