/**
 * @module accounts/account-pool-types
 * The account pool's contract, types only: its options, the lease a request holds on an account, and the pool
 * API that the chat service, the HTTP routes and the CLI use. account-pool.ts implements it.
 */
import type { DialectName, KimiDialect, Session } from '../upstream/dialect.ts';
import type { StateStore, StoreLog } from '../store/state-store.ts';
import type { Account } from './account.ts';
import type { AccountCheck, AccountSnapshot } from './account-status.ts';
import type { DialectMode } from './classify-credential.ts';
import type { ConversationRecord, DeleteConversation } from './conversation-registry.ts';

/**
 * Error code `lease` uses when every candidate has been tried; the caller then answers with the last upstream
 * error instead (the failover policy itself lives in the chat service, which knows about first bytes).
 */
export const NO_ACCOUNT_LEFT = 'no_account_left';

export interface AccountPoolOptions {
  store: StateStore;
  dialects: Record<DialectName, KimiDialect>;
  /** `KIMI_DIALECT`. Default `auto`. */
  dialectMode?: DialectMode;
  /** Cooldown after a limit or overload without an upstream hint. Default 60 000 ms. */
  cooldownMs?: number;
  /** Cooldown after `insufficient_quota` without a stated reset. Default 3 600 000 ms. */
  quotaCooldownMs?: number;
  /** `ACCOUNT_MAX_CONCURRENCY`. Default 2. */
  accountMaxConcurrency?: number;
  /** `QUEUE_MAX`. Default 100. */
  queueMax?: number;
  /** `QUEUE_TIMEOUT_MS`. Default 30 000. */
  queueTimeoutMs?: number;
  /** Retry-After when the waiting room is full or a wait timed out. Default 1 000 ms. */
  busyRetryAfterMs?: number;
  /** Re-read accounts and marks from the store this often (contract: added accounts appear within 5 s). Default 4 000 ms; 0 disables. */
  reloadIntervalMs?: number;
  /** Look for due chat deletions this often. Default 5 000 ms; 0 disables. */
  sweepIntervalMs?: number;
  /** Deletes a chat upstream; default: the account's dialect `deleteConversation` with a fresh session. */
  deleteConversation?: DeleteConversation;
  /** Proactive refresh margin (spec §3.4). Default 120 000 ms. */
  refreshSkewMs?: number;
  clock?: () => number;
  log?: StoreLog;
  /** Called after each upstream refresh call (metrics). */
  onRefresh?: (result: 'rotated' | 'refreshed' | 'failed') => void;
}

export interface LeaseRequest {
  /** Accounts this request may use; default the server-side pool. */
  candidates?: readonly Account[];
  /** Continue this chat: only its account is used. */
  conversationId?: string;
  /** That chat's account, when the caller has just read its record (saves reading it again). */
  conversationAccountId?: string;
  signal?: AbortSignal;
  /** Account ids not to use (already tried). */
  exclude?: Iterable<string>;
}

export interface Lease {
  readonly account: Account;
  /** A usable session. Use `dialects[session.dialect]` for the call: the account's dialect may have changed. */
  session(signal?: AbortSignal): Promise<Session>;
  /** After an upstream 401: one refresh; throws AuthenticationError (account marked invalid) when it fails. */
  refreshAfterAuthFailure(signal?: AbortSignal): Promise<Session>;
  reportSuccess(): void;
  /** Cools the account down (limits, overload, quota) or marks it invalid (auth), as the error says. */
  reportFailure(error: unknown): Promise<void>;
  /** Frees the slot; call exactly when the request is over. Idempotent. */
  release(): void;
}

export interface AccountPool {
  addServerAccounts(tokens: readonly string[]): Promise<Account[]>;
  addAccount(token: string, options?: { source?: 'added' | 'server' }): Promise<Account>;
  removeAccount(accountId: string): Promise<void>;
  /** Per-request accounts (`Authorization: Bearer T1,T2`), with ids, state and rotation like server ones. */
  accountsFromBearer(tokens: readonly string[]): Promise<Account[]>;
  serverAccounts(): Account[];
  lease(request?: LeaseRequest): Promise<Lease>;
  bindConversation(conversationId: string, accountId: string, details: { parentMessageId?: string; createdByGateway: boolean; deleteAt?: number; isParentUnconfirmed?: boolean }): Promise<void>;
  getConversation(conversationId: string): Promise<ConversationRecord | undefined>;
  /** Writes the chat's deletion job for `atMs`, no reads: the caller knows the chat is the gateway's and whose it is. */
  postponeDeletion(conversationId: string, accountId: string, atMs: number): Promise<void>;
  /** `known`: the chat's record as just read (saves reading it again). */
  cancelDeletion(conversationId: string, known?: ConversationRecord): Promise<void>;
  sweepDeletions(): Promise<number>;
  snapshot(accounts?: readonly Account[]): Promise<AccountSnapshot[]>;
  /** Probes each account live (refresh + current-user call); for `check` and `add-account`. */
  checkAccounts(accounts?: readonly Account[], signal?: AbortSignal): Promise<AccountCheck[]>;
  /** Re-reads accounts and marks from the store (also runs on an interval). */
  reload(): Promise<void>;
  close(): Promise<void>;
}
