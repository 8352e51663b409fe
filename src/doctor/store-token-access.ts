/**
 * @module doctor/store-token-access
 * The doctor's view of the state store (protocol spec §10.2): it refreshes with the account's latest stored
 * refresh token, not the configured one the gateway rotated long ago, and it writes the token its own refresh
 * rotated — durably, under the same refresh lock as the gateway — so running `doctor` never strands an account.
 */
import { classifyCredential } from '../accounts/classify-credential.ts';
import { accountIdFor, newAccountRecord, readAccountRecord, storeKeys, updateAccountRecord } from '../accounts/account.ts';
import type { StateStore } from '../store/state-store.ts';
import type { DialectName } from '../upstream/dialect.ts';
import type { DoctorTokenAccess } from './account-steps.ts';

export interface StoreTokenAccessOptions {
  dialectMode?: 'auto' | DialectName;
  clock?: () => number;
  /** How long to wait for a refresh another process is doing. Default 10 000 ms. */
  lockWaitMs?: number;
}

export function storeTokenAccess(store: StateStore, options: StoreTokenAccessOptions = {}): DoctorTokenAccess {
  const clock = options.clock ?? Date.now;
  const idOf = (token: string) => accountIdFor(classifyCredential(token, { dialectMode: options.dialectMode }).token);

  return {
    async currentToken(configuredToken) {
      const record = await readAccountRecord(store, idOf(configuredToken));
      return record?.kind === 'refresh' && record.token ? record.token : configuredToken;
    },

    async saveRotation(configuredToken, rotation) {
      const id = idOf(configuredToken);
      const now = clock();
      const change = { token: rotation.refreshToken, dialect: rotation.dialect, lastRefreshAt: now, ...(rotation.refreshExpiresAt ? { refreshExpiresAt: rotation.refreshExpiresAt } : {}) };
      const updated = await updateAccountRecord(store, id, (current) => ({ ...current, ...change }), { durable: true });
      if (updated) return;
      // Never seen by a gateway yet: store it as the gateway would, so its next start uses the rotated token.
      const first = { ...newAccountRecord(classifyCredential(configuredToken, { dialectMode: options.dialectMode, now }), 'server', now), ...change };
      if (!(await store.compareAndSet(storeKeys.account(id), undefined, JSON.stringify(first), { durable: true }))) {
        await updateAccountRecord(store, id, (current) => ({ ...current, ...change }), { durable: true });
      }
    },

    async runExclusive(configuredToken, run) {
      const key = storeKeys.refreshLock(idOf(configuredToken));
      const deadline = clock() + (options.lockWaitMs ?? 10_000);
      let lock = await store.acquireLock(key, 20_000);
      while (!lock && clock() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        lock = await store.acquireLock(key, 20_000);
      }
      try {
        return await run();
      } finally {
        await lock?.release();
      }
    },
  };
}
