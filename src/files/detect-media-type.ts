/**
 * @module files/detect-media-type
 * Decides an attachment's media type from its first bytes (magic numbers via file-type), using
 * the declared Content-Type and file name only to tell apart containers that share a signature
 * (zip-based Office files, CFB-based legacy Office files) and to name text. Refuses everything
 * outside the accepted list.
 */
import { fileTypeFromBuffer } from 'file-type';
import { AttachmentError } from '../errors.ts';

export type AttachmentKind = 'image' | 'document';

export interface DetectedType {
  mediaType: string;
  /** Extension without the dot, used when the file name has none. */
  extension: string;
  isImage: boolean;
}

export interface TypeHints {
  kind: AttachmentKind;
  /** Content-Type header or data-URL media type, as sent. */
  declaredType?: string;
  fileName?: string;
}

/** How many leading bytes the detector needs; file-type's own sample size. */
export const sniffBytes = 4100;

const imageTypes: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  bmp: 'image/bmp',
};

const documentTypes: Record<string, string> = {
  pdf: 'application/pdf',
  epub: 'application/epub+zip',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  doc: 'application/msword',
  xls: 'application/vnd.ms-excel',
  ppt: 'application/vnd.ms-powerpoint',
};

/** Formats whose signature is a generic container; the hint must say which Office format it is. */
const containerMembers: Record<string, readonly string[]> = {
  zip: ['docx', 'xlsx', 'pptx', 'epub'],
  cfb: ['doc', 'xls', 'ppt'],
};

/** Signatures file-type knows that are plain text underneath; accepted as documents. */
const textualSignatures: Record<string, string> = {
  xml: 'application/xml',
  ics: 'text/calendar',
  vcf: 'text/vcard',
  vtt: 'text/vtt',
};

const textExtensions: Record<string, string> = {
  txt: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  json: 'application/json',
  html: 'text/html',
  htm: 'text/html',
  xml: 'application/xml',
};

const textLikeDeclared = /^(text\/[\w.+-]+|application\/(json|xml|javascript|x-yaml|yaml|x-sh|x-python|sql|[\w.+-]+\+(json|xml)))$/;

export async function detectMediaType(head: Uint8Array, hints: TypeHints, isWholeFile: boolean): Promise<DetectedType> {
  if (head.byteLength === 0) throw new AttachmentError('attachment_invalid', 'The attachment is empty.');
  const detected = await fileTypeFromBuffer(head);
  const accepted = detected === undefined ? detectText(head, hints, isWholeFile) : acceptBinary(detected.ext, hints);
  if (accepted === undefined) {
    const what = detected === undefined ? 'binary data of an unknown type' : `a ${detected.ext.toUpperCase()} file`;
    throw unsupported(`The attachment is ${what}; accepted are images (PNG, JPEG, GIF, WebP, BMP), PDF, Office documents, EPUB and text.`);
  }
  if (hints.kind === 'image' && !accepted.isImage) {
    throw unsupported(`An image_url attachment must be an image (PNG, JPEG, GIF, WebP, BMP); this one is ${accepted.mediaType}.`);
  }
  return accepted;
}

function acceptBinary(extension: string, hints: TypeHints): DetectedType | undefined {
  // An animated PNG is a valid PNG to every decoder that ignores the animation chunks.
  if (extension === 'apng') return { mediaType: 'image/png', extension: 'png', isImage: true };
  if (extension in imageTypes) return { mediaType: imageTypes[extension], extension, isImage: true };
  if (extension in documentTypes) return { mediaType: documentTypes[extension], extension, isImage: false };
  if (extension in textualSignatures) return { mediaType: textualSignatures[extension], extension, isImage: false };
  const members = containerMembers[extension];
  if (members === undefined) return undefined;
  const hinted = hintedExtension(hints);
  if (hinted === undefined || !members.includes(hinted)) return undefined;
  return { mediaType: documentTypes[hinted], extension: hinted, isImage: false };
}

/** The Office/EPUB format named by the declared media type or, failing that, by the file name. */
function hintedExtension(hints: TypeHints): string | undefined {
  const declared = baseMediaType(hints.declaredType);
  for (const [extension, mediaType] of Object.entries(documentTypes)) {
    if (declared === mediaType) return extension;
  }
  return extensionOf(hints.fileName);
}

/** No signature matched: accept valid UTF-8 without control bytes as text. */
function detectText(head: Uint8Array, hints: TypeHints, isWholeFile: boolean): DetectedType | undefined {
  if (!isUtf8Text(head, isWholeFile)) return undefined;
  const declared = baseMediaType(hints.declaredType);
  const nameExtension = extensionOf(hints.fileName);
  const byName = nameExtension === undefined ? undefined : textExtensions[nameExtension];
  const mediaType = declared !== undefined && textLikeDeclared.test(declared) && declared !== 'text/plain'
    ? declared
    : (byName ?? 'text/plain');
  const extension = Object.entries(textExtensions).find(([, type]) => type === mediaType)?.[0] ?? 'txt';
  return { mediaType, extension, isImage: false };
}

/** Strict UTF-8; a multi-byte sequence cut at the end of a partial sample is not an error. */
export function isUtf8Text(bytes: Uint8Array, isWholeFile: boolean): boolean {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: !isWholeFile });
  } catch {
    return false;
  }
  // NUL and the C0 controls other than tab, newline, form feed, carriage return and escape mark binary data.
  return !/[\u0000-\u0008\u000b\u000e-\u001a\u001c-\u001f\u007f]/.test(text);
}

export function baseMediaType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const base = value.split(';')[0].trim().toLowerCase();
  return /^[\w.+-]+\/[\w.+-]+$/.test(base) ? base : undefined;
}

export function extensionOf(fileName: string | undefined): string | undefined {
  const match = fileName === undefined ? null : /\.([A-Za-z0-9]{1,10})$/.exec(fileName);
  return match === null ? undefined : match[1].toLowerCase();
}

function unsupported(message: string): AttachmentError {
  return new AttachmentError('attachment_type_unsupported', message);
}
