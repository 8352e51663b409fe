/**
 * @module accounts/import-account
 * The one way an operator adds an account (CLI `add-account`, `POST /v1/accounts`, QR login): pick the
 * token out of the pasted text, check it live, then store it. A refused token is not kept, an earlier
 * refusal does not stop a new attempt from asking Kimi again, and a refusal never takes away what was
 * stored before the attempt (an account's record holds its latest rotated token, §3.4 / §10.2).
 */
import { InvalidRequestError } from '../errors.ts';
import type { StateStore } from '../store/state-store.ts';
import { accountIdFor, readAccountRecord, storeKeys } from './account.ts';
import type { Account } from './account.ts';
import type { AccountCheck, AccountPool } from './account-pool.ts';
import { classifyCredential } from './classify-credential.ts';
import { extractCredential, type CredentialSource } from './extract-credential.ts';

export interface ImportedAccount {
  account: Account;
  check: AccountCheck;
  source: CredentialSource;
  warnings: string[];
}

export interface ImportOptions {
  /**
   * The pool's state store. With it, an account that is already stored and marked invalid is asked about again
   * (with its stored, possibly rotated, token) and its mark comes back unchanged if Kimi still refuses. Without
   * it such an account is left exactly as it is and reported as invalid.
   */
  store?: StateStore;
}

export async function importAccount(pool: AccountPool, text: string, signal: AbortSignal, options: ImportOptions = {}): Promise<ImportedAccount> {
  const { store } = options;
  const extracted = extractCredential(text);
  const pastedToken = classifyCredential(extracted.token).token;
  const id = accountIdFor(pastedToken);
  // Only what this attempt wrote may be undone: a record that existed before holds the account's live token.
  const wasStored = await isStored(pool, store, id);
  const [account] = await pool.accountsFromBearer([extracted.token]);
  const restoreMark = store ? await liftInvalidMark(store, id) : undefined;
  const [check] = await pool.checkAccounts([account], signal);
  if (check?.state === 'live') {
    const stored = await pool.addAccount(extracted.token, { source: 'added' });
    return { account: stored, check, source: extracted.source, warnings: extracted.warnings };
  }
  let outcome = 'nothing was stored';
  if (wasStored) {
    if (restoreMark) await restoreMark();
    await pool.snapshot([account]); // brings the pool's view of the account back to the restored mark
  } else {
    const record = store ? await readAccountRecord(store, id) : undefined;
    if (record && record.token !== pastedToken) {
      // The check's refresh rotated the token, then a later step failed: the pasted token is dead now, so the new
      // one stays (unlisted, not in the server pool) and a retry with the same text uses it.
      outcome = 'the account was not added; Kimi rotated its token during the check, so run the same add again to retry';
    } else await pool.removeAccount(id);
  }
  throw new InvalidRequestError(`Kimi did not accept this ${describeKind(extracted.kind)} (${refusalReason(id, check)}); ${outcome}.`, {
    code: 'invalid_token',
  });
}

async function isStored(pool: AccountPool, store: StateStore | undefined, id: string): Promise<boolean> {
  if ((await pool.snapshot()).some((snapshot) => snapshot.id === id)) return true;
  return store ? (await store.get(storeKeys.account(id))) !== undefined : false;
}

/** Removes the account's invalid mark so the check asks Kimi again; returns how to put the same mark back. */
async function liftInvalidMark(store: StateStore, id: string): Promise<(() => Promise<void>) | undefined> {
  const key = storeKeys.invalid(id);
  const mark = await store.get(key);
  if (mark === undefined) return undefined;
  await store.delete(key);
  return async () => {
    await store.set(key, mark, { durable: true });
  };
}

function describeKind(kind: 'refresh' | 'access' | 'unknown'): string {
  return kind === 'unknown' ? 'token' : `${kind} token`;
}

function refusalReason(id: string, check: AccountCheck | undefined): string {
  if (check?.error) return check.error.replace(/\.+$/, '');
  if (check?.invalidReason) return `Kimi account ${id} is marked invalid: ${check.invalidReason}`;
  return 'the check failed';
}
