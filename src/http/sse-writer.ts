/**
 * @module http/sse-writer
 * Writes batches of events as Server-Sent Events on a raw node:http response. Headers go out only
 * with the first batch (so errors before it become real HTTP statuses); everything produced in one
 * turn of the event loop is coalesced into one write (dependencies.md: 1.7× less CPU); the reader's
 * pace is respected (backpressure); idle streams get keep-alive comments; a failure after the first
 * byte ends the stream with an error payload and no success trailer.
 */
import type { ServerResponse } from 'node:http';
import { GatewayError, isAbortError } from '../errors.ts';
import { renderError, type RenderedError } from './error-envelope.ts';

export interface SseOptions<Event> {
  response: ServerResponse;
  /** The events, in batches (a batch is encoded in one step). */
  batches: AsyncIterable<readonly Event[]>;
  /** SSE text for one event ('' when the event produces nothing on this wire format). */
  encode(event: Event): string;
  /** SSE text that reports a failure after the first byte. */
  encodeError(error: RenderedError): string;
  /** Written after a successful end, e.g. `data: [DONE]\n\n`; a function is asked then. */
  trailer: string | (() => string);
  /** Aborted when the client goes away; its reason, if a GatewayError (shutdown), is reported in-stream. */
  signal: AbortSignal;
  headers?: Record<string, string>;
  keepAliveMs?: number;
  /** Called when the status line and headers go out (time to first byte, request log fields). */
  onHeadersSent?: () => void;
  /**
   * Called with the outcome before the stream's last bytes are written: the request's log line is written when the
   * response closes, which ending the stream can trigger before writeSse returns.
   */
  onOutcome?: (outcome: SseOutcome) => void;
}

export type SseOutcome = { kind: 'completed' } | { kind: 'failed'; error: unknown } | { kind: 'client-closed' };

export function sseHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...extra,
  };
}

/**
 * Resolves once the stream has ended. Throws only when the first event fails, before any byte was
 * written, so the caller can answer with an ordinary error response.
 */
export async function writeSse<Event>(options: SseOptions<Event>): Promise<SseOutcome> {
  const { response, signal } = options;
  const iterator = options.batches[Symbol.asyncIterator]();
  const first = await iterator.next();
  try {
    response.writeHead(200, sseHeaders(options.headers));
  } catch (error) {
    // Nothing was sent, so the caller can still answer with an error; the answer's stream must not keep its account.
    await iterator.return?.().catch(() => undefined);
    throw error;
  }
  options.onHeadersSent?.();
  const writer = createCoalescingWriter(response, options.keepAliveMs ?? 15_000);
  try {
    let step = first;
    let isFirst = true;
    while (!step.done) {
      for (const event of step.value) writer.push(options.encode(event));
      if (isFirst) {
        // The status line and headers leave with the first event's text, in one write and at once.
        writer.flushNow();
        isFirst = false;
      }
      if (response.writableNeedDrain) await writer.drained(signal);
      if (signal.aborted) break;
      step = await iterator.next();
    }
    if (signal.aborted) return await endAfterAbort(options, writer, iterator);
    writer.push(typeof options.trailer === 'function' ? options.trailer() : options.trailer);
    return await endWith(options, writer, { kind: 'completed' });
  } catch (error) {
    if (signal.aborted) return await endAfterAbort(options, writer, iterator);
    writer.push(options.encodeError(renderError(error)));
    const outcome = await endWith(options, writer, { kind: 'failed', error });
    if (!isAbortError(error)) await iterator.return?.();
    return outcome;
  } finally {
    writer.stop();
  }
}

async function endAfterAbort<Event>(options: SseOptions<Event>, writer: CoalescingWriter, iterator: AsyncIterator<readonly Event[]>): Promise<SseOutcome> {
  await iterator.return?.().catch(() => undefined);
  const reason: unknown = options.signal.reason;
  if (reason instanceof GatewayError && !options.response.destroyed) {
    // Aborted by us (shutdown), not by the client: tell the client why its answer ends here.
    writer.push(options.encodeError(renderError(reason)));
    return endWith(options, writer, { kind: 'failed', error: reason });
  }
  writer.stop();
  options.onOutcome?.({ kind: 'client-closed' });
  return { kind: 'client-closed' };
}

/** Reports the outcome, then writes the last bytes and ends the response. */
async function endWith<Event>(options: SseOptions<Event>, writer: CoalescingWriter, outcome: SseOutcome): Promise<SseOutcome> {
  options.onOutcome?.(outcome);
  await writer.end();
  return outcome;
}

interface CoalescingWriter {
  push(text: string): void;
  /** Writes what is pending now; with nothing pending, sends the headers alone so the client knows the answer started. */
  flushNow(): void;
  drained(signal: AbortSignal): Promise<void>;
  end(): Promise<void>;
  stop(): void;
}

function createCoalescingWriter(response: ServerResponse, keepAliveMs: number): CoalescingWriter {
  let pending = '';
  let isScheduled = false;
  let lastWriteAt = Date.now();
  const keepAlive = setInterval(() => {
    if (Date.now() - lastWriteAt >= keepAliveMs && !pending) write(': keep-alive\n\n');
  }, Math.max(50, Math.floor(keepAliveMs / 2)));
  keepAlive.unref();

  function write(text: string): void {
    if (response.destroyed || response.writableEnded) return;
    response.write(text);
    lastWriteAt = Date.now();
  }

  function flush(): void {
    isScheduled = false;
    if (!pending) return;
    const text = pending;
    pending = '';
    write(text);
  }

  return {
    push(text) {
      if (!text) return;
      pending += text;
      if (!isScheduled) {
        isScheduled = true;
        setImmediate(flush);
      }
    },
    flushNow() {
      if (pending) flush();
      else if (!response.headersSent && !response.destroyed) response.flushHeaders();
    },
    drained(signal) {
      if (!response.writableNeedDrain || response.destroyed) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          response.off('drain', done);
          response.off('close', done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        response.on('drain', done);
        response.on('close', done);
        signal.addEventListener('abort', done);
      });
    },
    end() {
      clearInterval(keepAlive);
      const text = pending;
      pending = '';
      if (response.writableEnded || response.destroyed) return Promise.resolve();
      // The last events, the trailer and the end of the chunked body leave in one write.
      return new Promise((resolve) => (text ? response.end(text, () => resolve()) : response.end(() => resolve())));
    },
    stop() {
      clearInterval(keepAlive);
    },
  };
}
