/**
 * @module files/data-url
 * Strict `data:<mime>[;param=value]*;base64,<payload>` parsing: the size is checked from the encoded
 * length before anything is decoded, and the payload is decoded slice by slice while it is read.
 */
import { AttachmentError } from '../errors.ts';

export interface ParsedDataUrl {
  /** The declared media type, or undefined when the URL names none. */
  declaredType: string | undefined;
  /** Exact decoded size in bytes. */
  sizeBytes: number;
  /** The base64 payload, still encoded; decodeHead and decodedSlices decode it lazily. */
  payload: string;
}

/** Decode in slices of this many base64 characters (a multiple of 4: 48 KiB decoded each). */
const sliceCharacters = 65_536;

const base64Body = /^[A-Za-z0-9+/]*={0,2}$/;

export function isDataUrl(url: string): boolean {
  return url.slice(0, 5).toLowerCase() === 'data:';
}

export function parseDataUrl(url: string, maxBytes: number): ParsedDataUrl {
  const comma = url.indexOf(',');
  if (comma === -1) throw invalid('The data URL has no comma before its payload.');
  const meta = url.slice(5, comma);
  const parameters = meta.split(';');
  if (parameters.pop()?.toLowerCase() !== 'base64') {
    throw invalid('Only base64 data URLs are accepted (data:<type>;base64,<payload>).');
  }
  const declaredType = parameters[0]?.trim() || undefined;
  if (declaredType !== undefined && !/^[\w.+-]+\/[\w.+-]+$/.test(declaredType)) {
    throw invalid('The data URL media type is malformed.');
  }
  const encodedLength = url.length - comma - 1;
  // Refuse by the encoded length first, so an oversized string is never scanned or decoded.
  if (Math.floor((encodedLength * 3) / 4) - 2 > maxBytes) throw tooLarge(maxBytes);
  const payload = url.slice(comma + 1);
  if (encodedLength % 4 !== 0 || !base64Body.test(payload)) {
    throw invalid('The data URL payload is not valid base64.');
  }
  const padding = payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0;
  const sizeBytes = (encodedLength / 4) * 3 - padding;
  if (sizeBytes > maxBytes) throw tooLarge(maxBytes);
  return { declaredType, sizeBytes, payload };
}

/** The first decoded bytes (at least `byteCount`, or the whole payload when shorter). */
export function decodeHead(payload: string, byteCount: number): Uint8Array {
  const characters = Math.ceil(byteCount / 3) * 4;
  return Buffer.from(payload.slice(0, characters), 'base64');
}

/** A re-iterable body: each iteration decodes the payload afresh, one slice at a time. */
export function decodedSlices(payload: string): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      for (let offset = 0; offset < payload.length; offset += sliceCharacters) {
        yield Buffer.from(payload.slice(offset, offset + sliceCharacters), 'base64');
      }
    },
  };
}

function invalid(message: string): AttachmentError {
  return new AttachmentError('attachment_invalid', message);
}

function tooLarge(maxBytes: number): AttachmentError {
  return new AttachmentError('attachment_too_large', `The attachment is larger than the ${maxBytes}-byte limit.`);
}
