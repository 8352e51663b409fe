/**
 * @module files/file-name
 * Chooses the file name an attachment is uploaded under: Content-Disposition first, then the last
 * URL path segment, then a caller hint, then `attachment-N.ext`; always sanitised, and given the
 * detected extension when the name's own does not match a binary format (Kimi picks its parser by it).
 */
import { extensionOf, type DetectedType } from './detect-media-type.ts';

const maxFileNameLength = 200;

/** Extensions that name the same format, so `photo.jpeg` is not renamed to `photo.jpeg.jpg`. */
const sameFormat: Record<string, readonly string[]> = {
  jpg: ['jpg', 'jpeg', 'jpe', 'jfif'],
  html: ['html', 'htm'],
  md: ['md', 'markdown'],
};

/** RFC 6266: `filename*=UTF-8''…` wins over `filename="…"`. */
export function fileNameFromContentDisposition(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)'[^']*'([^;]+)/.exec(header);
  if (extended !== null) {
    try {
      return sanitizeFileName(decodeURIComponent(extended[1].trim()));
    } catch {
      // A malformed percent-encoding falls back to the plain parameter.
    }
  }
  const quoted = /filename\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(header);
  if (quoted !== null) return sanitizeFileName(quoted[1].replace(/\\(.)/g, '$1'));
  const bare = /filename\s*=\s*([^;\s]+)/.exec(header);
  return bare === null ? undefined : sanitizeFileName(bare[1]);
}

export function fileNameFromUrl(url: URL): string | undefined {
  const lastSegment = url.pathname.split('/').pop() ?? '';
  try {
    return sanitizeFileName(decodeURIComponent(lastSegment));
  } catch {
    return sanitizeFileName(lastSegment);
  }
}

/**
 * Strips directories, control characters and lone surrogates (a name must be valid Unicode to reach Kimi's upload);
 * undefined when nothing usable is left. Shortening counts code points, so it never cuts a character in two.
 */
export function sanitizeFileName(raw: string): string | undefined {
  const base = raw.split(/[\\/]/).pop() ?? '';
  const cleaned = base.replace(/[\u0000-\u001f\u007f"<>|:*?]|\p{Surrogate}/gu, '').trim();
  if (cleaned === '' || /^\.+$/.test(cleaned)) return undefined;
  const characters = [...cleaned];
  if (characters.length <= maxFileNameLength) return cleaned;
  const extension = extensionOf(cleaned);
  const suffix = extension === undefined ? '' : `.${extension}`;
  return characters.slice(0, maxFileNameLength - [...suffix].length).join('') + suffix;
}

export function finalFileName(candidates: ReadonlyArray<string | undefined>, detected: DetectedType, ordinal: number): string {
  const chosen = candidates.find((candidate) => candidate !== undefined);
  if (chosen === undefined) return `attachment-${ordinal}.${detected.extension}`;
  const own = extensionOf(chosen);
  const isTextual = detected.mediaType.startsWith('text/') || detected.extension === 'json' || detected.extension === 'xml';
  // Text keeps any extension it has (.py, .ts, .log); binary formats must carry their own.
  if (own !== undefined && (isTextual || (sameFormat[detected.extension] ?? [detected.extension]).includes(own))) {
    return chosen;
  }
  return `${chosen}.${detected.extension}`;
}
