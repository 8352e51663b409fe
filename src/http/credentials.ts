/**
 * @module http/credentials
 * Decides whose Kimi accounts a request uses (issue 5): with API_KEYS set, the client must present a
 * gateway key (constant-time compare) and the server pool answers; without it, the Bearer value is
 * the client's own Kimi token list, and a request without one falls back to the server pool if any.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { AuthenticationError } from '../errors.ts';
import { credentialOf, splitTokens } from './bearer-tokens.ts';

export interface ResolvedCredentials {
  /** Kimi tokens sent by the client; undefined means "use the server-side pool". */
  bearerTokens: string[] | undefined;
}

export interface CredentialResolver {
  resolve(headers: IncomingHttpHeaders): ResolvedCredentials;
  /** Gateway-key check for operator endpoints (accounts, status, doctor). */
  requireGatewayKey(headers: IncomingHttpHeaders): void;
  readonly hasGatewayKeys: boolean;
}

/** `hasServerPool` may be a function: accounts added at run time (add-account) open the server pool. */
export function createCredentialResolver(options: { apiKeys: readonly string[]; hasServerPool: boolean | (() => boolean) }): CredentialResolver {
  const hasServerPool = typeof options.hasServerPool === 'function' ? options.hasServerPool : () => options.hasServerPool === true;
  const keyDigests = options.apiKeys.map(digest);
  const hasGatewayKeys = keyDigests.length > 0;

  function isGatewayKey(value: string | undefined): boolean {
    if (!value) return false;
    const candidate = digest(value);
    // Compare digests of equal length so timing does not reveal key length or content.
    return keyDigests.some((key) => timingSafeEqual(key, candidate));
  }

  function requireGatewayKey(headers: IncomingHttpHeaders): void {
    if (!hasGatewayKeys) return;
    if (!isGatewayKey(credentialOf(headers))) {
      throw new AuthenticationError('A valid gateway key is required (Authorization: Bearer <one of API_KEYS>).', { code: 'invalid_api_key' });
    }
  }

  function resolve(headers: IncomingHttpHeaders): ResolvedCredentials {
    if (hasGatewayKeys) {
      requireGatewayKey(headers);
      return { bearerTokens: undefined };
    }
    const credential = credentialOf(headers);
    if (credential === undefined && hasServerPool()) return { bearerTokens: undefined };
    return { bearerTokens: splitTokens(credential) };
  }

  return { resolve, requireGatewayKey, hasGatewayKeys };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
