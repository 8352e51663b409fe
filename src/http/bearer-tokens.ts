/**
 * @module http/bearer-tokens
 * Reads credentials from request headers: `Authorization: Bearer T1,T2` (the seed's multi-token
 * form), or `x-api-key` (Anthropic clients). Never logs them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { AuthenticationError } from '../errors.ts';

/** The raw credential text of a request, or undefined when none was sent. */
export function credentialOf(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && authorization.trim()) {
    const match = /^\s*Bearer(?:\s+(.*))?$/i.exec(authorization);
    if (!match) throw new AuthenticationError('The Authorization header must be "Bearer <token>".', { code: 'invalid_api_key' });
    // "Bearer" alone is what a client with a blank key field sends: no credential, as if the header were absent.
    const token = match[1]?.trim();
    if (token) return token;
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.trim() ? apiKey.trim() : undefined;
}

/** Splits "T1,T2,T3" into tokens; an empty list is an authentication error. */
export function splitTokens(credential: string | undefined): string[] {
  const tokens = (credential ?? '').split(',').map((token) => token.trim()).filter(Boolean);
  if (tokens.length === 0) {
    throw new AuthenticationError('No Kimi token given: send "Authorization: Bearer <refresh token>" (several may be comma-separated).', { code: 'invalid_token' });
  }
  return tokens;
}
