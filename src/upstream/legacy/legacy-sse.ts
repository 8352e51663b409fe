/**
 * @module upstream/legacy/legacy-sse
 * Byte-exact decoding of the legacy Server-Sent-Events body into JSON payloads (protocol spec §2.5, §9 D14).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** What the legacy dialect reports when it meets something it does not understand (never the content). */
export type LegacyUnknownKind = 'event' | 'payload' | 'search';
export type LegacyUnknownHandler = (kind: LegacyUnknownKind, name: string) => void;

/** One decoded SSE message: the JSON `data` and the SSE `event:` field when the server sent one. */
export interface LegacySsePayload {
  data: unknown;
  sseEvent: string | undefined;
}

/**
 * Yields the JSON payloads of an SSE body. A streaming TextDecoder keeps a UTF-8 character split across
 * network reads intact (the original gateway dropped such characters, §9 D14). Comments (`: keep-alive`),
 * `event:` lines and blank `data:` fields are tolerated; a data field that is not JSON is reported as
 * `payload/non-json` and skipped.
 */
export async function* readSsePayloads(
  body: AsyncIterable<Uint8Array>,
  onUnknown: LegacyUnknownHandler = () => {},
): AsyncGenerator<LegacySsePayload> {
  const decoder = new TextDecoder('utf-8');
  const pending: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => pending.push(message) });
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    yield* drainMessages(pending, onUnknown);
  }
  // Flush a trailing partial character and dispatch a last event that lacks its blank line.
  parser.feed(`${decoder.decode()}\n\n`);
  yield* drainMessages(pending, onUnknown);
}

function* drainMessages(pending: EventSourceMessage[], onUnknown: LegacyUnknownHandler): Generator<LegacySsePayload> {
  while (pending.length > 0) {
    const message = pending.shift() as EventSourceMessage;
    for (const data of parseDataField(message.data, onUnknown)) {
      yield { data, sseEvent: message.event };
    }
  }
}

/**
 * JSON values in one SSE data field. A server that separates events with a single newline makes the parser
 * join several `data:` lines into one field; each line is then tried on its own.
 */
export function parseDataField(field: string, onUnknown: LegacyUnknownHandler): unknown[] {
  if (field.trim() === '') return [];
  const whole = tryParseJson(field);
  if (whole.ok) return [whole.value];
  const values: unknown[] = [];
  for (const line of field.split('\n')) {
    if (line.trim() === '') continue;
    const parsed = tryParseJson(line);
    if (parsed.ok) values.push(parsed.value);
    else onUnknown('payload', 'non-json');
  }
  return values;
}

function tryParseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}
