/**
 * @module test/support/gateway-client
 * Raw HTTP helpers for tests that judge the gateway on the wire: one chat completion (streamed or not)
 * read to the end with the SSE payloads, the [DONE] marker and any in-stream error kept apart, and a
 * polling wait for conditions that settle asynchronously.
 */
import { request } from 'undici';

export interface ChatResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Non-stream: the parsed JSON body (completion or error envelope). */
  json?: any;
  /** Stream: every `data:` payload except [DONE], parsed. */
  chunks: any[];
  /** Stream: the answer text joined from the deltas; non-stream: message.content. */
  text: string;
  /** Stream: whether `data: [DONE]` arrived. */
  done: boolean;
  /** Stream: the error object of an in-stream error payload, if one arrived. */
  streamError?: { message: string; type: string; code: string };
  elapsedMs: number;
}

export interface ChatInput {
  prompt?: string;
  messages?: unknown[];
  stream?: boolean;
  model?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  extra?: Record<string, unknown>;
}

export async function chat(gatewayUrl: string, input: ChatInput): Promise<ChatResult> {
  const started = Date.now();
  const body = {
    model: input.model ?? 'kimi',
    stream: input.stream ?? false,
    messages: input.messages ?? [{ role: 'user', content: input.prompt ?? 'Hello' }],
    ...input.extra,
  };
  const response = await request(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...input.headers },
    body: JSON.stringify(body),
    signal: input.signal,
  });
  const raw = await response.body.text();
  const result: ChatResult = { status: response.statusCode, headers: response.headers, chunks: [], text: '', done: false, elapsedMs: 0 };
  const isSse = String(response.headers['content-type'] ?? '').startsWith('text/event-stream');
  if (isSse) Object.assign(result, parseSse(raw));
  else {
    result.json = raw ? JSON.parse(raw) : undefined;
    result.text = result.json?.choices?.[0]?.message?.content ?? '';
  }
  result.elapsedMs = Date.now() - started;
  return result;
}

/** Splits an SSE body into payloads; keeps [DONE] and error payloads apart from content. */
export function parseSse(raw: string): Pick<ChatResult, 'chunks' | 'text' | 'done' | 'streamError'> {
  const chunks: any[] = [];
  let text = '';
  let done = false;
  let streamError: ChatResult['streamError'];
  for (const block of raw.split('\n\n')) {
    for (const line of block.split('\n')) {
      if (!line.startsWith('data: ')) continue;
      const data = line.slice(6);
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const payload = JSON.parse(data);
      if (payload.error) streamError = payload.error;
      else {
        chunks.push(payload);
        text += payload.choices?.[0]?.delta?.content ?? '';
      }
    }
  }
  return { chunks, text, done, streamError };
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it became true. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
