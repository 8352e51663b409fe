/**
 * @module chat/chat-ports
 * What the chat use case needs from its collaborators, as interfaces: the account pool (leases,
 * conversation records, scheduled deletions) and the attachment opener. main.ts supplies the
 * implementations; tests can supply their own.
 */
import type { DialectName, Session, UploadSource } from '../upstream/dialect.ts';
import type { AttachmentReference, ChatRequest } from './chat-request.ts';

export interface AccountRef {
  readonly id: string;
  readonly dialect: DialectName;
}

export interface AccountLease {
  readonly account: AccountRef;
  session(signal: AbortSignal): Promise<Session>;
  /** One refresh after the upstream refused the access token; throws when the account is dead. */
  refreshAfterAuthFailure(signal: AbortSignal): Promise<Session>;
  /** Cools the account down or marks it invalid, according to the error. */
  reportFailure(error: unknown): Promise<void>;
  reportSuccess(): void;
  release(): void;
}

export interface ConversationRecord {
  accountId: string;
  parentMessageId?: string;
  /** Only chats the gateway created are ever deleted (protocol spec §10.3). */
  createdByGateway: boolean;
  /** When the chat is due for deletion (epoch ms), if scheduled. */
  deleteAfter?: number;
  /**
   * A turn failed after it reached Kimi, without the gateway learning the id of the answer Kimi may have started: the
   * next turn's parent must be Kimi's latest assistant message (§3.8), so it is looked up first.
   */
  isParentUnconfirmed?: boolean;
}

export interface LeaseOptions {
  candidates: readonly AccountRef[];
  /** When set, only this account is used. */
  accountId?: string;
  /** The chat being continued and its account, as read from its record: one stream per chat at a time. */
  conversation?: { id: string; accountId: string };
  exclude: ReadonlySet<string>;
  signal: AbortSignal;
}

export interface AccountDirectory {
  /** Accounts a request may use: its own bearer tokens, or the server pool when bearerTokens is undefined. */
  candidates(bearerTokens: readonly string[] | undefined): Promise<AccountRef[]>;
  lease(options: LeaseOptions): Promise<AccountLease>;
  getConversation(conversationId: string): Promise<ConversationRecord | undefined>;
  /**
   * Writes the chat's whole record, and first (so that a crash in between still deletes the chat) its deletion
   * job at `deleteAtMs` when given. No reads: the caller knows the record, so a turn costs one or two writes.
   */
  recordConversation(conversationId: string, record: ConversationRecord, deleteAtMs?: number): Promise<void>;
  /** Moves the chat's deletion job to `atMs` (one write, no reads): the chat is being continued. */
  postponeDeletion(conversationId: string, accountId: string, atMs: number): Promise<void>;
  /** Forgets a scheduled deletion (the chat is now kept for good); `record` is the one getConversation returned. */
  cancelDeletion(conversationId: string, record: ConversationRecord): Promise<void>;
}

export interface OpenedAttachment extends UploadSource {
  release(): void;
}

export interface AttachmentOpener {
  /** `spool` resolves the request's `kfa-spool:` placeholders (attachment strings spooled to disk). */
  open(reference: AttachmentReference, signal: AbortSignal, spool?: ChatRequest['spool']): Promise<OpenedAttachment>;
}

/** An account as operators see it (status page, GET /v1/accounts, `check`): never a token. */
export interface AccountView {
  id: string;
  dialect: DialectName;
  state: 'live' | 'cooling' | 'invalid' | 'unknown';
  source: string;
  inFlight: number;
  isShortLived: boolean;
  cooldownUntil?: number;
  accessExpiresAt?: number;
  refreshExpiresAt?: number;
  lastRefreshAt?: number;
  lastUsedAt?: number;
  invalidReason?: string;
  /** Plan usage where the upstream reports it (current dialect), refreshed every few minutes. */
  quota?: { label: string; used: number; limit: number; resetAt?: number; plan?: string };
}
