/**
 * @module accounts/qr-login
 * Adding an account by QR code (issue 10, protocol spec §3.4): `CreateLoginQRCode` gives a code and its URL,
 * the user scans it with a phone signed in to Kimi, and `GetLoginQRCodeStatus` is polled (bounded) until it
 * hands over the token pair. The spec names the two RPCs only; the field names below are our reading
 * (simulator/README.md "QR login"), so each answer is read leniently.
 */
import { renderUnicodeCompact } from 'uqr';
import { ConflictError, GatewayError, UpstreamError } from '../errors.ts';

/**
 * The part of the shared upstream client this needs; the gateway's `UpstreamHttp` fits it. Declared here
 * because accounts/ reaches upstream code only through the dialect contract (architecture test).
 */
export interface QrLoginHttp {
  send(request: { url: string; method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal }): Promise<{
    statusCode: number;
    body: AsyncIterable<unknown> & { destroy(): void };
  }>;
}

export interface QrLoginOptions {
  /** Account service origin, e.g. `https://auth.kimi.com` (contract: KIMI_AUTH_URL). */
  authUrl: string;
  http: QrLoginHttp;
  /** Pause between status polls. Default 2000 ms. */
  pollIntervalMs?: number;
  /** Give up after this long even if the code claims to live longer. Default 300 000 ms. */
  maxWaitMs?: number;
  /** `x-msh-version`. Default `2.2.0` (§3.3). */
  clientVersion?: string;
  clock?: () => number;
}

export type QrLoginStatus = 'pending' | 'scanned' | 'confirmed';

export interface QrLoginTokens {
  refreshToken: string;
  accessToken: string;
}

export interface QrLogin {
  /** The upstream code id. */
  id: string;
  /** What the QR code encodes: open it on a phone signed in to Kimi. */
  url: string;
  /** Epoch ms when the code expires, when Kimi said. */
  expiresAt?: number;
  /** Polls until confirmed; rejects with `qr_expired` / `qr_rejected` or when `signal` aborts. */
  poll(signal: AbortSignal, onStatus?: (status: QrLoginStatus) => void): Promise<QrLoginTokens>;
}

const authPath = '/api/account.gateway.v1.AuthService';
const maxAnswerBytes = 64 * 1024;

export async function startQrLogin(options: QrLoginOptions, signal: AbortSignal = new AbortController().signal): Promise<QrLogin> {
  const clock = options.clock ?? Date.now;
  const created = await call(options, 'CreateLoginQRCode', {}, signal);
  const id = text(created.id) ?? text(created.qrcodeId) ?? text(created.qrcode_id);
  const url = text(created.url) ?? text(created.qrCodeUrl) ?? text(created.qrcodeUrl) ?? text(created.qr_code_url);
  if (!id || !url) throw new UpstreamError(`Kimi answered CreateLoginQRCode without an id and a URL (got fields ${Object.keys(created).join(', ') || 'none'}; §3.4).`);
  const expireTime = text(created.expireTime) ?? text(created.expire_time);
  const parsedExpiry = expireTime ? Date.parse(expireTime) : Number.NaN;
  const expiresAt = Number.isNaN(parsedExpiry) ? undefined : parsedExpiry;
  const deadline = Math.min(expiresAt ?? Number.POSITIVE_INFINITY, clock() + (options.maxWaitMs ?? 300_000));

  async function poll(pollSignal: AbortSignal, onStatus?: (status: QrLoginStatus) => void): Promise<QrLoginTokens> {
    let last: QrLoginStatus | undefined;
    let unrecognised: string | undefined;
    for (;;) {
      const answer = await call(options, 'GetLoginQRCodeStatus', { id }, pollSignal);
      const status = (text(answer.status) ?? 'STATUS_UNSPECIFIED').toUpperCase();
      const tokens = tokenPair(answer);
      // The token pair is what matters: an answer that carries both is a confirmation whatever its status is named
      // (the status names are our reading, and a rename such as STATUS_SUCCESS must not strand the login).
      if (tokens) {
        onStatus?.('confirmed');
        return tokens;
      }
      if (status.endsWith('CONFIRMED')) throw new UpstreamError('Kimi confirmed the QR login without a token pair (§3.4).');
      if (status.endsWith('EXPIRED')) throw qrExpired('The QR code expired before it was confirmed; start a new QR login.');
      if (/CANCEL|REJECT|DENIED|FAIL/.test(status)) throw qrRejected(`The QR login was not approved on the phone (${statusLabel(status)}).`);
      if (!knownWaiting.has(status)) unrecognised = statusLabel(status);
      const current: QrLoginStatus = status.endsWith('SCANNED') ? 'scanned' : 'pending';
      if (current !== last) onStatus?.(current);
      last = current;
      if (clock() + (options.pollIntervalMs ?? 2000) > deadline) {
        const hint = unrecognised ? ` Kimi's last status was ${unrecognised}, which this version does not know (§3.4).` : '';
        throw qrExpired(`The QR code was not confirmed in time; start a new QR login.${hint}`);
      }
      await pause(options.pollIntervalMs ?? 2000, pollSignal);
    }
  }

  return { id, url, ...(expiresAt === undefined ? {} : { expiresAt }), poll };
}

/** What the terminal shows: the QR code in Unicode half blocks, and the link for phones that cannot scan it. */
export function qrLoginInstructions(login: Pick<QrLogin, 'url' | 'expiresAt'>, now: number = Date.now()): string {
  const minutes = login.expiresAt === undefined ? undefined : Math.max(0, Math.round((login.expiresAt - now) / 60_000));
  return [
    'Log in to Kimi with your phone: scan this code with the Kimi app, then confirm there.',
    renderUnicodeCompact(login.url),
    `  ${login.url}`,
    minutes === undefined ? 'Waiting for the confirmation…' : `The code expires in about ${minutes} minute(s). Waiting for the confirmation…`,
  ].join('\n');
}

/** One unary call on the account service (§3.2 plain JSON, §3.3 headers); non-2xx becomes an error. */
async function call(options: QrLoginOptions, method: string, body: unknown, signal: AbortSignal): Promise<Record<string, unknown>> {
  const response = await options.http.send({
    url: `${options.authUrl.replace(/\/+$/, '')}${authPath}/${method}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'connect-protocol-version': '1', 'x-msh-platform': 'web', 'x-msh-version': options.clientVersion ?? '2.2.0' },
    body: JSON.stringify(body),
    signal,
  });
  const answer = await readText(response.body);
  let json: unknown;
  try {
    json = JSON.parse(answer);
  } catch {
    json = undefined;
  }
  const record = json !== null && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
  if (response.statusCode >= 200 && response.statusCode < 300 && record) return record;
  const said = [text(record?.code), text(record?.message)].filter(Boolean).join(': ');
  const where = response.statusCode === 404 || response.statusCode === 501 ? ' (this Kimi host offers no QR login at this path, §3.4)' : '';
  throw new UpstreamError(`Kimi answered ${method} with HTTP ${response.statusCode}${said ? ` ${said}` : ''}${where}.`, { isRetryable: response.statusCode >= 500 });
}

async function readText(body: AsyncIterable<unknown> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > maxAnswerBytes) {
      body.destroy();
      break;
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Statuses that mean "keep waiting" (simulator/README.md "QR login"); any other is remembered for the timeout message. */
const knownWaiting = new Set(['STATUS_UNSPECIFIED', 'STATUS_PENDING', 'STATUS_SCANNED']);

/** Both tokens of a confirmed login, under either spelling (§3.4 answers are camelCase; tolerant readers take both). */
function tokenPair(answer: Record<string, unknown>): QrLoginTokens | undefined {
  const refreshToken = text(answer.refreshToken) ?? text(answer.refresh_token);
  const accessToken = text(answer.accessToken) ?? text(answer.access_token);
  return refreshToken && accessToken ? { refreshToken, accessToken } : undefined;
}

/** An upstream status for a message: a plain enum name, or a placeholder (never arbitrary upstream text). */
function statusLabel(status: string): string {
  return /^[A-Z0-9_.-]{1,64}$/.test(status) ? status : '(an unreadable status)';
}

/** docs/errors.md: 410 `qr_expired` (invalid_request_error), 409 `qr_rejected` (conflict_error). */
function qrExpired(message: string): GatewayError {
  return new GatewayError({ status: 410, type: 'invalid_request_error', code: 'qr_expired', message });
}

function qrRejected(message: string): GatewayError {
  return new ConflictError(message, { code: 'qr_rejected' });
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
