/**
 * @module bench/lib/clients
 * The benchmark's clients, written with undici Pools: one exchange against a target, timed at the points
 * the targets are judged on (headers, first body byte, first answer text, each text event, end), and a
 * closed-loop load generator with bounded concurrency.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { answerTextOf, chatRequestEnvelope, FrameDecoder } from './connect-frames.ts';

export const chatPath = '/apiv2/kimi.gateway.chat.v1.ChatService/Chat';

/** `connect`: the simulator's own Chat RPC (direct and through the pass-through proxy); `openai`: /v1/chat/completions. */
export interface Target {
  name: string;
  url: string;
  protocol: 'connect' | 'openai';
  /** Access tokens for `connect` targets, used round-robin. */
  accessTokens?: string[];
}

export interface Exchange {
  status: number;
  startedAt: number;
  headersAt: number;
  firstByteAt: number;
  firstTextAt: number;
  endAt: number;
  textEvents: number;
  text: string;
  /** Arrival time of each text event and the answer length (UTF-16 units) after it (only when asked for). */
  textTimes: number[];
  textLengths: number[];
  /** Connect frames received (connect targets only): the upstream events a proxy has to handle. */
  frames: number;
}

export interface ExchangeOptions {
  prompt: string;
  stream: boolean;
  recordTimes?: boolean;
  /** Called once, when the first answer text arrives (B5 counts open streams with it). */
  onFirstText?: () => void;
}

let tokenTurn = 0;

export function createClientPool(target: Target, connections: number): Pool {
  return new Pool(target.url, { connections, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 60_000, bodyTimeout: 120_000 });
}

function requestFor(target: Target, options: ExchangeOptions): { path: string; headers: Record<string, string>; body: Buffer | string } {
  if (target.protocol === 'connect') {
    const tokens = target.accessTokens ?? [];
    return {
      path: chatPath,
      headers: { authorization: `Bearer ${tokens[tokenTurn++ % tokens.length]}`, 'content-type': 'application/connect+json', 'connect-protocol-version': '1' },
      body: chatRequestEnvelope(options.prompt),
    };
  }
  return {
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'kimi', stream: options.stream, messages: [{ role: 'user', content: options.prompt }] }),
  };
}

export async function exchange(pool: Pool, target: Target, options: ExchangeOptions): Promise<Exchange> {
  const startedAt = performance.now();
  const { path, headers, body } = requestFor(target, options);
  const response = await pool.request({ method: 'POST', path, headers, body });
  const result: Exchange = { status: response.statusCode, startedAt, headersAt: performance.now(), firstByteAt: 0, firstTextAt: 0, endAt: 0, textEvents: 0, text: '', textTimes: [], textLengths: [], frames: 0 };
  const onText = (piece: string, at: number) => {
    if (result.textEvents === 0) {
      result.firstTextAt = at;
      options.onFirstText?.();
    }
    result.textEvents += 1;
    result.text += piece;
    if (options.recordTimes) {
      result.textTimes.push(at);
      result.textLengths.push(result.text.length);
    }
  };
  if (target.protocol === 'connect') await readConnect(response.body, result, onText);
  else if (options.stream) await readSse(response.body, result, onText);
  else await readJson(response.body, result, onText);
  result.endAt = performance.now();
  return result;
}

type Body = AsyncIterable<unknown>;

async function readConnect(body: Body, result: Exchange, onText: (piece: string, at: number) => void): Promise<void> {
  const decoder = new FrameDecoder();
  for await (const chunk of body) {
    const at = performance.now();
    if (result.firstByteAt === 0) result.firstByteAt = at;
    for (const frame of decoder.push(chunk as Buffer)) {
      result.frames += 1;
      if (frame.flags !== 0) continue;
      const piece = answerTextOf(JSON.parse(frame.payload.toString('utf8')));
      if (piece !== undefined) onText(piece, at);
    }
  }
}

async function readSse(body: Body, result: Exchange, onText: (piece: string, at: number) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of body) {
    const at = performance.now();
    if (result.firstByteAt === 0) result.firstByteAt = at;
    pending += decoder.decode(chunk as Buffer, { stream: true });
    let boundary = pending.indexOf('\n\n');
    while (boundary >= 0) {
      const event = pending.slice(0, boundary);
      pending = pending.slice(boundary + 2);
      boundary = pending.indexOf('\n\n');
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        const content = JSON.parse(line.slice(6))?.choices?.[0]?.delta?.content;
        if (typeof content === 'string' && content !== '') onText(content, at);
      }
    }
  }
}

async function readJson(body: Body, result: Exchange, onText: (piece: string, at: number) => void): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    if (result.firstByteAt === 0) result.firstByteAt = performance.now();
    chunks.push(chunk as Buffer);
  }
  const content = JSON.parse(Buffer.concat(chunks).toString('utf8'))?.choices?.[0]?.message?.content;
  if (typeof content === 'string') onText(content, performance.now());
}

export interface LoadResult {
  completed: number;
  failed: number;
  firstFailure?: string;
  elapsedMs: number;
  latenciesMs: number[];
  requestsPerSecond: number;
}

/** Closed loop: `concurrency` workers each run `task` back to back until `durationMs` has passed. */
export async function closedLoop(concurrency: number, durationMs: number, task: () => Promise<Exchange>): Promise<LoadResult> {
  const started = performance.now();
  const deadline = started + durationMs;
  const latenciesMs: number[] = [];
  let failed = 0;
  let firstFailure: string | undefined;
  const worker = async () => {
    while (performance.now() < deadline) {
      try {
        const result = await task();
        if (result.status !== 200 || result.textEvents === 0) throw new Error(`HTTP ${result.status}, ${result.textEvents} text events`);
        latenciesMs.push(result.endAt - result.startedAt);
      } catch (error) {
        failed += 1;
        firstFailure ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - started;
  return { completed: latenciesMs.length, failed, firstFailure, elapsedMs, latenciesMs, requestsPerSecond: (latenciesMs.length / elapsedMs) * 1000 };
}
