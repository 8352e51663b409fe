/**
 * @module http/routes/qr-routes
 * QR login for the status page (issue 10): `POST /v1/accounts/qr` starts one (answers `{id, url, expiresAt}`),
 * `GET /v1/accounts/qr/{id}` (or `GET /v1/accounts/qr?id=…`) reports `pending` / `scanned` / `confirmed` with the
 * new account / `failed` with `error: {code, type, message}` — always HTTP 200, like any status of a job that
 * exists; 404 only for an id this process does not know. The upstream polling runs here, in the background,
 * bounded by the code's lifetime; the tokens go straight into the pool and never to the browser. Gateway key
 * required when set.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { QrLogin } from '../../accounts/qr-login.ts';
import type { AccountView } from '../../chat/chat-ports.ts';
import { GatewayError, NotFoundError, RateLimitError } from '../../errors.ts';
import { renderSVG } from 'uqr';
import { sendJson, type HttpContext, type RouteHandler } from '../http-context.ts';

export interface QrRouteDeps {
  /** Starts an upstream QR login (bind `startQrLogin({ authUrl, http })` from accounts/qr-login.ts). */
  startQrLogin(signal: AbortSignal): Promise<QrLogin>;
  /** Stores the refresh token the phone confirmed as an account (checked live like any added account). */
  addAccountFromToken(token: string, signal: AbortSignal): Promise<AccountView>;
  requireGatewayKey(headers: IncomingHttpHeaders): void;
  /** Logins waiting at once. Default 5. */
  maxPending?: number;
  clock?: () => number;
}

type QrState = 'pending' | 'scanned' | 'confirmed' | 'failed';

interface PendingLogin {
  id: string;
  url: string;
  expiresAt?: number;
  status: QrState;
  account?: AccountView;
  error?: { message: string; code: string; type: string };
  finishedAt?: number;
  abort: AbortController;
}

/** A finished login stays readable this long, so a slow page still sees the outcome. */
const keepFinishedMs = 10 * 60_000;

export interface QrRoutes {
  create: RouteHandler;
  status: RouteHandler;
  /** Stops background polling (graceful shutdown). */
  close(): void;
}

export function qrLoginRoutes(deps: QrRouteDeps): QrRoutes {
  const clock = deps.clock ?? Date.now;
  const logins = new Map<string, PendingLogin>();

  function sweep(): void {
    for (const [id, login] of logins) if (login.finishedAt !== undefined && clock() - login.finishedAt > keepFinishedMs) logins.delete(id);
  }

  function watch(login: PendingLogin, upstream: QrLogin): void {
    upstream
      .poll(login.abort.signal, (status) => {
        if (status === 'scanned') login.status = 'scanned';
      })
      .then(async (tokens) => {
        login.account = await deps.addAccountFromToken(tokens.refreshToken, login.abort.signal);
        login.status = 'confirmed';
      })
      .catch((error: unknown) => {
        login.status = 'failed';
        // The same code and type the error has elsewhere (docs/errors.md), e.g. qr_rejected / conflict_error.
        login.error = error instanceof GatewayError ? { message: error.message, code: error.code, type: error.type } : { message: 'The QR login failed.', code: 'qr_failed', type: 'api_error' };
      })
      .finally(() => {
        login.finishedAt = clock();
      });
  }

  const create: RouteHandler = async (context: HttpContext) => {
    deps.requireGatewayKey(context.request.headers);
    context.request.resume(); // no body is read
    sweep();
    const waiting = [...logins.values()].filter((login) => login.finishedAt === undefined).length;
    if (waiting >= (deps.maxPending ?? 5)) {
      throw new RateLimitError('rate_limited', 'Too many QR logins are waiting; finish or let one expire first.', { retryAfterMs: 30_000 });
    }
    const upstream = await deps.startQrLogin(context.signal);
    const login: PendingLogin = { id: randomUUID(), url: upstream.url, status: 'pending', abort: new AbortController(), ...(upstream.expiresAt ? { expiresAt: upstream.expiresAt } : {}) };
    logins.set(login.id, login);
    watch(login, upstream);
    sendJson(context, 201, view(login));
  };

  const status: RouteHandler = (context: HttpContext) => {
    deps.requireGatewayKey(context.request.headers);
    sweep();
    const id = loginIdOf(context.url, context.path);
    const login = id ? logins.get(id) : undefined;
    if (!id) throw new NotFoundError('No QR login id: use GET /v1/accounts/qr/{id} with the id POST /v1/accounts/qr answered.');
    if (!login) {
      throw new NotFoundError(
        `QR login "${id.slice(0, 64).replace(/[^\w-]/g, '?')}" is unknown to this gateway process (finished more than ten minutes ago, expired, or the gateway restarted). Start a new one with POST /v1/accounts/qr.`,
      );
    }
    sendJson(context, 200, view(login), { 'cache-control': 'no-store' });
  };

  return {
    create,
    status,
    close() {
      for (const login of logins.values()) login.abort.abort(new Error('The gateway is shutting down.'));
    },
  };
}

/** The id from `/v1/accounts/qr/{id}` or `?id=`; a malformed escape is no id rather than a 500. */
function loginIdOf(url: URL, routedPath: string): string {
  const fromQuery = url.searchParams.get('id');
  if (fromQuery !== null) return fromQuery;
  const segment = /^\/v1\/accounts\/qr\/([^/]+)$/.exec(routedPath)?.[1] ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

function view(login: PendingLogin): Record<string, unknown> {
  return {
    id: login.id,
    url: login.url,
    // An SVG data URL the page can show as an <img> (its CSP allows data: images, nothing else).
    qrImage: `data:image/svg+xml;base64,${Buffer.from(renderSVG(login.url)).toString('base64')}`,
    status: login.status,
    ...(login.expiresAt ? { expiresAt: login.expiresAt } : {}),
    ...(login.account ? { account: login.account } : {}),
    ...(login.error ? { error: login.error } : {}),
  };
}
