/**
 * @module accounts/account
 * The Account type, its id (a short hash of the original token, never the token), the stored account record
 * and the state-store key layout shared by the refresher, the pool and the conversation registry.
 */
import { createHash } from 'node:crypto';
import type { DialectName } from '../upstream/dialect.ts';
import { getJson } from '../store/state-store.ts';
import type { StateStore, StoreLog } from '../store/state-store.ts';
import type { ClassifiedCredential } from './classify-credential.ts';

export type AccountSource = 'server' | 'added' | 'bearer';
export type CredentialKind = 'refresh' | 'access';

/** A handle on one Kimi account. Carries no token: the current token always comes from the store. */
export interface Account {
  readonly id: string;
  /** Dialect the account is used with (may switch from legacy to current after a fallback refresh, §10.1). */
  readonly dialect: DialectName;
  readonly kind: CredentialKind;
  readonly source: AccountSource;
  /** A pasted access JWT that lives an hour or less (spec §9 D2). */
  readonly isShortLived: boolean;
}

/** What `account:<id>` holds. The one place a token is kept (the latest refresh token, or a pasted access token). */
export interface AccountRecord {
  id: string;
  token: string;
  kind: CredentialKind;
  dialect: DialectName;
  /** Try this dialect's refresh when the first one refuses the token (user-center refresh JWTs, §10.1). */
  fallbackDialect?: DialectName;
  source: AccountSource;
  addedAt: number;
  isShortLived: boolean;
  /** Access-only accounts: when the pasted token expires. */
  accessExpiresAt?: number;
  refreshExpiresAt?: number;
  lastRefreshAt?: number;
}

/** What `invalid:<id>` holds: the account's token was refused after one refresh. */
export interface InvalidMark {
  reason: string;
  at: number;
}

/** What `cool:<id>` holds (with a TTL until `until`). */
export interface CooldownMark {
  until: number;
  code: string;
}

/** State-store key layout (a backend may add its own namespace in front). */
export const storeKeys = {
  account: (accountId: string) => `account:${accountId}`,
  accountPrefix: 'account:',
  session: (accountId: string) => `session:${accountId}`,
  cooldown: (accountId: string) => `cool:${accountId}`,
  invalid: (accountId: string) => `invalid:${accountId}`,
  refreshLock: (accountId: string) => `lock:refresh:${accountId}`,
  conversation: (conversationId: string) => `conv:${conversationId}`,
  conversationPrefix: 'conv:',
  deletion: (conversationId: string) => `del:${conversationId}`,
  deletionPrefix: 'del:',
  deletionLock: (conversationId: string) => `lock:del:${conversationId}`,
} as const;

/** Bearer (per-request) accounts are forgotten after this long without a rotation or a new request. */
export const BEARER_RECORD_TTL_MS = 30 * 24 * 3_600_000;

/** sha256 of the token, base64url, first 12 characters: stable, log-safe, not reversible. */
export function accountIdFor(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url').slice(0, 12);
}

export function accountFromRecord(record: AccountRecord): Account {
  return {
    id: record.id,
    dialect: record.dialect,
    kind: record.kind,
    source: record.source,
    isShortLived: record.isShortLived,
  };
}

/** The first record of an account, from its classified original token. */
export function newAccountRecord(credential: ClassifiedCredential, source: AccountSource, now: number): AccountRecord {
  const record: AccountRecord = {
    id: accountIdFor(credential.token),
    token: credential.token,
    kind: credential.kind,
    dialect: credential.dialect,
    source,
    addedAt: now,
    isShortLived: credential.isShortLived,
  };
  if (credential.fallbackDialect) record.fallbackDialect = credential.fallbackDialect;
  if (credential.expiresAt !== undefined) {
    if (credential.kind === 'access') record.accessExpiresAt = credential.expiresAt;
    else record.refreshExpiresAt = credential.expiresAt;
  }
  return record;
}

export function recordTtlMs(record: AccountRecord): number | undefined {
  return record.source === 'bearer' ? BEARER_RECORD_TTL_MS : undefined;
}

export function readAccountRecord(store: StateStore, accountId: string, log?: StoreLog): Promise<AccountRecord | undefined> {
  return getJson<AccountRecord>(store, storeKeys.account(accountId), log);
}

/**
 * Read-modify-write of an account record with compare-and-set, so a concurrent change (another replica, an
 * `add-account` run) is merged rather than overwritten. After a few lost races it writes anyway: the callers are
 * refresh results, which must never be dropped. Returns the written record, or undefined when the record is gone.
 */
export async function updateAccountRecord(
  store: StateStore,
  accountId: string,
  change: (current: AccountRecord) => AccountRecord,
  options: { durable?: boolean } = {},
): Promise<AccountRecord | undefined> {
  const key = storeKeys.account(accountId);
  for (let attempt = 0; ; attempt += 1) {
    const text = await store.get(key);
    if (text === undefined) return undefined;
    const next = change(JSON.parse(text) as AccountRecord);
    const setOptions = { durable: options.durable, ttlMs: recordTtlMs(next) };
    if (attempt >= 4) {
      await store.set(key, JSON.stringify(next), setOptions);
      return next;
    }
    if (await store.compareAndSet(key, text, JSON.stringify(next), setOptions)) return next;
  }
}
