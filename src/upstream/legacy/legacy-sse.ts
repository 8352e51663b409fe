/**
 * @module upstream/legacy/legacy-sse
 * Byte-exact decoding of the legacy Server-Sent-Events body into JSON payloads (protocol spec §2.5, §9 D14).
 */
import { createParser } from 'eventsource-parser';

/** What the legacy dialect reports when it meets something it does not understand (never the content). */
export type LegacyUnknownKind = 'event' | 'payload' | 'search';
export type LegacyUnknownHandler = (kind: LegacyUnknownKind, name: string) => void;

/** One decoded SSE message: the JSON `data` and the SSE `event:` field when the server sent one. */
export interface LegacySsePayload {
  data: unknown;
  sseEvent: string | undefined;
}

/** One SSE message before its data is parsed: consumers parse as they go, so nothing after the end is read. */
export interface LegacySseMessage {
  data: string;
  event: string | undefined;
}

/**
 * The messages of an SSE body, all those a run of chunks completes at once (one batch per run: the legacy
 * dialect then hands on one batch of events per network read). A streaming TextDecoder keeps a UTF-8 character
 * split across network reads intact (the original gateway dropped such characters, §9 D14). Comments
 * (`: keep-alive`) and `event:` lines are tolerated. A run that completes no message gives an empty batch.
 */
export async function* readSseMessageBatches(runs: AsyncIterable<readonly Uint8Array[]>): AsyncGenerator<LegacySseMessage[]> {
  const decoder = new TextDecoder('utf-8');
  const pending: LegacySseMessage[] = [];
  const parser = createParser({ onEvent: (message) => pending.push({ data: message.data, event: message.event }) });
  for await (const run of runs) {
    for (const chunk of run) parser.feed(decoder.decode(chunk, { stream: true }));
    // Also when the run completed no message (only `: keep-alive` comments, or part of one): the reader checks how
    // long the stream has gone without an answer (createProgressDeadline) on every read.
    yield pending.splice(0);
  }
  // Flush a trailing partial character and dispatch a last event that lacks its blank line.
  parser.feed(`${decoder.decode()}\n\n`);
  if (pending.length > 0) yield pending.splice(0);
}

/**
 * The JSON payloads of an SSE body one at a time, from a body read chunk by chunk (the upload progress
 * stream). Blank `data:` fields are skipped; a data field that is not JSON is reported as `payload/non-json`.
 */
export async function* readSsePayloads(body: AsyncIterable<Uint8Array>, onUnknown: LegacyUnknownHandler = () => {}): AsyncGenerator<LegacySsePayload> {
  for await (const messages of readSseMessageBatches(chunksAsRuns(body))) {
    for (const message of messages) {
      for (const data of parseDataField(message.data, onUnknown)) yield { data, sseEvent: message.event };
    }
  }
}

async function* chunksAsRuns(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array[]> {
  for await (const chunk of body) yield [chunk];
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
