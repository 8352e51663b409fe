/**
 * @module http/spool-large-strings
 * A byte-level JSON scanner (a pure state machine over body chunks) that finds attachment strings — a base64
 * data URL or bare base64 under an attachment key — and, once one grows past a threshold, hands the rest of it
 * on as spool data (JSON escapes undone) instead of keeping it in the JSON text. The caller writes spool data
 * to a file and puts a placeholder in the text, so a 100 MB attachment is never a string in memory.
 */
import { AttachmentError, InvalidRequestError } from '../errors.ts';

export type ScanEvent =
  /** Bytes of the JSON text to keep (parsed once the body has ended). */
  | { type: 'text'; bytes: Uint8Array }
  /** A string is diverted from here on: write a placeholder into the text and open a spool file. */
  | { type: 'spool-start'; mediaType: string | undefined; isDataUrl: boolean }
  /** Payload characters (base64 text, escapes undone) for the open spool file. */
  | { type: 'spool-data'; bytes: Uint8Array }
  /** The diverted string has ended; its closing quote follows as text. */
  | { type: 'spool-end' };

export interface LargeStringScannerOptions {
  /** Decoded characters a string must reach before it is diverted (e.g. 262144). */
  thresholdBytes: number;
  /** Object keys whose string values may be diverted; default `defaultSpoolKeys`. */
  keys?: readonly string[];
}

export interface LargeStringScanner {
  /** Scans the next body chunk; the events keep their order (text, then spool data, ...). */
  push(chunk: Uint8Array): ScanEvent[];
  /** The body has ended: returns a still undecided string as text (the JSON is then invalid anyway). */
  end(): ScanEvent[];
}

/** Where the three client APIs carry attachment data: OpenAI `url`/`file_data`, Responses `image_url`, Anthropic `data`. */
export const defaultSpoolKeys: readonly string[] = ['url', 'image_url', 'file_url', 'file_data', 'data'];

const quote = 0x22;
const backslash = 0x5c;
const colon = 0x3a;
/** Longer strings cannot be one of the keys above, so they are not remembered as a key. */
const keyCaptureLimit = 16;
const simpleEscapes: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09 };
/** One shared single-byte view per ASCII character, for escapes undone inside spool data. */
const asciiBytes = Array.from({ length: 128 }, (_, code) => Uint8Array.of(code));

type Mode = 'outside' | 'plain' | 'candidate' | 'diverted';

export interface SpoolDecision {
  mediaType: string | undefined;
  isDataUrl: boolean;
  /** Where the base64 payload starts in the examined prefix (after the comma of a data URL). */
  payloadStart: number;
}

/**
 * Decides from a string's first characters whether it is base64 worth spooling: a `data:<type>;base64,` URL
 * (the same header rules as files/data-url.ts) or bare base64. Anything else stays in memory and meets the
 * usual validation there.
 */
export function classifySpoolPrefix(prefix: string): SpoolDecision | undefined {
  if (/^[A-Za-z0-9+/]+$/.test(prefix)) return { mediaType: undefined, isDataUrl: false, payloadStart: 0 };
  if (prefix.slice(0, 5).toLowerCase() !== 'data:') return undefined;
  const comma = prefix.indexOf(',');
  if (comma === -1) return undefined;
  const parameters = prefix.slice(5, comma).split(';');
  if (parameters.pop()?.toLowerCase() !== 'base64') return undefined;
  const mediaType = parameters[0]?.trim() || undefined;
  if (mediaType !== undefined && !/^[\w.+-]+\/[\w.+-]+$/.test(mediaType)) return undefined;
  if (!/^[A-Za-z0-9+/]*$/.test(prefix.slice(comma + 1))) return undefined;
  return { mediaType, isDataUrl: true, payloadStart: comma + 1 };
}

export function createLargeStringScanner(options: LargeStringScannerOptions): LargeStringScanner {
  const keys = new Set(options.keys ?? defaultSpoolKeys);
  // A data URL header must fit in the examined prefix.
  const threshold = Math.max(64, Math.floor(options.thresholdBytes));
  let mode: Mode = 'outside';
  /** 0: none; 1: after a backslash; 2–5: that many \u hex digits still to come. */
  let escape = 0;
  let hexValue = 0;
  let capture = '';
  let lastString: string | undefined;
  let valueKey: string | undefined;
  let isAfterColon = false;
  // A candidate's raw bytes (given back as text if it is not diverted) and its characters with escapes undone.
  let held: Uint8Array[] = [];
  let decoded = new Uint8Array(0);
  let decodedLength = 0;

  function push(chunk: Uint8Array): ScanEvent[] {
    const events: ScanEvent[] = [];
    const length = chunk.length;
    /** Start of the current segment: text (outside, plain), held bytes (candidate) or spool data (diverted). */
    let start = 0;
    let pieces: Uint8Array[] = [];
    let quoteAt = -2;
    let backslashAt = -2;
    /** The next quote or backslash at or after `from` (positions cached: a chunk is searched once per byte kind). */
    const nextSpecial = (from: number): number => {
      if (quoteAt !== -1 && quoteAt < from) quoteAt = chunk.indexOf(quote, from);
      if (backslashAt !== -1 && backslashAt < from) backslashAt = chunk.indexOf(backslash, from);
      return Math.min(quoteAt === -1 ? length : quoteAt, backslashAt === -1 ? length : backslashAt);
    };
    const flushPieces = () => {
      if (pieces.length === 1) events.push({ type: 'spool-data', bytes: pieces[0] });
      if (pieces.length > 1) events.push({ type: 'spool-data', bytes: Buffer.concat(pieces) });
      pieces = [];
    };
    const giveBackHeld = () => {
      for (const bytes of held) events.push({ type: 'text', bytes });
      held = [];
      decoded = new Uint8Array(0);
      decodedLength = 0;
    };
    /** The candidate reached the threshold at `position`: divert it or keep it as a plain string. */
    const decide = (position: number) => {
      const decision = classifySpoolPrefix(Buffer.from(decoded.buffer, decoded.byteOffset, decodedLength).toString('latin1'));
      if (decision === undefined) {
        giveBackHeld();
        mode = 'plain';
        return;
      }
      held = [];
      events.push({ type: 'spool-start', mediaType: decision.mediaType, isDataUrl: decision.isDataUrl });
      if (decodedLength > decision.payloadStart) events.push({ type: 'spool-data', bytes: decoded.subarray(decision.payloadStart, decodedLength) });
      decoded = new Uint8Array(0);
      decodedLength = 0;
      mode = 'diverted';
      start = position;
    };
    const appendDecoded = (source: Uint8Array, from: number, to: number) => {
      const needed = decodedLength + (to - from);
      if (needed > decoded.length) {
        const grown = new Uint8Array(Math.min(threshold, Math.max(needed, decoded.length * 2, 1024)));
        grown.set(decoded.subarray(0, decodedLength));
        decoded = grown;
      }
      decoded.set(source.subarray(from, to), decodedLength);
      decodedLength = needed;
    };
    /** Undoes one escape byte; returns the character once complete, -1 while incomplete, -2 when invalid. */
    const escapeStep = (byte: number): number => {
      if (escape === 1) {
        if (byte === 0x75) {
          escape = 5;
          hexValue = 0;
          return -1;
        }
        escape = 0;
        return simpleEscapes[byte] ?? -2;
      }
      const digit = hexDigit(byte);
      if (digit === -1) {
        escape = 0;
        return -2;
      }
      hexValue = hexValue * 16 + digit;
      escape -= 1;
      if (escape > 1) return -1;
      escape = 0;
      return hexValue;
    };

    let index = 0;
    while (index < length) {
      if (mode === 'outside') {
        const byte = chunk[index];
        index += 1;
        if (byte === quote) {
          const key = isAfterColon ? valueKey : undefined;
          isAfterColon = false;
          capture = '';
          escape = 0;
          if (key !== undefined && keys.has(key)) {
            // The opening quote stays in the text; the string itself is held until it is decided.
            if (index > start) events.push({ type: 'text', bytes: chunk.subarray(start, index) });
            start = index;
            mode = 'candidate';
          } else {
            mode = 'plain';
          }
        } else if (byte === colon) {
          valueKey = lastString;
          isAfterColon = true;
        } else if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) {
          isAfterColon = false;
        }
        continue;
      }
      if (mode === 'plain') {
        if (escape !== 0) {
          // Only the byte after a backslash matters for finding the string's end (hex digits are never " or \).
          if (capture.length <= keyCaptureLimit) capture += String.fromCharCode(chunk[index]);
          escape = 0;
          index += 1;
          continue;
        }
        const special = nextSpecial(index);
        if (capture.length <= keyCaptureLimit) capture += Buffer.from(chunk.buffer, chunk.byteOffset + index, Math.min(special, index + keyCaptureLimit + 1) - index).toString('latin1');
        if (special === length) {
          index = length;
          break;
        }
        if (chunk[special] === backslash) {
          capture += '\\';
          escape = 1;
          index = special + 1;
          continue;
        }
        lastString = capture.length <= keyCaptureLimit ? capture : undefined;
        mode = 'outside';
        index = special + 1;
        continue;
      }
      if (mode === 'candidate') {
        if (escape !== 0) {
          const isAfterBackslash = escape === 1;
          const character = escapeStep(chunk[index]);
          if (character === -2 || character >= 0x80) {
            // Not base64 (or not even valid JSON): keep the string as text and let validation speak. A byte
            // that was not a hex digit is scanned again as an ordinary string byte.
            giveBackHeld();
            mode = 'plain';
            if (character !== -2 || isAfterBackslash) index += 1;
            continue;
          }
          index += 1;
          if (character >= 0) {
            appendDecoded(asciiBytes[character], 0, 1);
            if (decodedLength >= threshold) decide(index);
          }
          continue;
        }
        const special = nextSpecial(index);
        const needed = threshold - decodedLength;
        if (special - index >= needed) {
          appendDecoded(chunk, index, index + needed);
          index += needed;
          held.push(chunk.subarray(start, index));
          start = index;
          decide(index);
          continue;
        }
        appendDecoded(chunk, index, special);
        if (special === length) {
          index = length;
          break;
        }
        if (chunk[special] === backslash) {
          escape = 1;
          index = special + 1;
          continue;
        }
        // Ended below the threshold: the held bytes and this chunk's part are ordinary text after all.
        giveBackHeld();
        lastString = undefined;
        mode = 'outside';
        index = special + 1;
        continue;
      }
      // Diverted: payload runs go to the spool as views of the chunk; escapes are undone one character at a time.
      if (escape !== 0) {
        const character = escapeStep(chunk[index]);
        if (character === -2) throw new InvalidRequestError('The request body is not valid JSON: a bad escape inside a string.', { code: 'invalid_json' });
        if (character >= 0x80) throw new AttachmentError('attachment_invalid', 'The attachment payload is not valid base64.');
        index += 1;
        if (character >= 0) pieces.push(asciiBytes[character]);
        start = index;
        continue;
      }
      const special = nextSpecial(index);
      if (special > start) pieces.push(chunk.subarray(start, special));
      if (special === length) {
        index = length;
        start = length;
        break;
      }
      index = special + 1;
      if (chunk[special] === backslash) {
        escape = 1;
        start = index;
        continue;
      }
      flushPieces();
      events.push({ type: 'spool-end' });
      lastString = undefined;
      mode = 'outside';
      start = special; // the closing quote begins the next text segment
    }
    // The chunk ended: hand on the open segment according to the mode.
    if (mode === 'outside' || mode === 'plain') {
      if (length > start) events.push({ type: 'text', bytes: chunk.subarray(start, length) });
    } else if (mode === 'candidate') {
      if (length > start) held.push(chunk.subarray(start, length));
    } else {
      flushPieces();
    }
    return events;
  }

  function end(): ScanEvent[] {
    if (mode !== 'candidate') return [];
    const events: ScanEvent[] = held.map((bytes) => ({ type: 'text', bytes }));
    held = [];
    mode = 'plain';
    return events;
  }

  return { push, end };
}

function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}
