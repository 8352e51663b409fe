/**
 * @module simulator/multipart
 * A streaming multipart/form-data parser (RFC 7578): part bodies are handed out chunk by chunk, so an upload
 * is hashed and counted without being held in memory. Only the boundary's length is ever buffered in a body.
 */

export interface MultipartHandler {
  onPartStart(headers: Record<string, string>): void;
  onPartData(chunk: Buffer): void;
  onPartEnd(): void;
}

export class MultipartError extends Error {}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;

type ParserState = 'preamble' | 'after-boundary' | 'headers' | 'body' | 'done';

export class MultipartParser {
  readonly #delimiter: Buffer;
  readonly #handler: MultipartHandler;
  // The leading CRLF lets the first boundary (which has none before it) match the same delimiter.
  #buffer: Buffer = Buffer.from(CRLF);
  #state: ParserState = 'preamble';

  constructor(boundary: string, handler: MultipartHandler) {
    this.#delimiter = Buffer.from(`\r\n--${boundary}`);
    this.#handler = handler;
  }

  get isFinished(): boolean {
    return this.#state === 'done';
  }

  write(chunk: Buffer): void {
    if (this.#state === 'done') return; // epilogue is ignored
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#step()) {
      // each step consumes input or changes state; stop when more bytes are needed
    }
  }

  /** Call at the end of input; throws when the closing boundary never came. */
  end(): void {
    if (this.#state !== 'done') throw new MultipartError('multipart body ended before the closing boundary');
  }

  #step(): boolean {
    switch (this.#state) {
      case 'preamble':
      case 'body':
        return this.#scanForDelimiter();
      case 'after-boundary':
        return this.#afterBoundary();
      case 'headers':
        return this.#readHeaders();
      default:
        return false;
    }
  }

  #scanForDelimiter(): boolean {
    const index = this.#buffer.indexOf(this.#delimiter);
    if (index === -1) {
      // Keep a tail that could be the start of a delimiter split across chunks.
      const safe = Math.max(0, this.#buffer.length - (this.#delimiter.length - 1));
      if (this.#state === 'body' && safe > 0) this.#handler.onPartData(this.#buffer.subarray(0, safe));
      this.#buffer = this.#buffer.subarray(safe);
      return false;
    }
    if (this.#state === 'body') {
      if (index > 0) this.#handler.onPartData(this.#buffer.subarray(0, index));
      this.#handler.onPartEnd();
    }
    this.#buffer = this.#buffer.subarray(index + this.#delimiter.length);
    this.#state = 'after-boundary';
    return true;
  }

  #afterBoundary(): boolean {
    if (this.#buffer.length < 2) return false;
    if (this.#buffer[0] === 0x2d && this.#buffer[1] === 0x2d) {
      this.#state = 'done';
      this.#buffer = Buffer.alloc(0);
      return false;
    }
    // Transport padding (spaces, tabs) may sit between the boundary and its CRLF.
    let offset = 0;
    while (offset < this.#buffer.length && (this.#buffer[offset] === 0x20 || this.#buffer[offset] === 0x09)) offset += 1;
    if (this.#buffer.length < offset + 2) return false;
    if (this.#buffer[offset] !== 0x0d || this.#buffer[offset + 1] !== 0x0a) throw new MultipartError('malformed boundary line');
    this.#buffer = this.#buffer.subarray(offset + 2);
    this.#state = 'headers';
    return true;
  }

  #readHeaders(): boolean {
    let headerText: string;
    if (this.#buffer.subarray(0, 2).equals(CRLF)) {
      headerText = '';
      this.#buffer = this.#buffer.subarray(2);
    } else {
      const index = this.#buffer.indexOf(HEADER_END);
      if (index === -1) {
        if (this.#buffer.length > MAX_HEADER_BYTES) throw new MultipartError('part headers too large');
        return false;
      }
      headerText = this.#buffer.subarray(0, index).toString('utf8');
      this.#buffer = this.#buffer.subarray(index + HEADER_END.length);
    }
    this.#handler.onPartStart(parseHeaderLines(headerText));
    // An empty body needs no special case: the next bytes are then the delimiter, CRLF included.
    this.#state = 'body';
    return true;
  }
}

function parseHeaderLines(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** The boundary parameter of a multipart/form-data Content-Type, or undefined. */
export function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType)) return undefined;
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match ? (match[1] ?? match[2]) : undefined;
}

/** `name` and `filename` of a Content-Disposition header (quoted or token values; filename* is honoured). */
export function dispositionOf(header: string | undefined): { name?: string; filename?: string } {
  if (!header) return {};
  const parameter = (key: string): string | undefined => {
    const match = new RegExp(`;\\s*${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, 'i').exec(header);
    if (!match) return undefined;
    return match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2];
  };
  const extended = parameter('filename\\*');
  const decodedExtended = extended ? decodeExtendedValue(extended) : undefined;
  return { name: parameter('name'), filename: decodedExtended ?? parameter('filename') };
}

function decodeExtendedValue(value: string): string | undefined {
  const match = /^[^']*'[^']*'(.*)$/.exec(value);
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
}
