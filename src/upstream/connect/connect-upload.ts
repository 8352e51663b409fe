/**
 * @module upstream/connect/connect-upload
 * File and image upload of the current dialect (protocol spec §3.10): a streamed multipart POST to
 * `/apiv2-files/file/upload`, then GetFileParseProgress polled with backoff until Kimi has read the file.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { AttachmentError, GatewayError, RateLimitError, AuthenticationError, UpstreamError, UpstreamTimeoutError } from '../../errors.ts';
import type { Session, UploadedFile, UploadSource } from '../dialect.ts';
import { parseJsonSafely, readBodyText } from '../upstream-http.ts';
import { connectHeaders, type ConnectSettings } from './connect-auth.ts';
import { errorFromResponse } from './connect-errors.ts';
import type { UnknownReport } from './connect-events.ts';
import { lenientString } from './connect-frame-schema.ts';
import { callUnary, errorContext } from './connect-rpc.ts';

export interface UploadOptions {
  parsePollIntervalMs: number;
  parseTimeoutMs: number;
  report: (unknown: UnknownReport) => void;
}

export interface MultipartBody {
  body: AsyncIterable<Uint8Array>;
  contentLength: number;
  contentType: string;
}

/**
 * One `file` part around the source's bytes. The length is known up front (preamble + size + epilogue),
 * so the body streams without ever holding the whole file.
 */
export function multipartBody(source: UploadSource, boundary: string = `kimi-free-api-${randomUUID()}`): MultipartBody {
  const fileName = source.fileName.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const mediaType = source.mediaType.replace(/[\r\n]/g, '') || 'application/octet-stream';
  const preamble = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: ${mediaType}\r\n\r\n`,
    'utf8',
  );
  const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8');
  async function* body(): AsyncGenerator<Uint8Array> {
    yield preamble;
    let sent = 0;
    for await (const chunk of source.body) {
      sent += chunk.length;
      if (sent > source.sizeBytes) break;
      yield chunk;
    }
    if (sent !== source.sizeBytes) {
      throw new AttachmentError('attachment_invalid', `The attachment "${source.fileName}" was ${sent > source.sizeBytes ? 'longer' : 'shorter'} than its announced ${source.sizeBytes} bytes.`);
    }
    yield epilogue;
  }
  return { body: body(), contentLength: preamble.length + source.sizeBytes + epilogue.length, contentType: `multipart/form-data; boundary=${boundary}` };
}

const uploadAnswerSchema = z.looseObject({
  file: z
    .looseObject({
      id: lenientString,
      meta: z
        .looseObject({
          name: lenientString,
          contentType: lenientString,
          sizeBytes: z.union([z.string(), z.number()]).optional().catch(undefined),
          type: lenientString,
        })
        .optional()
        .catch(undefined),
    })
    .optional()
    .catch(undefined),
});

const progressSchema = z.looseObject({
  progresses: z.array(z.looseObject({ fileId: lenientString, status: lenientString }).catch({})).optional().catch(undefined),
});

export async function uploadFile(settings: ConnectSettings, session: Session, source: UploadSource, signal: AbortSignal, options: UploadOptions): Promise<UploadedFile> {
  const multipart = multipartBody(source);
  const response = await settings.http.send({
    url: `${settings.baseUrl}/apiv2-files/file/upload`,
    method: 'POST',
    headers: {
      ...connectHeaders(settings, session.identity, session.accessToken),
      'content-type': multipart.contentType,
      'content-length': String(multipart.contentLength),
    },
    body: multipart.body,
    signal,
  });
  if (response.statusCode === 413) {
    await readBodyText(response.body);
    throw new AttachmentError('attachment_too_large', `Kimi refused the attachment "${source.fileName}" as too large (${source.sizeBytes} bytes).`);
  }
  if (response.statusCode < 200 || response.statusCode >= 300) {
    throw namingUploadStep(await errorFromResponse(response, errorContext(settings, { operation: 'file upload' })));
  }
  const parsed = uploadAnswerSchema.safeParse(parseJsonSafely(await readBodyText(response.body)));
  const file = parsed.success ? parsed.data.file : undefined;
  if (!file?.id) throw new UpstreamError(`Kimi accepted the upload of "${source.fileName}" but returned no file id.`, { isRetryable: true });
  await waitUntilParsed(settings, session, file.id, source.fileName, signal, options);
  const meta = file.meta;
  const kind = meta?.type === 'FILE_TYPE_IMAGE' ? 'image' : meta?.type === 'FILE_TYPE_DOCUMENT' ? 'document' : source.kind;
  return {
    id: file.id,
    name: meta?.name || source.fileName,
    mediaType: meta?.contentType || source.mediaType,
    sizeBytes: Number(meta?.sizeBytes) || source.sizeBytes,
    kind,
  };
}

/** Polls GetFileParseProgress (§3.10 step 2) with a growing interval until success, failure or timeout. */
async function waitUntilParsed(settings: ConnectSettings, session: Session, fileId: string, fileName: string, signal: AbortSignal, options: UploadOptions): Promise<void> {
  const url = `${settings.baseUrl}/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress`;
  const deadline = Date.now() + options.parseTimeoutMs;
  let intervalMs = options.parsePollIntervalMs;
  for (;;) {
    const json = await callUnary(settings, session, url, { file_ids: [fileId] }, { operation: 'file parse check' }, signal);
    const parsed = progressSchema.safeParse(json);
    const progresses = parsed.success ? (parsed.data.progresses ?? []) : [];
    const status = (progresses.find((progress) => progress.fileId === fileId) ?? progresses[0])?.status;
    if (status === 'PROCESS_STATUS_SUCCESS') return;
    if (status === 'PROCESS_STATUS_FAILED') {
      throw new AttachmentError('attachment_parse_failed', `Kimi could not read the attachment "${fileName}" (PROCESS_STATUS_FAILED).`);
    }
    if (status !== undefined && status !== 'PROCESS_STATUS_PROCESSING') options.report({ kind: 'enum', name: `file.status:${status}` });
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) {
      throw new AttachmentError('attachment_parse_failed', `Kimi timed out reading the attachment "${fileName}" (still not parsed after ${Math.round(options.parseTimeoutMs / 1000)} s).`, { isRetryable: true });
    }
    await delay(Math.min(intervalMs, remainingMs), undefined, { signal });
    intervalMs = Math.min(intervalMs * 1.5, options.parsePollIntervalMs * 4);
  }
}

/** Errors that are about the account keep their type; anything else says it was the upload step that failed. */
function namingUploadStep(error: GatewayError): GatewayError {
  if (error instanceof AuthenticationError || error instanceof RateLimitError || error instanceof UpstreamTimeoutError) return error;
  return new UpstreamError(`The file upload to Kimi failed: ${error.message}`, {
    isRetryable: error.isRetryable,
    upstreamReason: error.upstreamReason,
    cause: error,
  });
}
