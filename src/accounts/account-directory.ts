/**
 * @module accounts/account-directory
 * The accounts this process knows and their local state: created from tokens (server-side, `add-account`,
 * per-request Bearer), re-read from the store so an account added by another process appears within seconds
 * (contract.md), and kept in step with the cooldown / invalid marks other replicas write.
 */
import { getJson, silentLog } from '../store/state-store.ts';
import type { StateStore, StoreLog } from '../store/state-store.ts';
import { accountFromRecord, accountIdFor, newAccountRecord, readAccountRecord, recordTtlMs, storeKeys, updateAccountRecord } from './account.ts';
import type { Account, AccountRecord, AccountSource, CooldownMark, InvalidMark } from './account.ts';
import { classifyCredential } from './classify-credential.ts';
import type { DialectMode } from './classify-credential.ts';

export interface AccountState {
  account: Account;
  lastUsedAt?: number;
  coolUntil?: number;
  coolCode?: string;
  invalidReason?: string;
  /** Failures since the last success that did not cool the account down (they lower its rank). */
  failures: number;
  isLive: boolean;
  /** When the store record was last confirmed (bearer accounts are re-confirmed now and then). */
  confirmedAt: number;
}

export interface AccountDirectoryOptions {
  store: StateStore;
  dialectMode: DialectMode;
  clock: () => number;
  log?: StoreLog;
  /** Bearer accounts kept in memory at most; the least recently used idle ones are forgotten first. Default 10 000. */
  maxBearerAccounts?: number;
  /** Whether an account has requests in flight (those are never forgotten). */
  isBusy: (accountId: string) => boolean;
}

export interface AccountDirectory {
  readonly states: ReadonlyMap<string, AccountState>;
  serverAccounts(): Account[];
  /** Classifies the token and makes sure its account exists; an existing record keeps its (rotated) token. */
  ensure(token: string, source: AccountSource, label: string): Promise<Account>;
  remove(accountId: string): Promise<void>;
  /** Re-reads account records and marks from the store. */
  reload(): Promise<void>;
  /** Brings one account's cooldown and invalid marks up to date from the store. */
  refreshMarks(accountId: string): Promise<void>;
}

/** Bearer accounts are re-confirmed in the store after this long (their record may have expired meanwhile). */
const CONFIRM_AFTER_MS = 10 * 60_000;

export function createAccountDirectory(options: AccountDirectoryOptions): AccountDirectory {
  const { store, dialectMode, clock, log = silentLog, maxBearerAccounts = 10_000 } = options;
  const states = new Map<string, AccountState>();
  const serverIds = new Set<string>();
  /** Ids seen in the store that belong to other clients' Bearer tokens: not read again on reload. */
  const foreignBearerIds = new Set<string>();

  function upsert(record: AccountRecord): AccountState {
    const existing = states.get(record.id);
    if (existing) {
      existing.account = accountFromRecord(record);
      existing.confirmedAt = clock();
      return existing;
    }
    const state: AccountState = { account: accountFromRecord(record), failures: 0, isLive: false, confirmedAt: clock() };
    states.set(record.id, state);
    if (record.source !== 'bearer') serverIds.add(record.id);
    else forgetIdleBearers();
    return state;
  }

  function forgetIdleBearers(): void {
    const bearers = [...states.values()].filter((state) => state.account.source === 'bearer');
    if (bearers.length <= maxBearerAccounts) return;
    bearers
      .filter((state) => !options.isBusy(state.account.id))
      .sort((a, b) => (a.lastUsedAt ?? 0) - (b.lastUsedAt ?? 0))
      .slice(0, bearers.length - maxBearerAccounts)
      .forEach((state) => states.delete(state.account.id));
  }

  async function refreshMarks(accountId: string): Promise<void> {
    const state = states.get(accountId);
    if (!state) return;
    const [cooldown, invalid] = await Promise.all([
      getJson<CooldownMark>(store, storeKeys.cooldown(accountId), log),
      getJson<InvalidMark>(store, storeKeys.invalid(accountId), log),
    ]);
    if (cooldown && cooldown.until > (state.coolUntil ?? 0)) {
      state.coolUntil = cooldown.until;
      state.coolCode = cooldown.code;
    }
    state.invalidReason = invalid?.reason;
  }

  async function ensure(token: string, source: AccountSource, label: string): Promise<Account> {
    const credential = classifyCredential(token, { dialectMode, label, now: clock() });
    const id = accountIdFor(credential.token);
    const known = states.get(id);
    const isUpgrade = source !== 'bearer' && known?.account.source === 'bearer';
    if (known && !isUpgrade && clock() - known.confirmedAt < CONFIRM_AFTER_MS) return known.account;
    const record = newAccountRecord(credential, source, clock());
    const key = storeKeys.account(id);
    const isNew = await store.compareAndSet(key, undefined, JSON.stringify(record), { durable: true, ttlMs: recordTtlMs(record) });
    let stored: AccountRecord | undefined = record;
    if (!isNew) {
      stored = isUpgrade || (source !== 'bearer' && !known)
        ? await updateAccountRecord(store, id, (current) => (current.source === 'bearer' ? { ...current, source } : current), { durable: true })
        : await readAccountRecord(store, id, log);
    }
    if (isNew && credential.isShortLived) {
      const minutes = credential.expiresAt === undefined ? undefined : Math.round((credential.expiresAt - clock()) / 60_000);
      log.warn({ accountId: id, expiresInMinutes: minutes }, 'this Kimi token is a short-lived access token; give the refresh token to keep the account working (§9 D2)');
    }
    const state = upsert(stored ?? record);
    if (state.account.source !== 'bearer') serverIds.add(id);
    foreignBearerIds.delete(id);
    if (!isNew) await refreshMarks(id);
    return state.account;
  }

  async function reload(): Promise<void> {
    const keys = await store.scan(storeKeys.accountPrefix);
    const storedIds = new Set(keys.map((key) => key.slice(storeKeys.accountPrefix.length)));
    for (const id of storedIds) {
      if (foreignBearerIds.has(id) || (states.get(id)?.account.source === 'bearer')) continue;
      const record = await readAccountRecord(store, id, log);
      if (!record) continue;
      if (record.source === 'bearer' && !states.has(id)) {
        foreignBearerIds.add(id);
        continue;
      }
      if (!serverIds.has(id)) log.info({ accountId: id, dialect: record.dialect }, 'kimi account picked up from the state store');
      upsert(record);
    }
    for (const id of serverIds) {
      if (storedIds.has(id)) continue;
      serverIds.delete(id);
      if (!options.isBusy(id)) states.delete(id);
    }
    for (const id of foreignBearerIds) if (!storedIds.has(id)) foreignBearerIds.delete(id);
    await Promise.all([...serverIds].map((id) => refreshMarks(id)));
  }

  return {
    states,
    serverAccounts: () => [...serverIds].flatMap((id) => states.get(id)?.account ?? []),
    ensure,
    reload,
    refreshMarks,
    async remove(accountId) {
      for (const key of [storeKeys.account, storeKeys.session, storeKeys.cooldown, storeKeys.invalid]) {
        await store.delete(key(accountId));
      }
      serverIds.delete(accountId);
      states.delete(accountId);
    },
  };
}
