/**
 * @module simulator/file-routes
 * File upload and parse progress, current (spec §3.10: multipart upload + GetFileParseProgress) and legacy
 * (spec §2.3: pre-sign-url → PUT → /api/file → /api/file/parse_process).
 */
import type { ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { CURRENT_PARSE_STATUS, currentFileWire, legacyFileWire, LEGACY_PARSE_STATUS } from './file-wire.ts';
import { field, readJsonObject, requireAccount, sendConnectError, sendJson, sendLegacyError, sleep, type RouteContext } from './http-io.ts';
import { newXid } from './ids.ts';
import type { ScenarioName } from './scenarios.ts';
import type { AccountRecord, FileRecord } from './state.ts';
import { bearerToken } from './tokens.ts';
import { receiveMultipartFile, receiveRawFile, type ReceivedFile } from './upload-body.ts';

const SLOW_PARSE_MS = 3000;
const PARSE_POLL_MS = 50;

/** Where pre-signed legacy uploads go; recorded like any upstream request. */
export const PRESIGNED_PREFIX = '/oss/kimi-upload/';

function storeFile(context: RouteContext, account: AccountRecord, received: ReceivedFile, via: FileRecord['via'], scenario: ScenarioName, id: string): FileRecord {
  const kind = received.contentType.startsWith('image/') ? 'image' : 'document';
  const baseDelay = kind === 'image' ? context.state.settings.imageParseDelayMs : context.state.settings.documentParseDelayMs;
  return context.state.addFile(account, {
    id,
    name: received.fileName,
    contentType: received.contentType,
    sizeBytes: received.sizeBytes,
    sha256: received.sha256,
    kind,
    via,
    parseDelayMs: scenario === 'parse-slow' ? SLOW_PARSE_MS : baseDelay,
    outcome: scenario === 'parse-failed' ? 'failed' : 'success',
  });
}

/** Answers upload-rejected / upload-forbidden; true when it did. */
function rejectUpload(context: RouteContext, scenario: ScenarioName, shape: 'connect' | 'legacy'): boolean {
  if (scenario !== 'upload-rejected' && scenario !== 'upload-forbidden') return false;
  context.req.resume();
  const status = scenario === 'upload-rejected' ? 500 : 403;
  if (shape === 'legacy') sendLegacyError(context.res, status, status === 500 ? 'system.internal' : 'file.forbidden', 'simulated upload rejection');
  else sendConnectError(context.res, status === 500 ? 'internal' : 'permission_denied', 'simulated upload rejection');
  return true;
}

function closeAfter(res: ServerResponse): void {
  // The client may still be sending a body we stopped reading; do not keep the connection.
  if (!res.headersSent) res.setHeader('connection', 'close');
}

/** POST /apiv2-files/file/upload (multipart, one part named `file`). */
export async function handleUpload(context: RouteContext): Promise<void> {
  const account = requireAccount(context, 'connect', bearerToken(context.req.headers.authorization));
  if (!account) return void context.req.resume();
  const scenario = context.scenarios.take('upload', account.userId);
  context.record.scenario = scenario;
  if (rejectUpload(context, scenario, 'connect')) return;
  const received = await receiveMultipartFile(context.req, context.state.settings.maxUploadBytes);
  if (!received.ok) {
    closeAfter(context.res);
    sendConnectError(context.res, 'invalid_argument', received.message);
    return;
  }
  context.record.bodyBytes = received.file.sizeBytes;
  const file = storeFile(context, account, received.file, 'upload', scenario, randomUUID());
  sendJson(context.res, 200, { file: currentFileWire(file, context.baseUrl) });
}

/** POST …/FileService/GetFileParseProgress `{"file_ids":[…]}`. */
export async function handleParseProgress(context: RouteContext): Promise<void> {
  const account = requireAccount(context, 'connect', bearerToken(context.req.headers.authorization));
  if (!account) return;
  const body = await readJsonObject(context);
  if (!body) return;
  const ids = field(body, 'file_ids', 'fileIds');
  if (!Array.isArray(ids) || ids.length === 0) return sendConnectError(context.res, 'invalid_argument', 'file_ids must be a non-empty array');
  const files = ids.map((id) => (typeof id === 'string' ? account.files.get(id) : undefined));
  if (files.some((file) => file === undefined)) return sendConnectError(context.res, 'not_found', 'file not found');
  const progresses = (files as FileRecord[]).map((file) => ({ fileId: file.id, status: CURRENT_PARSE_STATUS[context.state.fileStatus(file)] }));
  sendJson(context.res, 200, { progresses });
}

/** POST /api/pre-sign-url `{"action","name"}` → a URL on this simulator to PUT the bytes to. */
export async function handlePreSign(context: RouteContext): Promise<void> {
  const account = requireAccount(context, 'legacy', bearerToken(context.req.headers.authorization));
  if (!account) return;
  const body = await readJsonObject(context);
  if (!body) return;
  const name = typeof body.name === 'string' && body.name !== '' ? body.name : 'file';
  const objectName = `${newXid()}/${encodeURIComponent(name)}`;
  const fileId = newXid();
  context.state.presignedObjects.set(objectName, { userId: account.userId, name, fileId });
  const url = `${context.baseUrl}${PRESIGNED_PREFIX}${objectName}?Expires=${Math.floor(context.state.now() / 1000) + 3600}&Signature=simulated`;
  sendJson(context.res, 200, { url, object_name: objectName, file_id: fileId });
}

/** PUT <pre-signed url>: raw bytes, no auth (the URL is the credential). */
export async function handlePresignedPut(context: RouteContext): Promise<void> {
  const objectName = context.url.pathname.slice(PRESIGNED_PREFIX.length);
  const pending = context.state.presignedObjects.get(objectName);
  if (!pending) {
    context.req.resume();
    return sendJson(context.res, 403, { Code: 'SignatureDoesNotMatch', Message: 'unknown object' });
  }
  const received = await receiveRawFile(context.req, pending.name, context.state.settings.maxUploadBytes);
  if (!received.ok) {
    closeAfter(context.res);
    return sendJson(context.res, received.reason === 'too-large' ? 413 : 400, { Code: 'EntityTooLarge', Message: received.message });
  }
  context.record.bodyBytes = received.file.sizeBytes;
  context.record.userId = pending.userId;
  pending.received = received.file;
  sendJson(context.res, 200, {});
}

/** POST /api/file: registers a PUT object as a file (image by file_id, document by object_name). */
export async function handleLegacyFile(context: RouteContext): Promise<void> {
  const account = requireAccount(context, 'legacy', bearerToken(context.req.headers.authorization));
  if (!account) return;
  const body = await readJsonObject(context);
  if (!body) return;
  const objects = context.state.presignedObjects;
  const byObject = typeof body.object_name === 'string' ? objects.get(body.object_name) : undefined;
  const byId = [...objects.values()].find((pending) => pending.fileId === body.file_id);
  const pending = byObject ?? byId;
  if (!pending || pending.userId !== account.userId || !pending.received) {
    return sendLegacyError(context.res, 400, 'file.not_found', '文件不存在 (upload the bytes to the pre-signed URL first)');
  }
  const scenario = context.scenarios.take('upload', account.userId);
  context.record.scenario = scenario;
  if (rejectUpload(context, scenario, 'legacy')) return;
  const file = account.files.get(pending.fileId) ?? storeFile(context, account, pending.received, 'legacy', scenario, pending.fileId);
  sendJson(context.res, 200, legacyFileWire(file, context.state.fileStatus(file)));
}

/** POST /api/file/parse_process `{"ids","timeout"}`: held open until every file is parsed or failed. */
export async function handleLegacyParseProcess(context: RouteContext): Promise<void> {
  const account = requireAccount(context, 'legacy', bearerToken(context.req.headers.authorization));
  if (!account) return;
  const body = await readJsonObject(context);
  if (!body) return;
  const ids = Array.isArray(body.ids) ? body.ids : [];
  const files = ids.map((id) => (typeof id === 'string' ? account.files.get(id) : undefined));
  if (files.length === 0 || files.some((file) => file === undefined)) return sendLegacyError(context.res, 400, 'file.not_found', '文件不存在');
  const timeoutMs = Math.min(typeof body.timeout === 'number' ? body.timeout : 120_000, 120_000);
  const deadline = context.state.now() + timeoutMs;
  const statuses = () => (files as FileRecord[]).map((file) => context.state.fileStatus(file));
  while (statuses().includes('processing') && context.state.now() < deadline) {
    if (!(await sleep(PARSE_POLL_MS, context.signal))) return;
  }
  const current = statuses();
  const overall = current.includes('failed') ? 'failed' : current.includes('processing') ? 'processing' : 'success';
  sendJson(context.res, 200, {
    status: LEGACY_PARSE_STATUS[overall],
    files: (files as FileRecord[]).map((file, index) => ({ id: file.id, status: LEGACY_PARSE_STATUS[current[index]] })),
  });
}
