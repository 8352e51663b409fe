/**
 * @module simulator/file-wire
 * The JSON shapes a file takes on the wire: the current upload answer / `chat.files` entry (spec §3.10) and
 * the legacy file detail (spec §2.3).
 */
import type { FileRecord } from './state.ts';
import type { ParseStatus } from './simulator-types.ts';

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

export function signUrl(baseUrl: string, file: FileRecord, variant: 'o' | 'p' | 't' | 'm'): string {
  return `${baseUrl}/apiv2-files/sign-obj/kimi-fs%2Ffiles%2Fblob%2F${file.sha256}?filename=${encodeURIComponent(file.name)}&sig=simulated&t=${variant}`;
}

/** `{id, meta, blob, parseResult}` as in the upload answer and `append chat.files` (spec §3.10). */
export function currentFileWire(file: FileRecord, baseUrl: string): Record<string, unknown> {
  return {
    id: file.id,
    meta: {
      name: file.name,
      contentType: file.contentType,
      sizeBytes: String(file.sizeBytes),
      checksum: file.sha256,
      ext: extensionOf(file.name),
      createTime: new Date(file.uploadedAt).toISOString(),
      type: file.kind === 'image' ? 'FILE_TYPE_IMAGE' : 'FILE_TYPE_DOCUMENT',
    },
    blob: { signUrl: signUrl(baseUrl, file, 'o'), previewUrl: signUrl(baseUrl, file, 'p') },
    parseResult:
      file.kind === 'image'
        ? { thumbnail: { thumbnailUrl: signUrl(baseUrl, file, 't'), previewUrl: signUrl(baseUrl, file, 'p'), mobileThumbnailUrl: signUrl(baseUrl, file, 'm') } }
        : {},
  };
}

export const CURRENT_PARSE_STATUS: Record<ParseStatus, string> = {
  processing: 'PROCESS_STATUS_PROCESSING',
  success: 'PROCESS_STATUS_SUCCESS',
  failed: 'PROCESS_STATUS_FAILED',
};

export const LEGACY_PARSE_STATUS: Record<ParseStatus, string> = {
  processing: 'initialized',
  success: 'parsed',
  failed: 'failed',
};

/** Legacy `/api/file` detail (spec §2.3). */
export function legacyFileWire(file: FileRecord, status: ParseStatus): Record<string, unknown> {
  return {
    id: file.id,
    name: file.name,
    size: file.sizeBytes,
    type: file.kind === 'image' ? 'image' : 'file',
    content_type: file.contentType,
    status: LEGACY_PARSE_STATUS[status],
    sha256: file.sha256,
    created_at: new Date(file.uploadedAt).toISOString(),
  };
}
