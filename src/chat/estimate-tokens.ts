/**
 * @module chat/estimate-tokens
 * Token estimates for `usage`. Kimi's web API reports no token counts and no Kimi tokenizer is
 * public, so we count with o200k (dependencies.md: 0.69 tokens per Han character) and label the
 * result as an estimate. The encoder loads lazily (about 200 ms) on first use.
 */

type CountTokens = (text: string) => number;
let loading: Promise<CountTokens> | undefined;

function loadCounter(): Promise<CountTokens> {
  loading ??= import('gpt-tokenizer/encoding/o200k_base').then((module) => (text: string) =>
    module.countTokens(text, { allowedSpecial: 'all' } as never),
  );
  return loading;
}

export async function estimateTokens(text: string): Promise<number> {
  if (!text) return 0;
  const countTokens = await loadCounter();
  return countTokens(text);
}

/** Starts loading the encoder in the background so the first request does not pay for it. */
export function preloadTokenizer(): void {
  void loadCounter().catch(() => undefined);
}
