/**
 * @module jwt
 * Reads the payload of a Kimi JWT without verifying it (the signature is the upstream's business;
 * we only need claims for dialect choice, expiry and request headers, protocol spec §3.4).
 */

export interface KimiTokenClaims {
  iss?: string;
  aud?: string | string[];
  typ?: string;
  app_id?: string;
  sub?: string;
  ssid?: string;
  device_id?: string;
  region?: string;
  exp?: number;
  iat?: number;
  [claim: string]: unknown;
}

/** Returns the claims of a three-part JWT, or undefined when the text is not a decodable JWT. */
export function decodeJwtClaims(token: string): KimiTokenClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((part) => part.length === 0)) return undefined;
  try {
    const json = Buffer.from(parts[1], 'base64url').toString('utf8');
    const claims: unknown = JSON.parse(json);
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return undefined;
    return claims as KimiTokenClaims;
  } catch {
    return undefined;
  }
}

/** Expiry in epoch milliseconds, when the token states one. */
export function expiresAtMs(claims: KimiTokenClaims | undefined): number | undefined {
  return typeof claims?.exp === 'number' ? claims.exp * 1000 : undefined;
}

/** True when an audience claim names one of Kimi's current hosts (account-service tokens). */
export function hasKimiAudience(claims: KimiTokenClaims): boolean {
  const audiences = Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : [];
  return audiences.some((audience) => /(^|\.)kimi\.(com|ai)$/.test(String(audience)));
}
