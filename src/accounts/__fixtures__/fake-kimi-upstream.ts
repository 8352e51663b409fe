/**
 * @module accounts/__fixtures__/fake-kimi-upstream
 * Test collaborators for the account modules: a tiny in-memory "Kimi" that rotates refresh tokens on every
 * refresh and refuses a rotated-away token (spec §3.4), exposed as KimiDialect objects, plus JWT and clock
 * helpers. Injected collaborators, not a mocked fetch.
 */
import { AuthenticationError, NotFoundError } from '../../errors.ts';
import type { DialectName, KimiDialect, Session, SessionGrant } from '../../upstream/dialect.ts';

export function makeJwt(claims: Record<string, unknown>): string {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'HS512', typ: 'JWT' })}.${encode(claims)}.c2lnbmF0dXJl`;
}

export interface FakeClock {
  now: () => number;
  advance: (ms: number) => void;
}

export function fakeClock(start = 1_700_000_000_000): FakeClock {
  let time = start;
  return { now: () => time, advance: (ms) => void (time += ms) };
}

export interface FakeUpstreamOptions {
  /** Delay of each refresh call. */
  refreshDelayMs?: number;
  /** Access-token lifetime. Default 900 s. */
  accessLifetimeMs?: number;
  clock?: () => number;
}

/**
 * One upstream account family: each refresh token is valid until it is used once, then the next one is.
 * Accounts are registered by their first refresh token.
 */
export class FakeKimiUpstream {
  readonly refreshCalls: Array<{ dialect: DialectName; token: string }> = [];
  readonly deleted: Array<{ accessToken: string; conversationId: string }> = [];
  readonly refused = new Set<DialectName>();
  private readonly valid = new Map<string, string>(); // current refresh token -> account name
  private readonly generations = new Map<string, number>();
  private readonly options: FakeUpstreamOptions;

  constructor(options: FakeUpstreamOptions = {}) {
    this.options = options;
  }

  register(accountName: string, refreshToken: string): void {
    this.valid.set(refreshToken, accountName);
    this.generations.set(accountName, 0);
  }

  /** The account's current refresh token stops working (logged out, banned). */
  revoke(accountName: string): void {
    for (const [token, name] of this.valid) if (name === accountName) this.valid.delete(token);
  }

  isCurrent(refreshToken: string): boolean {
    return this.valid.has(refreshToken);
  }

  async refresh(dialect: DialectName, token: string, signal: AbortSignal): Promise<SessionGrant> {
    this.refreshCalls.push({ dialect, token });
    if (this.options.refreshDelayMs) await abortableDelay(this.options.refreshDelayMs, signal);
    const accountName = this.valid.get(token);
    if (!accountName || this.refused.has(dialect)) throw new AuthenticationError('auth.token.invalid');
    const generation = (this.generations.get(accountName) ?? 0) + 1;
    this.generations.set(accountName, generation);
    this.valid.delete(token);
    const next = `${accountName}-refresh-${generation}`;
    this.valid.set(next, accountName);
    const now = (this.options.clock ?? Date.now)();
    return {
      dialect,
      accessToken: `${accountName}-access-${generation}`,
      accessExpiresAt: now + (this.options.accessLifetimeMs ?? 900_000),
      identity: { userId: accountName },
      refreshToken: next,
    };
  }

  dialect(name: DialectName): KimiDialect {
    const notUsed = (): never => {
      throw new Error('not used by account tests');
    };
    return {
      name,
      refreshSession: (token, signal) => this.refresh(name, token, signal),
      sessionFromAccessToken: (accessToken): Session => ({ dialect: name, accessToken, accessExpiresAt: undefined, identity: {} }),
      checkSession: async (session) => {
        if (session.accessToken.includes('revoked')) throw new AuthenticationError('auth.token.invalid');
        return { userId: session.identity.userId ?? 'user', name: 'Test User' };
      },
      deleteConversation: async (session, conversationId) => {
        if (conversationId.startsWith('gone')) throw new NotFoundError('no such chat', { code: 'conversation_not_found' });
        this.deleted.push({ accessToken: session.accessToken, conversationId });
      },
      streamReply: notUsed,
      findConversation: notUsed,
      uploadFile: notUsed,
      listModels: notUsed,
    };
  }

  dialects(): Record<DialectName, KimiDialect> {
    return { current: this.dialect('current'), legacy: this.dialect('legacy') };
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
