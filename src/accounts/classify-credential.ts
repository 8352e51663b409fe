/**
 * @module accounts/classify-credential
 * Decides what a pasted Kimi credential is and which dialect it belongs to (protocol spec §10.1, §3.4, §9 D2):
 * an optional `current:` / `legacy:` prefix, then the JWT claims, then `KIMI_DIALECT`. Quotes and a `kimi-auth=`
 * cookie wrapper are removed first (extract-credential.ts), so a Bearer header, KIMI_TOKENS and `add-account` take
 * the same strings and name the same account. Never echoes the token.
 */
import { AuthenticationError } from '../errors.ts';
import { decodeJwtClaims, expiresAtMs, hasKimiAudience } from '../jwt.ts';
import type { KimiTokenClaims } from '../jwt.ts';
import type { DialectName } from '../upstream/dialect.ts';
import type { CredentialKind } from './account.ts';
import { unwrapToken } from './extract-credential.ts';

export type DialectMode = 'auto' | DialectName;

export interface ClassifiedCredential {
  /** The token without its prefix. */
  token: string;
  kind: CredentialKind;
  dialect: DialectName;
  /** Dialect whose refresh to try when `dialect` refuses the token with an auth error (§10.1). */
  fallbackDialect?: DialectName;
  /** Token expiry (epoch ms) when it is a JWT with `exp`. */
  expiresAt?: number;
  /** An access token that lives an hour or less: usable until it expires, then a refresh token is needed (§9 D2). */
  isShortLived: boolean;
}

export interface ClassifyOptions {
  /** `KIMI_DIALECT`; a per-token prefix still wins. Default `auto`. */
  dialectMode?: DialectMode;
  /** How messages name the token, e.g. `Kimi token 2`. Default `Kimi token`. */
  label?: string;
  /** Current time (epoch ms), used only for access tokens without `iat`. Default Date.now(). */
  now?: number;
}

const MAX_TOKEN_LENGTH = 8_192;
const SHORT_LIVED_MS = 3_600_000;
const PREFIX = /^(current|legacy):/i;

/** Classifies one credential; throws AuthenticationError (`invalid_token`) for malformed input. */
export function classifyCredential(input: string, options: ClassifyOptions = {}): ClassifiedCredential {
  const label = options.label ?? 'Kimi token';
  let token = unwrapToken(input);
  let forcedDialect: DialectName | undefined;
  const prefix = PREFIX.exec(token);
  if (prefix) {
    forcedDialect = prefix[1].toLowerCase() as DialectName;
    // `current:"…"` or `legacy:kimi-auth=…` as well as `"current:…"`.
    token = unwrapToken(token.slice(prefix[0].length));
  }
  checkShape(token, label);
  if (!forcedDialect && options.dialectMode && options.dialectMode !== 'auto') forcedDialect = options.dialectMode;

  const claims = decodeJwtClaims(token);
  const kind: CredentialKind = claims?.typ === 'access' ? 'access' : 'refresh';
  const guess = guessDialect(claims);
  const expiresAt = expiresAtMs(claims);
  const result: ClassifiedCredential = {
    token,
    kind,
    dialect: forcedDialect ?? guess.dialect,
    isShortLived: kind === 'access' && isShortLivedAccess(claims, options.now ?? Date.now()),
  };
  if (!forcedDialect && guess.fallbackDialect) result.fallbackDialect = guess.fallbackDialect;
  if (expiresAt !== undefined) result.expiresAt = expiresAt;
  return result;
}

/** §10.1 in `auto` mode. */
function guessDialect(claims: KimiTokenClaims | undefined): { dialect: DialectName; fallbackDialect?: DialectName } {
  if (!claims) return { dialect: 'legacy' };
  if (claims.iss === 'account' || hasKimiAudience(claims)) return { dialect: 'current' };
  if (claims.iss === 'user-center' && claims.typ === 'access') return { dialect: 'current' };
  // A user-center refresh JWT, or a JWT we cannot place: legacy first, then the current host's GET refresh.
  return { dialect: 'legacy', fallbackDialect: 'current' };
}

function isShortLivedAccess(claims: KimiTokenClaims | undefined, now: number): boolean {
  if (typeof claims?.exp !== 'number') return false;
  const lifetimeMs = typeof claims.iat === 'number' ? (claims.exp - claims.iat) * 1000 : claims.exp * 1000 - now;
  return lifetimeMs <= SHORT_LIVED_MS;
}

function checkShape(token: string, label: string): void {
  if (token.length === 0) throw new AuthenticationError(`${label} is empty.`);
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new AuthenticationError(`${label} is longer than ${MAX_TOKEN_LENGTH} characters; paste only the token.`);
  }
  // Left over after unwrapping: a quote that was not around the token, or another cookie / setting (`name=value`,
  // `;`). Kimi would only refuse it, and an invalid mark would be stored under the junk's hash.
  if (/["'`]/.test(token)) {
    throw new AuthenticationError(`${label} contains quote characters inside it; paste only the token, without quotes.`);
  }
  if (token.includes(';') || /=[^=]/.test(token)) {
    throw new AuthenticationError(
      `${label} looks like a cookie or a name=value pair, not a token; give the refresh token, or the value of the kimi-auth cookie ` +
        '(kimi-auth=<value> is accepted).',
    );
  }
  // Printable ASCII only: a token with spaces, control characters or non-ASCII text is a copy-paste accident.
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new AuthenticationError(
      `${label} contains spaces, line breaks, control or non-ASCII characters; paste only the token ` +
        '(separate several tokens with commas).',
    );
  }
}
