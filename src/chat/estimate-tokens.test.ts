import assert from 'node:assert/strict';
import { test } from 'node:test';
import { estimateTokens } from './estimate-tokens.ts';

test('short text is counted exactly with o200k; empty text is zero', async () => {
  assert.equal(await estimateTokens(''), 0);
  assert.equal(await estimateTokens('hello world'), 2);
});

test('long text is counted in slices: close to the whole count, and a long unbroken run does not block for long', async () => {
  const prose = 'The quick brown fox jumps over the lazy dog. 你好，世界。 '.repeat(400);
  const sliced = await estimateTokens(prose);
  const whole = await estimateTokens(prose.slice(0, 1999));
  assert.ok(sliced > whole * 9, 'a long text counts roughly in proportion');
  const unbroken = 'x'.repeat(30_000);
  const startedAt = performance.now();
  const count = await estimateTokens(unbroken);
  assert.ok(count > 0);
  // Each slice is small, and the loop yields between slices: no single turn holds the event loop.
  let longestTurnMs = 0;
  let last = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    longestTurnMs = Math.max(longestTurnMs, now - last);
    last = now;
  }, 1);
  await estimateTokens('y'.repeat(30_000));
  clearInterval(probe);
  assert.ok(longestTurnMs < 150, `longest blocked turn ${longestTurnMs.toFixed(0)} ms`);
  assert.ok(performance.now() - startedAt < 5000);
});

test('surrogate pairs are never split at a slice edge', async () => {
  const text = `${'a'.repeat(1999)}😀${'b'.repeat(3000)}`;
  assert.ok((await estimateTokens(text)) > 0);
});
