/**
 * @module chat/stop-sequences
 * Client stop sequences (OpenAI `stop`, Anthropic `stop_sequences`), emulated over the normalised event stream:
 * Kimi's web chat has no such setting. The answer text is cut before the first occurrence of any sequence, only
 * a tail that could still grow into a sequence is held back (so streaming keeps flowing), the answer finishes
 * with reason `stop` and the sequence that matched, and the upstream stream is ended early so its request and
 * account are released. Reasoning text is never cut: the sequences apply to the answer only.
 */
import { InvalidRequestError } from '../errors.ts';
import type { ChatOutputEvent } from './tools/tool-events.ts';

/** OpenAI accepts up to 4 sequences; Anthropic documents no limit, so its route passes its own. */
export const MAX_OPENAI_STOP_SEQUENCES = 4;

/**
 * Characters per sequence. Agents send short markers (`\nObservation:`); the scan holds back a tail as long as the
 * longest sequence and searches it on every text event, so a sequence of megabytes would cost time per event.
 */
export const MAX_STOP_SEQUENCE_CHARS = 1_000;

type UsageEvent = Extract<ChatOutputEvent, { type: 'usage' }>;

export interface StopSequenceOptions {
  sequences: readonly string[];
  /**
   * The usage to report when the answer is cut: the chat service counts usage when the upstream answer ends,
   * which a cut answer never reaches. Undefined when nobody reads usage.
   */
  estimateUsage?: (answerText: string) => Promise<UsageEvent>;
}

/**
 * The client's stop value as a list: a string or an array of non-empty strings, at most `maxCount`;
 * null or absent means none. Anything else is a 400 naming `param`.
 */
export function parseStopSequences(value: unknown, param: string, maxCount = MAX_OPENAI_STOP_SEQUENCES): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list)) throw new InvalidRequestError(`${param} must be a string or an array of strings.`, { param });
  if (list.length > maxCount) throw new InvalidRequestError(`${param} has ${list.length} sequences; at most ${maxCount} are accepted.`, { param });
  list.forEach((sequence: unknown, index) => {
    const where = `${param}${Array.isArray(value) ? `[${index}]` : ''}`;
    if (typeof sequence !== 'string' || sequence.length === 0) throw new InvalidRequestError(`${where} must be a non-empty string.`, { param });
    if (sequence.length > MAX_STOP_SEQUENCE_CHARS) {
      throw new InvalidRequestError(`${where} is ${sequence.length} characters long; at most ${MAX_STOP_SEQUENCE_CHARS} are accepted.`, { param });
    }
  });
  return [...new Set(list as string[])];
}

export interface StopScanResult {
  /** Text that can go to the client now. */
  text: string;
  /** The sequence found; when set, the answer ends after `text`. */
  matched?: string;
}

/**
 * The pure part: feeds text pieces, returns what may be released. Holds back the longest tail that is a proper
 * prefix of some sequence, and never ends a release between the two halves of a surrogate pair.
 */
export function createStopScanner(sequences: readonly string[]): { push(text: string): StopScanResult; flush(): string } {
  let held = '';
  return {
    push(text) {
      const buffer = held + text;
      const match = firstMatch(buffer, sequences);
      if (match) {
        held = '';
        return { text: buffer.slice(0, match.index), matched: match.sequence };
      }
      let release = buffer.length - heldTailLength(buffer, sequences);
      // A high surrogate at the end waits for its low half: a client decoding UTF-8 must not get half a character.
      if (release > 0 && isHighSurrogate(buffer.charCodeAt(release - 1))) release -= 1;
      held = buffer.slice(release);
      return { text: buffer.slice(0, release) };
    },
    flush() {
      const rest = held;
      held = '';
      return rest;
    },
  };
}

function firstMatch(buffer: string, sequences: readonly string[]): { index: number; sequence: string } | undefined {
  let best: { index: number; sequence: string } | undefined;
  for (const sequence of sequences) {
    const index = buffer.indexOf(sequence);
    if (index !== -1 && (!best || index < best.index)) best = { index, sequence };
  }
  return best;
}

/** Length of the longest suffix of `buffer` that some sequence starts with (but does not equal). */
function heldTailLength(buffer: string, sequences: readonly string[]): number {
  let longest = 0;
  const last = buffer.at(-1);
  for (const sequence of sequences) {
    for (let length = Math.min(sequence.length - 1, buffer.length); length > longest; length -= 1) {
      // Cheap pre-check: the prefix must end with the buffer's last character.
      if (sequence[length - 1] === last && buffer.endsWith(sequence.slice(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * The stage: batches in, batches out. Only `text-delta` events are scanned; other events pass in order (held
 * text goes out before them, since it can no longer join a sequence across them). On a match the batch ends
 * with the text before the sequence, a usage estimate and `finish` (`stop`, with `stopSequence`; `tool-calls` when
 * a call was emitted before the cut), and the input is closed (returning a generator early runs `return()` on the
 * upstream iterator).
 */
export async function* cutAtStopSequences(batches: AsyncIterable<readonly ChatOutputEvent[]>, options: StopSequenceOptions): AsyncGenerator<readonly ChatOutputEvent[]> {
  if (options.sequences.length === 0) {
    yield* batches;
    return;
  }
  const scanner = createStopScanner(options.sequences);
  const answer: string[] = [];
  let hasCalled = false;
  for await (const batch of batches) {
    const out: ChatOutputEvent[] = [];
    for (const event of batch) {
      if (event.type === 'tool-call-end') {
        hasCalled = true;
        answer.push(event.arguments);
      }
      if (event.type !== 'text-delta') {
        const held = scanner.flush();
        if (held) {
          answer.push(held);
          out.push({ type: 'text-delta', text: held });
        }
        out.push(event);
        continue;
      }
      const scanned = scanner.push(event.text);
      if (scanned.text) {
        answer.push(scanned.text);
        out.push({ type: 'text-delta', text: scanned.text });
      }
      if (scanned.matched !== undefined) {
        if (options.estimateUsage) out.push(await options.estimateUsage(answer.join('')));
        // Text after a call that was already emitted: the call stands, and the client must run it (agent loops stop
        // on anything but a tool-call finish).
        out.push(hasCalled ? { type: 'finish', reason: 'tool-calls' } : { type: 'finish', reason: 'stop', stopSequence: scanned.matched });
        yield out;
        return;
      }
    }
    if (out.length > 0) yield out;
  }
  const held = scanner.flush();
  if (held) yield [{ type: 'text-delta', text: held }];
}
