/**
 * @module files/open-spooled-data-url
 * Opens an attachment whose base64 text the HTTP layer spooled to a temporary file while reading the body
 * (a `kfa-spool:<id>` placeholder in the message): the same checks and result as a data URL held in memory —
 * size from the text length before anything is decoded, strict base64, type from magic bytes — but the text
 * is streamed from disk and decoded in slices, and the body can be read again for a failover attempt.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { AttachmentError } from '../errors.ts';
import { detectMediaType, sniffBytes, type AttachmentKind } from './detect-media-type.ts';
import { defaultMaxBytes, type OpenedAttachment } from './fetch-attachment.ts';
import { finalFileName, sanitizeFileName } from './file-name.ts';

/** A spooled string as the request's registry describes it (chat/chat-request.ts SpooledDataUrl). */
export interface SpooledPayload {
  path: string;
  /** Characters of base64 text in the file. */
  sizeBytes: number;
  mediaType: string | undefined;
}

export interface SpoolLookup {
  resolve(placeholder: string): SpooledPayload | undefined;
}

export interface SpooledReference {
  payload: SpooledPayload;
  /** The data URL's declared media type (a type hint only; magic bytes decide). */
  declaredType: string | undefined;
}

export interface OpenSpooledOptions {
  kind: AttachmentKind;
  /** Size cap on the decoded bytes; default 104857600 (`ATTACHMENT_MAX_BYTES`). */
  maxBytes?: number;
  fileNameHint?: string;
  /** N in the generated `attachment-N.ext`; default 1. */
  ordinal?: number;
}

export const spoolPlaceholderPrefix = 'kfa-spool:';

/**
 * A data URL whose payload is a placeholder. A spooled data URL keeps its header (`data:image/png;base64,kfa-spool:…`);
 * spooled bare base64 becomes a bare placeholder, which the translators wrap like any bare base64 (Anthropic
 * `data`, Responses and OpenAI `file_data`), so both reach the opener in this one shape.
 */
const placeholderDataUrl = /^data:([^,]*);base64,(kfa-spool:[A-Za-z0-9_-]+)$/i;
const readChunkBytes = 256 * 1024;
/** All but the last two characters of valid base64 (padding may only sit there). */
const base64Body = /^[A-Za-z0-9+/]*$/;
const base64Tail = /^(?:[A-Za-z0-9+/]{2}|[A-Za-z0-9+/]=|==)$/;
/** Padding count per file, found once: a failover attempt opens the same file again. */
const validated = new WeakMap<SpooledPayload, Promise<number>>();

/**
 * The spooled payload a URL names: undefined when the URL is no placeholder at all; attachment_invalid when
 * it is one this request's registry did not issue (a client cannot name another request's file).
 */
export function findSpooledPayload(url: string, spool: SpoolLookup | undefined): SpooledReference | undefined {
  const match = placeholderDataUrl.exec(url);
  // Bare base64 used where a URL belongs is refused, as it would have been had it stayed in memory.
  if (!match && url.startsWith(spoolPlaceholderPrefix)) throw invalid('The attachment is neither an http(s) URL nor a base64 data URL.');
  if (!match) return undefined;
  const payload = spool?.resolve(match[2]);
  if (payload === undefined) throw invalid('The attachment refers to data that was not sent with this request.');
  const declaredType = match[1].split(';')[0].trim() || undefined;
  if (declaredType !== undefined && !/^[\w.+-]+\/[\w.+-]+$/.test(declaredType)) throw invalid('The data URL media type is malformed.');
  return { payload, declaredType };
}

export async function openSpooledDataUrl(reference: SpooledReference, options: OpenSpooledOptions): Promise<OpenedAttachment> {
  const maxBytes = options.maxBytes ?? defaultMaxBytes;
  const { payload } = reference;
  const textLength = payload.sizeBytes;
  // Refuse by the text length first, so an oversized file is never read.
  if (Math.floor((textLength * 3) / 4) - 2 > maxBytes) throw tooLarge(maxBytes);
  if (textLength % 4 !== 0) throw invalid('The data URL payload is not valid base64.');
  let padding = validated.get(payload);
  if (padding === undefined) {
    padding = validateBase64File(payload.path, textLength);
    validated.set(payload, padding);
  }
  const sizeBytes = (textLength / 4) * 3 - (await padding);
  if (sizeBytes > maxBytes) throw tooLarge(maxBytes);
  const head = await decodeHead(payload.path, Math.min(textLength, Math.ceil(sniffBytes / 3) * 4));
  const fileNameHint = sanitizeFileName(options.fileNameHint ?? '');
  const detected = await detectMediaType(
    head,
    { kind: options.kind, declaredType: reference.declaredType, fileName: fileNameHint },
    head.byteLength >= sizeBytes,
  );
  return {
    fileName: finalFileName([fileNameHint], detected, options.ordinal ?? 1),
    mediaType: detected.mediaType,
    sizeBytes,
    kind: options.kind,
    body: decodedFileSlices(payload.path),
    // The request's registry owns the file and deletes it when the response closes.
    release: () => undefined,
  };
}

/** Reads the whole text once: only base64 characters, padding only in the last two; returns the padding count. */
async function validateBase64File(path: string, textLength: number): Promise<number> {
  let carry = '';
  let seen = 0;
  const stream = createReadStream(path, { highWaterMark: readChunkBytes });
  try {
    for await (const chunk of stream) {
      seen += (chunk as Buffer).length;
      const text = carry + (chunk as Buffer).toString('latin1');
      if (!base64Body.test(text.slice(0, -2))) throw invalid('The data URL payload is not valid base64.');
      carry = text.slice(-2);
    }
  } finally {
    stream.destroy();
  }
  if (seen !== textLength) throw invalid('The spooled attachment changed while it was read.');
  if (textLength === 0) return 0;
  if (!base64Tail.test(carry)) throw invalid('The data URL payload is not valid base64.');
  return carry === '==' ? 2 : carry.endsWith('=') ? 1 : 0;
}

async function decodeHead(path: string, characters: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const text = Buffer.alloc(characters);
    const { bytesRead } = await handle.read(text, 0, characters, 0);
    return Buffer.from(text.subarray(0, bytesRead).toString('latin1'), 'base64');
  } finally {
    await handle.close();
  }
}

/** A re-iterable body: each iteration streams the file afresh and decodes whole 4-character groups. */
export function decodedFileSlices(path: string): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const stream = createReadStream(path, { highWaterMark: readChunkBytes });
      let carry = '';
      try {
        for await (const chunk of stream) {
          const text = carry + (chunk as Buffer).toString('latin1');
          const whole = text.length - (text.length % 4);
          carry = text.slice(whole);
          if (whole > 0) yield Buffer.from(text.slice(0, whole), 'base64');
        }
        if (carry) yield Buffer.from(carry, 'base64');
      } finally {
        stream.destroy();
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
