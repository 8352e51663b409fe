/**
 * @module upstream/legacy/legacy-upload
 * Legacy attachment upload: pre-sign, streamed PUT, file registration and parse polling (protocol spec §2.3),
 * and the `refs_file` entry a completion needs to reference the file (§2.4).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { AttachmentError, AuthenticationError, GatewayError, RateLimitError, UpstreamError, UpstreamTimeoutError } from '../../errors.ts';
import { errorForHttpStatus, parseJsonSafely, readBodyText } from '../upstream-http.ts';
import type { Session, UploadSource, UploadedFile } from '../dialect.ts';
import { legacyHeaders } from './legacy-auth.ts';
import { callLegacyJson, discardBody, isSuccess, sendLegacy, type LegacyContext } from './legacy-rest.ts';
import { readSsePayloads } from './legacy-sse.ts';

const preSignSchema = z.looseObject({
  url: z.string().regex(/^https?:\/\//),
  object_name: z.string().optional(),
  file_id: z.string().optional(),
});
const fileDetailSchema = z.looseObject({
  id: z.string().min(1),
  name: z.string().optional(),
  size: z.number().optional(),
  status: z.string().optional(),
});

export interface LegacyUploadOptions {
  parseTimeoutMs: number;
  /** First pause between parse polls; doubles up to 4 s. */
  parsePollInitialMs: number;
}

export async function uploadLegacyFile(
  context: LegacyContext,
  options: LegacyUploadOptions,
  session: Session,
  source: UploadSource,
  signal: AbortSignal,
): Promise<UploadedFile> {
  const headers = legacyHeaders(context, session);
  const detail = await registerUpload(context, headers, source, signal).catch((error: unknown) => {
    throw namingUploadStep(error, source.fileName);
  });
  if (source.kind === 'document' && detail.data.status !== 'parsed') {
    await waitUntilParsed(context, options, headers, detail.data.id, source.fileName, signal);
  }
  return {
    id: detail.data.id,
    name: detail.data.name ?? source.fileName,
    mediaType: source.mediaType,
    sizeBytes: detail.data.size ?? source.sizeBytes,
    kind: source.kind,
    detail: { ...detail.data, status: source.kind === 'document' ? 'parsed' : detail.data.status },
  };
}

/** Pre-sign, PUT and register (§2.3); the parse wait is separate because its failures name themselves. */
async function registerUpload(context: LegacyContext, headers: Record<string, string>, source: UploadSource, signal: AbortSignal) {
  const action = source.kind === 'image' ? 'image' : 'file';
  const preSign = preSignSchema.safeParse(
    await callLegacyJson(context, { method: 'POST', path: '/api/pre-sign-url', headers, body: { action, name: source.fileName }, signal }),
  );
  if (!preSign.success) throw new UpstreamError('Kimi answered the upload pre-sign call without an upload URL.', { isRetryable: true });
  await putBytes(context, preSign.data.url, source, signal);
  // Image and document registrations differ (§2.3). No chat exists yet, so chat_id is omitted (§10.4).
  const registration =
    source.kind === 'image'
      ? { type: 'image', file_id: preSign.data.file_id ?? '', name: source.fileName }
      : { type: 'file', name: source.fileName, object_name: preSign.data.object_name ?? '', file_id: '' };
  const detail = fileDetailSchema.safeParse(await callLegacyJson(context, { method: 'POST', path: '/api/file', headers, body: registration, signal }));
  if (!detail.success) throw new UpstreamError('Kimi did not register the uploaded file (no file id).', { isRetryable: true });
  return detail;
}

/** Says which step failed, as the current dialect does; account-level errors keep their meaning. */
function namingUploadStep(error: unknown, fileName: string): unknown {
  if (!(error instanceof GatewayError) || error instanceof AuthenticationError || error instanceof RateLimitError || error instanceof UpstreamTimeoutError || error instanceof AttachmentError) return error;
  return new UpstreamError(`The upload of "${fileName}" to Kimi failed: ${error.message}`, { isRetryable: error.isRetryable, upstreamReason: error.upstreamReason, cause: error });
}

/** The `refs_file` element of a completion body for an uploaded file (§2.4). */
export function refsFileEntry(file: UploadedFile): Record<string, unknown> {
  const detail = file.detail ?? { id: file.id, name: file.name, size: file.sizeBytes };
  return {
    id: file.id,
    name: file.name,
    size: file.sizeBytes,
    file: {},
    file_info: detail,
    detail,
    done: true,
    parse_status: 'success',
    upload_progress: 100,
    upload_status: 'success',
  };
}

/** Streams the bytes to the pre-signed URL. No Authorization: the URL may belong to a storage host. */
async function putBytes(context: LegacyContext, url: string, source: UploadSource, signal: AbortSignal): Promise<void> {
  const response = await context.http.send({
    url,
    method: 'PUT',
    headers: { 'Content-Type': source.mediaType, 'Content-Length': String(source.sizeBytes) },
    body: source.body,
    signal,
  });
  await discardBody(response);
  // HTTP's own "too large": the same answer as the current dialect's 413 (docs/attachments.md).
  if (response.statusCode === 413) throw new AttachmentError('attachment_too_large', `Kimi's file storage refused the attachment "${source.fileName}" as too large (${source.sizeBytes} bytes).`);
  // The storage host's error body may echo the signed request, so only the status is reported.
  if (!isSuccess(response.statusCode)) throw errorForHttpStatus(response.statusCode, response.headers, context.defaultRetryAfterMs, 'attachment storage upload failed');
}

/**
 * Polls `POST /api/file/parse_process` until the file is parsed. The call is held open and answers with SSE
 * events whose status is either `file_info.status` or a top-level `status` (peers read both; format not
 * recorded in the spec, §8 item 12). Bounded by parseTimeoutMs.
 */
async function waitUntilParsed(
  context: LegacyContext,
  options: LegacyUploadOptions,
  headers: Record<string, string>,
  fileId: string,
  fileName: string,
  signal: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + options.parseTimeoutMs;
  const timeout = AbortSignal.timeout(options.parseTimeoutMs);
  const bounded = AbortSignal.any([signal, timeout]);
  let pauseMs = options.parsePollInitialMs;
  try {
    for (;;) {
      // Kimi holds the call until the file is parsed or this time passes, before answering at all: it must stay under
      // the upstream first-byte timeout, or a slow parse would end as upstream_timeout instead of being waited for.
      const holdMs = Math.max(250, Math.min(deadline - Date.now(), Math.floor(context.http.options.firstByteTimeoutMs * 0.75)));
      const status = await pollParseStatus(context, headers, fileId, holdMs, bounded);
      if (status === 'parsed') return;
      if (status === 'failed') throw new AttachmentError('attachment_parse_failed', `Kimi could not read the attachment "${fileName}".`);
      await delay(pauseMs, undefined, { signal: bounded });
      pauseMs = Math.min(pauseMs * 2, 4_000);
    }
  } catch (error) {
    // undici rejects with the signal's reason (a TimeoutError), so the timer, not the error, tells the cause.
    if (timeout.aborted && !signal.aborted) {
      throw new AttachmentError('attachment_parse_failed', `Kimi did not finish reading the attachment "${fileName}" within ${options.parseTimeoutMs} ms.`);
    }
    throw error;
  }
}

type ParseStatus = 'parsed' | 'failed' | 'pending';

async function pollParseStatus(
  context: LegacyContext,
  headers: Record<string, string>,
  fileId: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<ParseStatus> {
  const response = await sendLegacy(context, {
    method: 'POST',
    path: '/api/file/parse_process',
    headers,
    body: { ids: [fileId], timeout: timeoutMs },
    signal,
  });
  const contentType = String(response.headers['content-type'] ?? '');
  if (contentType.includes('json')) {
    const value = parseJsonSafely(await readBodyText(response.body));
    const items = Array.isArray(value) ? value : [value];
    return items.map(parseStatusOf).find((status) => status !== undefined && status !== 'pending') ?? 'pending';
  }
  let status: ParseStatus = 'pending';
  try {
    for await (const payload of readSsePayloads(response.body, context.onUnknown)) {
      status = parseStatusOf(payload.data) ?? status;
      if (status !== 'pending') break;
    }
  } finally {
    response.body.destroy();
  }
  return status;
}

function parseStatusOf(data: unknown): ParseStatus | undefined {
  if (data === null || typeof data !== 'object') return undefined;
  const record = data as { status?: unknown; file_info?: { status?: unknown } };
  const status = record.file_info?.status ?? record.status;
  if (status === 'parsed') return 'parsed';
  if (status === 'failed' || status === 'parse_failed' || status === 'error') return 'failed';
  return typeof status === 'string' ? 'pending' : undefined;
}
