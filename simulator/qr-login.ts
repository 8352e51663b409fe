/**
 * @module simulator/qr-login
 * QR-code login on the account service (spec §3.4 names `CreateLoginQRCode` and `GetLoginQRCodeStatus` only;
 * every field below is our inference, marked so in README.md): create a code, poll its status, and the control
 * hooks `POST /__simulator/qr/{id}/scan` and `/confirm` that stand for the phone app.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { field, readJsonObject, sendConnectError, sendJson, type RouteContext, type RouteHandler } from './http-io.ts';
import { newUuidLikeId } from './ids.ts';
import type { SimulatorState } from './state.ts';

export const QR_CONTROL_PREFIX = '/__simulator/qr/';
/** How long a code can be scanned (ours; the real lifetime is unrecorded). */
export const QR_LIFETIME_MS = 120_000;

type QrStatus = 'STATUS_PENDING' | 'STATUS_SCANNED' | 'STATUS_CONFIRMED' | 'STATUS_EXPIRED';

interface QrCode {
  id: string;
  url: string;
  expiresAt: number;
  status: Exclude<QrStatus, 'STATUS_EXPIRED'>;
  tokens?: { accessToken: string; refreshToken: string; userId: string };
}

/** QR codes per simulator (keyed by its state, so no state.ts field is needed). */
const books = new WeakMap<SimulatorState, Map<string, QrCode>>();

function bookOf(state: SimulatorState): Map<string, QrCode> {
  let book = books.get(state);
  if (!book) {
    book = new Map();
    books.set(state, book);
  }
  return book;
}

function statusOf(code: QrCode, now: number): QrStatus {
  // A confirmed code stays confirmed so a slow poller still collects its tokens.
  if (code.status !== 'STATUS_CONFIRMED' && now >= code.expiresAt) return 'STATUS_EXPIRED';
  return code.status;
}

/** `POST …/AuthService/CreateLoginQRCode` `{}` → `{"id","url","expireTime"}` (no Authorization: nobody is signed in). */
async function createLoginQrCode(context: RouteContext): Promise<void> {
  const body = await readJsonObject(context);
  if (!body) return;
  const id = newUuidLikeId(context.state.now());
  const code: QrCode = { id, url: `${context.baseUrl}/qr-login/${id}`, expiresAt: context.state.now() + QR_LIFETIME_MS, status: 'STATUS_PENDING' };
  bookOf(context.state).set(id, code);
  sendJson(context.res, 200, { id, url: code.url, expireTime: new Date(code.expiresAt).toISOString() });
}

/** `POST …/AuthService/GetLoginQRCodeStatus` `{"id"}` → `{"status"}`, plus the token pair once confirmed. */
async function getLoginQrCodeStatus(context: RouteContext): Promise<void> {
  const body = await readJsonObject(context);
  if (!body) return;
  const id = field(body, 'id', 'qrcode_id', 'qrcodeId');
  if (typeof id !== 'string' || id === '') return sendConnectError(context.res, 'invalid_argument', 'id is required');
  const code = bookOf(context.state).get(id);
  if (!code) return sendConnectError(context.res, 'not_found', 'qr code not found');
  const status = statusOf(code, context.state.now());
  if (status === 'STATUS_CONFIRMED' && code.tokens) {
    context.record.userId = code.tokens.userId;
    return sendJson(context.res, 200, { status, ...code.tokens });
  }
  sendJson(context.res, 200, { status });
}

export const QR_ROUTES: Record<string, RouteHandler> = {
  '/api/account.gateway.v1.AuthService/CreateLoginQRCode': createLoginQrCode,
  '/api/account.gateway.v1.AuthService/GetLoginQRCodeStatus': getLoginQrCodeStatus,
};

/**
 * Control hooks standing for the phone: `POST /__simulator/qr/{id}/scan` marks the code scanned;
 * `POST /__simulator/qr/{id}/confirm` scans and confirms it, signing in a newly issued account.
 */
export function handleQrControl(req: IncomingMessage, res: ServerResponse, url: URL, state: SimulatorState): void {
  req.resume();
  const match = /^([^/]+)\/(scan|confirm)$/.exec(url.pathname.slice(QR_CONTROL_PREFIX.length));
  if (req.method !== 'POST' || !match) return sendJson(res, 404, { error: 'unknown qr control route', routes: ['POST qr/{id}/scan', 'POST qr/{id}/confirm'] });
  const code = bookOf(state).get(decodeURIComponent(match[1]));
  if (!code) return sendJson(res, 404, { error: 'unknown qr code' });
  const status = statusOf(code, state.now());
  if (status === 'STATUS_EXPIRED') return sendJson(res, 409, { error: 'qr code expired' });
  if (match[2] === 'scan') {
    if (status === 'STATUS_PENDING') code.status = 'STATUS_SCANNED';
    return sendJson(res, 200, { ok: true, status: code.status });
  }
  if (!code.tokens) {
    const account = state.issueAccount();
    code.tokens = { accessToken: account.accessToken, refreshToken: account.refreshToken, userId: account.userId };
  }
  code.status = 'STATUS_CONFIRMED';
  sendJson(res, 200, { ok: true, status: code.status, userId: code.tokens.userId });
}
