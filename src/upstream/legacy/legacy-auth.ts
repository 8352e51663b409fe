/**
 * @module upstream/legacy/legacy-auth
 * Legacy refresh-token exchange with rotation, the current-user lookup, and the request headers derived
 * from a session (protocol spec §2.1, §2.2, §10.2).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { UpstreamError, isAbortError } from '../../errors.ts';
import { decodeJwtClaims, expiresAtMs } from '../../jwt.ts';
import type { AccountIdentity, AccountProfile, Session, SessionGrant } from '../dialect.ts';
import { callLegacyJson, type LegacyContext } from './legacy-rest.ts';

const refreshAnswerSchema = z.looseObject({
  access_token: z.string().min(1),
  refresh_token: z.string().optional(),
});

const userAnswerSchema = z.looseObject({
  id: z.string().min(1),
  name: z.string().optional(),
  nickname: z.string().optional(),
  region: z.string().optional(),
  status: z.string().optional(),
});

/**
 * Device and session ids are 19-digit decimals chosen by the client (§2.1). They are derived from the user
 * id so that an account always presents the same "browser"; random ids per request look like a bot farm.
 */
export function deriveLegacyIdentity(userId: string): AccountIdentity {
  return {
    userId,
    deviceId: nineteenDigits(`device:${userId}`, 7_000_000_000_000_000_000n),
    sessionId: nineteenDigits(`session:${userId}`, 1_700_000_000_000_000_000n),
  };
}

function nineteenDigits(seed: string, base: bigint): string {
  const digest = createHash('sha256').update(seed).digest();
  // Below 1e17 so that base + offset keeps base's leading digits and stays 19 digits long.
  return (base + (digest.readBigUInt64BE(0) % 100_000_000_000_000_000n)).toString();
}

/** A session from an access token alone; identity comes from the `sub` claim when the token has one. */
export function legacySessionFromAccessToken(accessToken: string): Session {
  const claims = decodeJwtClaims(accessToken);
  const userId = typeof claims?.sub === 'string' && claims.sub !== '' ? claims.sub : undefined;
  return {
    dialect: 'legacy',
    accessToken,
    accessExpiresAt: expiresAtMs(claims),
    identity: userId ? deriveLegacyIdentity(userId) : {},
  };
}

export interface LegacyHeaderOptions {
  /** The chat the call concerns, for the browser-like Referer (§2.1). */
  chatId?: string;
}

/** The headers every legacy call carries (§2.1). The token appears only in Authorization. */
export function legacyHeaders(context: LegacyContext, session: Session, options: LegacyHeaderOptions = {}): Record<string, string> {
  const bearer = session.accessToken;
  const identity = session.identity;
  // Ids must be stable per account: from the user id, or without one from a hash of the credential.
  const derived =
    identity.deviceId && identity.sessionId
      ? identity
      : deriveLegacyIdentity(identity.userId ?? `token:${createHash('sha256').update(bearer).digest('hex')}`);
  const headers: Record<string, string> = {
    Authorization: `Bearer ${bearer}`,
    'X-Msh-Platform': 'web',
    'X-Msh-Device-Id': identity.deviceId ?? derived.deviceId ?? '',
    'X-Msh-Session-Id': identity.sessionId ?? derived.sessionId ?? '',
    'R-Timezone': context.timeZone,
    Origin: context.baseUrl,
    Referer: options.chatId ? `${context.baseUrl}/chat/${options.chatId}` : `${context.baseUrl}/`,
  };
  if (identity.userId) headers['X-Traffic-Id'] = identity.userId;
  return headers;
}

/**
 * `GET /api/auth/token/refresh` with the refresh token as bearer, then `GET /api/user` for the id behind
 * X-Traffic-Id (§2.2). A rotated refresh token is returned so the caller can persist it first (§10.2).
 */
export async function refreshLegacySession(context: LegacyContext, refreshToken: string, signal: AbortSignal): Promise<SessionGrant> {
  // The refresh token's `sub` (when it is a JWT) names the user, so the refresh call already carries the
  // account's stable ids.
  const provisional = legacySessionFromAccessToken(refreshToken).identity;
  const answer = await callLegacyJson(context, {
    method: 'GET',
    path: '/api/auth/token/refresh',
    headers: legacyHeaders(context, { dialect: 'legacy', accessToken: refreshToken, accessExpiresAt: undefined, identity: provisional }),
    signal,
    kind: 'refresh',
  });
  const parsed = refreshAnswerSchema.safeParse(answer);
  if (!parsed.success) {
    throw new UpstreamError('Kimi answered the token refresh without an access_token.', { isRetryable: true });
  }
  const rotated = parsed.data.refresh_token && parsed.data.refresh_token !== refreshToken ? parsed.data.refresh_token : undefined;
  const accessToken = parsed.data.access_token;
  const base = legacySessionFromAccessToken(accessToken);
  const session = { ...base, identity: { ...provisional, ...base.identity } };
  const identity = await identityAfterRefresh(context, session, rotated !== undefined, signal);
  return {
    ...base,
    identity,
    refreshToken: rotated,
    refreshExpiresAt: expiresAtMs(decodeJwtClaims(rotated ?? refreshToken)),
  };
}

/**
 * The user id from `GET /api/user`. A failure here must not lose a refresh token that has already rotated,
 * so after a rotation it falls back to the identity from the token claims (checkSession reports real account
 * problems later); without a rotation nothing is lost and the error is the better report.
 */
async function identityAfterRefresh(
  context: LegacyContext,
  session: Session,
  hasRotated: boolean,
  signal: AbortSignal,
): Promise<AccountIdentity> {
  try {
    const profile = await fetchLegacyProfile(context, session, signal);
    return deriveLegacyIdentity(profile.userId);
  } catch (error) {
    if (isAbortError(error) || !hasRotated) throw error;
    return session.identity;
  }
}

/** `GET /api/user` → the account profile (§2.2); throws AuthenticationError when the token is refused. */
export async function fetchLegacyProfile(context: LegacyContext, session: Session, signal: AbortSignal): Promise<AccountProfile> {
  const answer = await callLegacyJson(context, { method: 'GET', path: '/api/user', headers: legacyHeaders(context, session), signal });
  const parsed = userAnswerSchema.safeParse(answer);
  if (!parsed.success) throw new UpstreamError('Kimi answered GET /api/user without a user id.', { isRetryable: true });
  const name = parsed.data.name ?? parsed.data.nickname;
  return {
    userId: parsed.data.id,
    ...(name ? { name } : {}),
    ...(parsed.data.region ? { region: parsed.data.region } : {}),
  };
}
