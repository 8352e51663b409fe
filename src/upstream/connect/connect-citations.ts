/**
 * @module upstream/connect/connect-citations
 * Inline citation markers in answer text (protocol spec §3.7, §10.5), rendered as `[n]` or removed.
 *
 * Forms accepted (sources disagree on the separator, so both are read):
 *   U+E3A0 "cite" (U+E3A3 ref)+ U+E3A8                       2026-06 capture
 *   U+E3A0 "cite" U+1F6E0 ref[:~:text=span] U+1F6E0 [U+E3A8]  2026-08 capture (several refs may follow)
 *   U+E3A0 "article" U+1F6E0 … U+1F3A8                       leading article marker, removed
 *   U+1F6E0 ref U+1F6E0                                      bare inline reference (only when ref is well formed)
 * Markers may be split across frames: an unterminated marker is held back (bounded) and released as
 * literal text when it never terminates.
 */

export type CitationMode = 'numbered' | 'strip';
export type RefResolver = (refIndex: string) => number | undefined;

export interface CitationScan {
  /** Text safe to emit now. */
  output: string;
  /** Start of a marker that may still terminate; prepend it to the next delta. */
  pending: string;
}

const markerStart = '\uE3A0';
const plainSeparator = '\uE3A3';
const plainEnd = '\uE3A8';
const toolSeparator = '\u{1F6E0}';
const articleEnd = '\u{1F3A8}';
/** Long enough for a quoted `:~:text=` span; beyond it a "marker" is surely literal text. */
export const defaultMaxMarkerChars = 4096;

const refAtStart = /^[A-Za-z_][\w-]*:\d+#\d+/;
const couldBecomeRef = /^(?:[A-Za-z_][\w-]*(?::\d*(?:#\d*)?)?)?$/;
const kindWord = /[A-Za-z_]*/y;

type Parsed = { status: 'complete'; end: number; kind: string; refs: string[] } | { status: 'incomplete' } | { status: 'literal' };

/** Renders every complete marker in `text`; call with `isFinal` at the end of a block or stream. */
export function renderCitations(
  text: string,
  resolve: RefResolver,
  mode: CitationMode,
  isFinal: boolean,
  maxMarkerChars: number = defaultMaxMarkerChars,
): CitationScan {
  let output = '';
  let index = 0;
  for (;;) {
    const start = nextMarkerIndex(text, index);
    if (start < 0) return { output: output + text.slice(index), pending: '' };
    output += text.slice(index, start);
    let parsed = text.startsWith(markerStart, start) ? parseMarker(text, start, isFinal) : parseBareRef(text, start, isFinal);
    if (parsed.status === 'incomplete' && text.length - start > maxMarkerChars) parsed = { status: 'literal' };
    if (parsed.status === 'incomplete') return { output, pending: text.slice(start) };
    if (parsed.status === 'literal') {
      const width = text.startsWith(markerStart, start) ? 1 : toolSeparator.length;
      output += text.slice(start, start + width);
      index = start + width;
      continue;
    }
    output += mode === 'numbered' && parsed.kind === 'cite' ? numbered(parsed.refs, resolve) : '';
    index = parsed.end;
  }
}

/** True when `text` holds no character that could start a citation marker (so rendering would return it unchanged). */
export function cannotStartMarker(text: string): boolean {
  return !text.includes(markerStart) && !text.includes(toolSeparator);
}

function nextMarkerIndex(text: string, from: number): number {
  const plain = text.indexOf(markerStart, from);
  const tool = text.indexOf(toolSeparator, from);
  if (plain < 0) return tool;
  if (tool < 0) return plain;
  return Math.min(plain, tool);
}

function numbered(fields: string[], resolve: RefResolver): string {
  const seen = new Set<number>();
  let out = '';
  for (const field of fields) {
    const number = resolve(field.split(':~:')[0].trim());
    if (number === undefined || seen.has(number)) continue;
    seen.add(number);
    out += `[${number}]`;
  }
  return out;
}

function unfinished(isFinal: boolean): Parsed {
  return isFinal ? { status: 'literal' } : { status: 'incomplete' };
}

/** Index just past a U+E3A8 or U+1F3A8 that starts exactly at `at`, else -1. */
function terminatorEndAt(text: string, at: number): number {
  if (text.startsWith(plainEnd, at)) return at + plainEnd.length;
  return text.startsWith(articleEnd, at) ? at + articleEnd.length : -1;
}

function parseMarker(text: string, start: number, isFinal: boolean): Parsed {
  kindWord.lastIndex = start + 1;
  const kind = kindWord.exec(text)?.[0] ?? '';
  const position = start + 1 + kind.length;
  if (position >= text.length) return unfinished(isFinal);
  if (kind === '') return { status: 'literal' };
  if (text.startsWith(toolSeparator, position) && kind === 'cite') {
    return parseToolCite(text, position + toolSeparator.length, isFinal);
  }
  const startsBody = [plainSeparator, toolSeparator, plainEnd, articleEnd].some((mark) => text.startsWith(mark, position));
  if (!startsBody) return { status: 'literal' };
  const terminator = nextOf(text, position, [plainEnd, articleEnd]);
  if (terminator < 0) return unfinished(isFinal);
  const refs = text.slice(position, terminator).split(/\uE3A3|\u{1F6E0}/u).filter((field) => field.length > 0);
  return { status: 'complete', end: terminatorEndAt(text, terminator), kind, refs };
}

/** `cite` U+1F6E0 form: fields closed by U+1F6E0; the marker ends at U+E3A8/U+1F3A8 or where no ref follows. */
function parseToolCite(text: string, from: number, isFinal: boolean): Parsed {
  const refs: string[] = [];
  let position = from;
  for (;;) {
    const close = nextOf(text, position, [toolSeparator, plainEnd, articleEnd]);
    if (close < 0) return unfinished(isFinal);
    refs.push(text.slice(position, close));
    if (!text.startsWith(toolSeparator, close)) return { status: 'complete', end: terminatorEndAt(text, close), kind: 'cite', refs };
    const after = close + toolSeparator.length;
    if (after >= text.length) return isFinal ? { status: 'complete', end: after, kind: 'cite', refs } : { status: 'incomplete' };
    const terminated = terminatorEndAt(text, after);
    if (terminated >= 0) return { status: 'complete', end: terminated, kind: 'cite', refs };
    const rest = text.slice(after, after + 80);
    if (refAtStart.test(rest)) {
      position = after;
      continue;
    }
    if (!isFinal && after + rest.length === text.length && couldBecomeRef.test(rest)) return { status: 'incomplete' };
    return { status: 'complete', end: after, kind: 'cite', refs };
  }
}

/** U+1F6E0 ref U+1F6E0 outside a marker; anything not shaped like a ref keeps the emoji as text. */
function parseBareRef(text: string, start: number, isFinal: boolean): Parsed {
  const position = start + toolSeparator.length;
  const rest = text.slice(position, position + 80);
  const ref = refAtStart.exec(rest)?.[0];
  if (!ref) {
    const atEnd = position + rest.length === text.length;
    return atEnd && couldBecomeRef.test(rest) ? unfinished(isFinal) : { status: 'literal' };
  }
  const after = position + ref.length;
  if (text.startsWith(toolSeparator, after)) {
    return { status: 'complete', end: after + toolSeparator.length, kind: 'cite', refs: [ref] };
  }
  if (text.startsWith(':~:', after)) {
    const close = nextOf(text, after, [toolSeparator, plainEnd]);
    if (close < 0) return unfinished(isFinal);
    const width = text.startsWith(toolSeparator, close) ? toolSeparator.length : plainEnd.length;
    return { status: 'complete', end: close + width, kind: 'cite', refs: [ref] };
  }
  const tail = text.slice(after, after + 3);
  return after + tail.length === text.length && ':~:'.startsWith(tail) ? unfinished(isFinal) : { status: 'literal' };
}

function nextOf(text: string, from: number, needles: string[]): number {
  let best = -1;
  for (const needle of needles) {
    const found = text.indexOf(needle, from);
    if (found >= 0 && (best < 0 || found < best)) best = found;
  }
  return best;
}
