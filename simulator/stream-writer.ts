/**
 * @module simulator/stream-writer
 * Plays a planned response (status, headers, byte steps, stalls, resets) onto a socket. Both dialects and
 * every fault scenario are expressed as plans, so timing, write splitting and abort handling live only here.
 */
import type { ServerResponse } from 'node:http';
import { sleep, waitForAbort } from './http-io.ts';

export type StreamStep =
  /** Bytes to send; `splitAt` sends them as two writes with a short pause (splits a frame or a UTF-8 char). */
  | { type: 'write'; bytes: Buffer; splitAt?: number }
  /** Send nothing more until the client disconnects or the simulator closes. */
  | { type: 'stall' }
  /** Send `bytes` (a heartbeat, a ping) every `everyMs` and nothing else, until the client disconnects or the simulator closes. */
  | { type: 'keep-alive'; bytes: Buffer; everyMs: number }
  /** Destroy the socket (a connection reset as the client sees it). */
  | { type: 'reset' };

export interface StreamPlan {
  status: number;
  headers: Record<string, string>;
  steps: StreamStep[];
  /** Pause between write steps. */
  delayMs: number;
  /** Send every write step in 1–7 byte pieces with tiny pauses (scenario split-frames). */
  splitWrites: boolean;
}

/** How often the keep-alive scenarios send one (Kimi's come every few seconds; tests want them sooner). */
export const KEEP_ALIVE_EVERY_MS = 100;

export type StreamOutcome = 'completed' | 'aborted' | 'stalled' | 'reset';

const SPLIT_PAUSE_MS = 2;
const RESET_AFTER_DATA_MS = 20;

/** Writes the plan; headers go out with the first byte, so a plan that stalls first never sends headers. */
export async function runStream(res: ServerResponse, plan: StreamPlan, signal: AbortSignal): Promise<StreamOutcome> {
  let wroteAny = false;
  const pieceCounter = { value: 0 };
  for (const step of plan.steps) {
    if (signal.aborted) return 'aborted';
    if (step.type === 'stall') {
      await waitForAbort(signal);
      return 'stalled';
    }
    if (step.type === 'keep-alive') {
      if (!wroteAny) res.writeHead(plan.status, plan.headers);
      wroteAny = true;
      while (await writeChunk(res, step.bytes, signal)) if (!(await sleep(step.everyMs, signal))) break;
      return 'stalled';
    }
    if (step.type === 'reset') {
      // A reset mid-stream comes after the bytes before it were delivered. Destroying in the same tick lets the
      // client's kernel discard data it had not read yet, which would turn this into a reset before the first byte.
      if (wroteAny && !(await sleep(RESET_AFTER_DATA_MS, signal))) return 'aborted';
      res.socket?.destroy();
      return 'reset';
    }
    if (wroteAny && plan.delayMs > 0 && !(await sleep(plan.delayMs, signal))) return 'aborted';
    if (!wroteAny) {
      res.writeHead(plan.status, plan.headers);
      wroteAny = true;
    }
    const written = plan.splitWrites
      ? await writeInPieces(res, step.bytes, signal, pieceCounter)
      : await writeStep(res, step, signal);
    if (!written) return 'aborted';
  }
  if (!wroteAny) res.writeHead(plan.status, plan.headers);
  res.end();
  return 'completed';
}

async function writeStep(res: ServerResponse, step: { bytes: Buffer; splitAt?: number }, signal: AbortSignal): Promise<boolean> {
  const { bytes, splitAt } = step;
  if (splitAt === undefined || splitAt <= 0 || splitAt >= bytes.length) return writeChunk(res, bytes, signal);
  if (!(await writeChunk(res, bytes.subarray(0, splitAt), signal))) return false;
  if (!(await sleep(SPLIT_PAUSE_MS, signal))) return false;
  return writeChunk(res, bytes.subarray(splitAt), signal);
}

async function writeInPieces(res: ServerResponse, bytes: Buffer, signal: AbortSignal, counter: { value: number }): Promise<boolean> {
  let offset = 0;
  while (offset < bytes.length) {
    const size = (counter.value % 7) + 1;
    counter.value += 1;
    if (!(await writeChunk(res, bytes.subarray(offset, offset + size), signal))) return false;
    offset += size;
    // A real pause every fourth piece makes separate TCP reads likely without making the stream slow.
    if (!(await sleep(counter.value % 4 === 0 ? 1 : 0, signal))) return false;
  }
  return true;
}

function writeChunk(res: ServerResponse, chunk: Buffer, signal: AbortSignal): Promise<boolean> {
  if (res.destroyed || signal.aborted) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = (ok: boolean): void => {
      res.off('drain', onDrain);
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onDrain = (): void => finish(true);
    const onAbort = (): void => finish(false);
    res.once('drain', onDrain);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Index just inside the first multi-byte UTF-8 character of `bytes` (a split point that breaks it), or undefined. */
export function utf8SplitPoint(bytes: Buffer): number | undefined {
  const index = bytes.findIndex((byte) => byte >= 0xc0);
  return index >= 0 ? index + 1 : undefined;
}
