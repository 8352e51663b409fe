/**
 * @module http/stream-response
 * Streams an event iterable as SSE for a route and fills in the request's log record (time to first
 * byte, the account that answered, outcome), the same way for every client API.
 */
import type { HttpContext } from './http-context.ts';
import { writeSse, type SseOptions } from './sse-writer.ts';

export interface StreamResponseOptions<Event> extends Omit<SseOptions<Event>, 'response' | 'signal' | 'onHeadersSent' | 'onOutcome'> {
  /** The account answering, known once the first event arrived. */
  accountId(): string | undefined;
}

export async function streamResponse<Event>(context: HttpContext, options: StreamResponseOptions<Event>): Promise<void> {
  await writeSse({
    ...options,
    response: context.response,
    signal: context.signal,
    // The request log line is written when the socket closes, possibly before the route returns: both fill it first.
    onHeadersSent: () => {
      context.record.firstByteAt = Date.now();
      context.record.account = options.accountId();
    },
    onOutcome: (outcome) => {
      context.record.outcome = outcome.kind;
      if (outcome.kind === 'failed') context.record.errorCode = (outcome.error as { code?: string }).code ?? 'internal_error';
    },
  });
}

/**
 * Holds the events a `finish` produces (Responses' `response.completed`, Anthropic's `message_stop`) until the stream
 * has ended, that is, until the chat service has recorded the chat and released it. A client that sends its next turn
 * on those events must not find the chat still busy (409); chat completions get the same from `[DONE]`.
 */
export function closingAtEnd<Event extends { type: string }>(encode: (event: Event) => string): { encode: (event: Event) => string; trailer: () => string } {
  let closing = '';
  return {
    encode(event) {
      const text = encode(event);
      if (event.type !== 'finish') return text;
      closing += text;
      return '';
    },
    trailer: () => closing,
  };
}
