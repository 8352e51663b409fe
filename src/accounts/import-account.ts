/**
 * @module accounts/import-account
 * The one way an operator adds an account (CLI `add-account`, `POST /v1/accounts`, QR login): pick the
 * token out of the pasted text, check it live, then store it. A refused token is not kept, and an
 * earlier refusal does not stop a new attempt from asking Kimi again.
 */
import { InvalidRequestError } from '../errors.ts';
import type { Account } from './account.ts';
import type { AccountCheck, AccountPool } from './account-pool.ts';
import { extractCredential, type CredentialSource } from './extract-credential.ts';

export interface ImportedAccount {
  account: Account;
  check: AccountCheck;
  source: CredentialSource;
  warnings: string[];
}

export async function importAccount(pool: AccountPool, text: string, signal: AbortSignal): Promise<ImportedAccount> {
  const extracted = extractCredential(text);
  const knownIds = new Set((await pool.snapshot()).map((snapshot) => snapshot.id));
  let [account] = await pool.accountsFromBearer([extracted.token]);
  const [before] = await pool.snapshot([account]);
  if (before?.state === 'invalid') {
    // An explicit add is a request to ask Kimi again, not to repeat an old verdict.
    await pool.removeAccount(account.id);
    [account] = await pool.accountsFromBearer([extracted.token]);
  }
  const [check] = await pool.checkAccounts([account], signal);
  if (!check || check.state !== 'live') {
    if (!knownIds.has(account.id)) await pool.removeAccount(account.id);
    const what = extracted.kind === 'unknown' ? 'token' : `${extracted.kind} token`;
    const reason = (check?.error ?? 'the check failed').replace(/\.+$/, '');
    throw new InvalidRequestError(`Kimi did not accept this ${what} (${reason}); nothing was stored.`, { code: 'invalid_token' });
  }
  const stored = await pool.addAccount(extracted.token, { source: 'added' });
  return { account: stored, check, source: extracted.source, warnings: extracted.warnings };
}
