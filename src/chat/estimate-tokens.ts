/**
 * @module chat/estimate-tokens
 * Token estimates for `usage`. Kimi's web API reports no token counts and no Kimi tokenizer is
 * public, so we count with o200k (dependencies.md: 0.69 tokens per Han character) and label the
 * result as an estimate. The encoder loads lazily (about 200 ms) on first use.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

type CountTokens = (text: string) => number;
let loading: Promise<CountTokens> | undefined;

/**
 * BPE merging is superlinear on long runs without whitespace (a 30,000-character word took 800 ms),
 * so long text is counted in slices, yielding between them; cutting a word at a slice edge changes the
 * estimate by at most a token per slice.
 */
const sliceChars = 2000;

function loadCounter(): Promise<CountTokens> {
  loading ??= import('gpt-tokenizer/encoding/o200k_base').then((module) => (text: string) =>
    module.countTokens(text, { allowedSpecial: 'all' } as never),
  );
  return loading;
}

export async function estimateTokens(text: string): Promise<number> {
  if (!text) return 0;
  const countTokens = await loadCounter();
  if (text.length <= sliceChars) return countTokens(text);
  let total = 0;
  for (let start = 0; start < text.length; start += sliceChars) {
    let end = Math.min(text.length, start + sliceChars);
    // Never split a surrogate pair.
    if (end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1])) end += 1;
    total += countTokens(text.slice(start, end));
    start = end - sliceChars;
    await yieldToEventLoop();
  }
  return total;
}

/** Starts loading the encoder in the background so the first request does not pay for it. */
export function preloadTokenizer(): void {
  void loadCounter().catch(() => undefined);
}
