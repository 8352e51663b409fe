/**
 * @module accounts/account-status
 * The operator view of accounts (`GET /v1/accounts`, the `check` command): state, expiries and load per account,
 * and a live probe. Never includes a token.
 */
import { isGatewayError } from '../errors.ts';
import type { AccountProfile, DialectName, KimiDialect } from '../upstream/dialect.ts';
import type { StateStore, StoreLog } from '../store/state-store.ts';
import { readAccountRecord } from './account.ts';
import type { Account, AccountSource, CredentialKind } from './account.ts';
import { isAuthRefusal } from './token-refresher.ts';
import type { TokenRefresher } from './token-refresher.ts';

export type AccountStateName = 'live' | 'cooling' | 'invalid' | 'unknown';

export interface AccountSnapshot {
  id: string;
  dialect: DialectName;
  kind: CredentialKind;
  source: AccountSource;
  state: AccountStateName;
  cooldownUntil?: number;
  cooldownCode?: string;
  invalidReason?: string;
  accessExpiresAt?: number;
  refreshExpiresAt?: number;
  lastRefreshAt?: number;
  lastUsedAt?: number;
  inFlight: number;
  isShortLived: boolean;
}

export interface AccountCheck extends AccountSnapshot {
  profile?: AccountProfile;
  /** Why the probe failed (no token in it). */
  error?: string;
}

interface LocalState {
  account: Account;
  lastUsedAt?: number;
  coolUntil?: number;
  coolCode?: string;
  invalidReason?: string;
  isLive: boolean;
  inFlight: number;
}

/** What the pool lends these functions. */
export interface StatusContext {
  store: StateStore;
  dialects: Record<DialectName, KimiDialect>;
  refresher: TokenRefresher;
  clock: () => number;
  log: StoreLog;
  local(accountId: string): LocalState | undefined;
  refreshMarks(accountId: string): Promise<void>;
  noteLive(accountId: string): void;
}

export async function describeAccounts(context: StatusContext, accounts: readonly Account[]): Promise<AccountSnapshot[]> {
  return Promise.all(accounts.map((account) => describeAccount(context, account)));
}

async function describeAccount(context: StatusContext, account: Account): Promise<AccountSnapshot> {
  await context.refreshMarks(account.id).catch(() => undefined);
  const record = await readAccountRecord(context.store, account.id, context.log).catch(() => undefined);
  const local = context.local(account.id);
  const now = context.clock();
  const isCooling = (local?.coolUntil ?? 0) > now;
  const state: AccountStateName = local?.invalidReason ? 'invalid' : isCooling ? 'cooling' : local?.isLive ? 'live' : 'unknown';
  const snapshot: AccountSnapshot = {
    id: account.id,
    dialect: record?.dialect ?? account.dialect,
    kind: account.kind,
    source: record?.source ?? account.source,
    state,
    inFlight: local?.inFlight ?? 0,
    isShortLived: account.isShortLived,
  };
  const optional: Partial<AccountSnapshot> = {
    cooldownUntil: isCooling ? local?.coolUntil : undefined,
    cooldownCode: isCooling ? local?.coolCode : undefined,
    invalidReason: local?.invalidReason,
    accessExpiresAt: context.refresher.peek(account.id)?.accessExpiresAt ?? record?.accessExpiresAt,
    refreshExpiresAt: record?.refreshExpiresAt,
    lastRefreshAt: record?.lastRefreshAt,
    lastUsedAt: local?.lastUsedAt,
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (snapshot as unknown as Record<string, unknown>)[key] = value;
  }
  return snapshot;
}

/** Refreshes (if needed) and calls the dialect's current-user probe; one reactive refresh on a 401 (§3.4). */
export async function checkAccount(context: StatusContext, account: Account, signal?: AbortSignal): Promise<AccountCheck> {
  const probeSignal = signal ?? AbortSignal.timeout(20_000);
  let profile: AccountProfile | undefined;
  let error: string | undefined;
  await context.refreshMarks(account.id).catch(() => undefined);
  if (!context.local(account.id)?.invalidReason) {
    try {
      let session = await context.refresher.getSession(account.id, probeSignal);
      try {
        profile = await context.dialects[session.dialect].checkSession(session, probeSignal);
      } catch (probeError) {
        if (!isAuthRefusal(probeError)) throw probeError;
        session = await context.refresher.refreshAfterAuthFailure(account.id, session, probeSignal);
        profile = await context.dialects[session.dialect].checkSession(session, probeSignal);
      }
      context.noteLive(account.id);
    } catch (probeError) {
      if (isAuthRefusal(probeError) && !context.local(account.id)?.invalidReason) {
        await context.refresher.markInvalid(account.id, 'Kimi refused the token on the check');
      }
      error = isGatewayError(probeError) || probeError instanceof Error ? probeError.message : String(probeError);
    }
  }
  const [snapshot] = await describeAccounts(context, [account]);
  const result: AccountCheck = { ...snapshot };
  if (profile) result.profile = profile;
  if (error) result.error = error;
  return result;
}
