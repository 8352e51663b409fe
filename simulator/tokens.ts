/**
 * @module simulator/tokens
 * JWT-shaped tokens signed with a per-simulator secret (HMAC-SHA512, like Kimi's HS512), so the simulator can
 * tell its own tokens from forged or edited ones. Claims follow protocol spec §3.4 (account service) and §2.2
 * (legacy `user-center`).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type TokenFamily = 'account' | 'user-center';
export type TokenType = 'access' | 'refresh';

export interface TokenClaims {
  iss: TokenFamily;
  aud?: string[];
  typ: TokenType;
  app_id: 'kimi';
  sub: string;
  ssid: string;
  device_id: string;
  space_id: string;
  abstract_user_id: string;
  region: 'cn' | 'overseas';
  membership: { level: number };
  exp: number;
  iat: number;
  jti: string;
}

export type TokenProblem = 'malformed' | 'bad-signature' | 'expired';

export type VerifyResult = { ok: true; claims: TokenClaims } | { ok: false; problem: TokenProblem };

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS512', typ: 'JWT' })).toString('base64url');

export interface TokenSigner {
  sign(claims: TokenClaims): string;
  verify(token: string, nowMs: number): VerifyResult;
}

export function createTokenSigner(secret: Buffer = randomBytes(32)): TokenSigner {
  const signature = (input: string): Buffer => createHmac('sha512', secret).update(input).digest();
  return {
    sign(claims) {
      const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
      return `${HEADER}.${payload}.${signature(`${HEADER}.${payload}`).toString('base64url')}`;
    },
    verify(token, nowMs) {
      const parts = token.split('.');
      if (parts.length !== 3) return { ok: false, problem: 'malformed' };
      const given = Buffer.from(parts[2], 'base64url');
      const expected = signature(`${parts[0]}.${parts[1]}`);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return { ok: false, problem: 'bad-signature' };
      }
      const claims = parseClaims(parts[1]);
      if (!claims) return { ok: false, problem: 'malformed' };
      if (Math.floor(nowMs / 1000) >= claims.exp) return { ok: false, problem: 'expired' };
      return { ok: true, claims };
    },
  };
}

function parseClaims(segment: string): TokenClaims | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    if (value === null || typeof value !== 'object') return undefined;
    const claims = value as Partial<TokenClaims>;
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number' || typeof claims.jti !== 'string') return undefined;
    return claims as TokenClaims;
  } catch {
    return undefined;
  }
}

/** Reads the bearer credential of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match ? match[1] : undefined;
}

/** The `sub` claim without checking the signature (only to pick an account's scenario before verification). */
export function peekSubject(token: string | undefined): string | undefined {
  const segment = token?.split('.')[1];
  if (!segment) return undefined;
  return parseClaims(segment)?.sub;
}
