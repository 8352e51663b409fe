/**
 * @module upstream/connect/__fixtures__/test-tokens
 * JWT-shaped test tokens with the claims Kimi puts in them (protocol spec §3.4); the signature is junk
 * because nobody can verify it anyway.
 */
import type { KimiTokenClaims } from '../../../jwt.ts';

export function makeJwt(claims: KimiTokenClaims): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS512', typ: 'JWT' })}.${part(claims)}.${Buffer.from('not-a-real-signature').toString('base64url')}`;
}

export const identityClaims = {
  iss: 'account',
  aud: ['kimi.com'],
  app_id: 'kimi',
  sub: 'd5ig6pin7541vtcbh9t0',
  ssid: '1730123456789012345',
  device_id: '7470123456789012345',
  region: 'overseas',
  membership: { level: 10 },
};

export function accessToken(expSeconds: number = 2_000_000_000, extra: Partial<KimiTokenClaims> = {}): string {
  return makeJwt({ ...identityClaims, typ: 'access', exp: expSeconds, iat: expSeconds - 900, ...extra });
}

export function refreshToken(expSeconds: number = 2_100_000_000, extra: Partial<KimiTokenClaims> = {}): string {
  return makeJwt({ ...identityClaims, typ: 'refresh', exp: expSeconds, iat: expSeconds - 7_776_000, ...extra });
}
