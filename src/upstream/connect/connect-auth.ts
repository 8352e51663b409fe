/**
 * @module upstream/connect/connect-auth
 * Sessions of the current dialect: identity from JWT claims, the request headers derived from them
 * (protocol spec §3.3, §10.8), and the refresh-token exchange with rotation (§3.4, §9 D3, §10.1, §10.2).
 */
import { z } from 'zod';
import { AuthenticationError, UpstreamError, type GatewayError } from '../../errors.ts';
import { decodeJwtClaims, expiresAtMs, type KimiTokenClaims } from '../../jwt.ts';
import type { AccountIdentity, Session, SessionGrant } from '../dialect.ts';
import { describeBody, headerText, parseJsonSafely, readBodyText, type UpstreamHttp, type UpstreamResponse } from '../upstream-http.ts';
import { errorFromResponse, parseConnectError, redact } from './connect-errors.ts';
import type { UnknownObserver } from './connect-events.ts';
import { lenientString } from './connect-frame-schema.ts';

/** Everything the connect modules need to reach Kimi; made once by the dialect factory. */
export interface ConnectSettings {
  baseUrl: string;
  authUrl: string;
  http: UpstreamHttp;
  /** `x-msh-version`; without a 2.x value the model catalog was stale (§3.3). */
  clientVersion: string;
  language: string;
  timeZone: string;
  defaultRetryAfterMs: number;
  busyRetryAfterMs: number;
  /**
   * Told about drift in auth answers (a renamed rotated-token field, `field:refresh.<name>`). Without one, such
   * drift is written as a process warning, so a silent rename never goes unseen.
   */
  onUnknown?: UnknownObserver;
}

/**
 * How to refresh: `auto` tries the account service and falls back to the web GET path when that
 * route is missing (404/501); the other two use one path only (§9 D3, §10.1).
 */
export type RefreshMode = 'auto' | 'account-service' | 'web-get';

export function identityFromClaims(claims: KimiTokenClaims | undefined): AccountIdentity {
  const identity: AccountIdentity = {};
  if (typeof claims?.sub === 'string') identity.userId = claims.sub;
  if (typeof claims?.device_id === 'string' || typeof claims?.device_id === 'number') identity.deviceId = String(claims.device_id);
  if (typeof claims?.ssid === 'string' || typeof claims?.ssid === 'number') identity.sessionId = String(claims.ssid);
  return identity;
}

export function sessionFromAccessToken(accessToken: string): Session {
  const claims = decodeJwtClaims(accessToken);
  return { dialect: 'current', accessToken, accessExpiresAt: expiresAtMs(claims), identity: identityFromClaims(claims) };
}

/** Headers of every call (§3.3); `bearer` is omitted for the refresh POST, which takes the token in the body. */
export function connectHeaders(settings: ConnectSettings, identity: AccountIdentity, bearer?: string): Record<string, string> {
  const origin = originOf(settings.baseUrl);
  const headers: Record<string, string> = {
    'connect-protocol-version': '1',
    'x-msh-platform': 'web',
    'x-msh-version': settings.clientVersion,
    'x-language': settings.language,
    'r-timezone': settings.timeZone,
    origin,
    referer: `${origin}/`,
  };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  // Claims are upstream data: only header-safe values are forwarded.
  if (isHeaderSafe(identity.deviceId)) headers['x-msh-device-id'] = identity.deviceId;
  if (isHeaderSafe(identity.sessionId)) headers['x-msh-session-id'] = identity.sessionId;
  if (isHeaderSafe(identity.userId)) headers['x-traffic-id'] = identity.userId;
  return headers;
}

/** The origin of a base URL, parsed once per URL (this runs for every upstream call). */
const origins = new Map<string, string>();
function originOf(baseUrl: string): string {
  let origin = origins.get(baseUrl);
  if (origin === undefined) {
    origin = new URL(baseUrl).origin;
    origins.set(baseUrl, origin);
  }
  return origin;
}

const tokenPairSchema = z.looseObject({
  accessToken: lenientString,
  access_token: lenientString,
  refreshToken: lenientString,
  refresh_token: lenientString,
});

export async function refreshSession(settings: ConnectSettings, refreshToken: string, mode: RefreshMode, signal: AbortSignal): Promise<SessionGrant> {
  const claims = decodeJwtClaims(refreshToken);
  const identity = identityFromClaims(claims);
  // A user-center refresh token (the 2024 site's) is refreshed on the current host by the web GET path only: the
  // account service refuses it, and §10.1 asks for this path before the token is declared invalid.
  if (mode === 'web-get' || (mode === 'auto' && claims?.iss === 'user-center')) return refreshWithWebGet(settings, refreshToken, identity, signal);
  const response = await settings.http.send({
    url: `${settings.authUrl}/api/account.gateway.v1.AuthService/RefreshToken`,
    method: 'POST',
    headers: { ...connectHeaders(settings, identity), 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: refreshToken }),
    signal,
  });
  if (mode === 'auto' && (response.statusCode === 404 || response.statusCode === 501)) {
    await readBodyText(response.body); // the route is missing on this host: use the web GET path (§9 D3)
    return refreshWithWebGet(settings, refreshToken, identity, signal);
  }
  return grantFromResponse(settings, response, identity, 'the account-service refresh');
}

async function refreshWithWebGet(settings: ConnectSettings, refreshToken: string, identity: AccountIdentity, signal: AbortSignal): Promise<SessionGrant> {
  const headers = connectHeaders(settings, identity, refreshToken);
  delete headers['connect-protocol-version']; // a REST path, not a Connect RPC
  const response = await settings.http.send({ url: `${settings.baseUrl}/api/auth/token/refresh`, method: 'GET', headers, signal });
  return grantFromResponse(settings, response, identity, 'the web token refresh');
}

async function grantFromResponse(settings: ConnectSettings, response: UpstreamResponse, identity: AccountIdentity, step: string): Promise<SessionGrant> {
  if (response.statusCode === 400 || response.statusCode === 401 || response.statusCode === 403) {
    throw await refusedRefresh(response, step);
  }
  if (response.statusCode < 200 || response.statusCode >= 300) {
    throw await errorFromResponse(response, { operation: step, defaultRetryAfterMs: settings.defaultRetryAfterMs });
  }
  const text = await readBodyText(response.body);
  const json = parseJsonSafely(text);
  if (json === undefined) {
    // A front end's HTML page (or any non-JSON) at the refresh path: say so, not "no access token" (§3.4).
    const said = redact(describeBody(text, headerText(response.headers['content-type']))) || 'an empty body';
    throw new UpstreamError(`Kimi answered ${step} with ${said} instead of JSON (§3.4).`);
  }
  const parsed = tokenPairSchema.safeParse(json);
  const accessToken = parsed.success ? (parsed.data.accessToken ?? parsed.data.access_token) : undefined;
  if (!accessToken) throw new UpstreamError(`Kimi answered ${step} without an access token.`);
  const rotated = parsed.success ? (parsed.data.refreshToken ?? parsed.data.refresh_token ?? renamedRefreshToken(settings, parsed.data)) : undefined;
  const session = sessionFromAccessToken(accessToken);
  const grant: SessionGrant = {
    ...session,
    // An access token without identity claims still gets the headers of its refresh token (§3.4).
    identity: { ...identity, ...session.identity },
    ...(rotated ? { refreshToken: rotated, refreshExpiresAt: expiresAtMs(decodeJwtClaims(rotated)) } : {}),
  };
  return grant;
}

/**
 * The rotated refresh token under a field name this version does not know (`newRefreshToken`, …): the one string
 * field that decodes as a refresh JWT. Both tokens rotate on every call (§3.4), so dropping it would strand the
 * account at the next refresh; §10.2 asks to persist any new refresh token. The rename is reported as drift.
 */
function renamedRefreshToken(settings: ConnectSettings, answer: Record<string, unknown>): string | undefined {
  const candidates = Object.entries(answer).filter(
    ([name, value]) => !knownTokenFields.has(name) && typeof value === 'string' && decodeJwtClaims(value)?.typ === 'refresh',
  );
  if (candidates.length !== 1) return undefined; // none, or ambiguous: never guess between two refresh tokens
  const [name, value] = candidates[0];
  // The name is upstream data too: only a plain identifier goes into reports and logs.
  reportDrift(settings, 'field', `refresh.${/^[A-Za-z_][\w-]{0,63}$/.test(name) ? name : '(unusual-name)'}`);
  return value as string;
}

const knownTokenFields = new Set(['accessToken', 'access_token', 'refreshToken', 'refresh_token']);
const warnedDrift = new Set<string>();

/** Drift goes to the dialect's observer; without one, a process warning once per name (the name only, never a value). */
function reportDrift(settings: ConnectSettings, kind: 'field', name: string): void {
  if (settings.onUnknown) {
    try {
      settings.onUnknown(kind, name);
    } catch {
      // Observation must not change behaviour.
    }
    return;
  }
  if (warnedDrift.has(`${kind}:${name}`)) return;
  warnedDrift.add(`${kind}:${name}`);
  process.emitWarning(`Kimi sent the rotated refresh token in an unknown field (${kind}:${name}, §3.4); it was used and kept.`, { code: 'KIMI_UPSTREAM_DRIFT' });
}


/** A dead, rotated-away or foreign refresh token: the account must sign in again (§3.4 "invalid claims"). */
async function refusedRefresh(response: UpstreamResponse, step: string): Promise<GatewayError> {
  const body = await readBodyText(response.body);
  const json = parseJsonSafely(body);
  const info = parseConnectError(json);
  const said = info?.localizedMessage ?? info?.message ?? (typeof (json as { message?: unknown })?.message === 'string' ? (json as { message: string }).message : undefined);
  const detail = said ? `: ${redact(said)}` : '';
  return new AuthenticationError(
    `Kimi refused the refresh token in ${step} (HTTP ${response.statusCode})${detail}. Sign in to Kimi again and add the new token.`,
    { code: 'invalid_token', blamesAccount: true, isRetryable: true, upstreamReason: info?.reason ?? info?.code },
  );
}

function isHeaderSafe(value: string | undefined): value is string {
  return value !== undefined && /^[\w.:-]{1,128}$/.test(value);
}
