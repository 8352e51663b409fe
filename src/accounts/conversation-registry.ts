/**
 * @module accounts/conversation-registry
 * Conversation affinity (`conv:<id>` → the account that created the chat) and the deletion of temporary chats
 * (protocol spec §10.3, contract `CHAT_RETENTION_SECONDS`). Pending deletions live in the store (`del:<id>`), so a
 * restart still deletes them; a sweeper deletes due ones, one replica per chat (lock `lock:del:<id>`). Chats the
 * gateway did not create are never scheduled.
 */
import { NotFoundError } from '../errors.ts';
import { getJson, parseStoredJson, setJson, silentLog } from '../store/state-store.ts';
import type { StateStore, StoreLog } from '../store/state-store.ts';
import { storeKeys } from './account.ts';

export interface ConversationRecord {
  accountId: string;
  /** Latest assistant message id, the parent of the next turn. */
  parentMessageId?: string;
  /** True when the gateway created the chat (only those may be deleted). */
  createdByGateway: boolean;
  /** When the chat is due for deletion (epoch ms), if scheduled. */
  deleteAfter?: number;
  /**
   * A turn failed after it reached Kimi, without the gateway learning the id of the answer Kimi may have started: the
   * next turn's parent must be Kimi's latest assistant message (§3.8), so it is looked up first.
   */
  isParentUnconfirmed?: boolean;
}

interface DeletionJob {
  conversationId: string;
  accountId: string;
  atMs: number;
  attempts: number;
}

export type DeleteConversation = (accountId: string, conversationId: string, signal: AbortSignal) => Promise<void>;

export interface ConversationRegistryOptions {
  store: StateStore;
  deleteConversation: DeleteConversation;
  /** True while a request is using the chat; a busy chat is not deleted under its feet. */
  isBusy: (conversationId: string) => boolean;
  /**
   * Marks the chat busy while it is being deleted, so that a turn arriving meanwhile is refused (409) instead of
   * continuing a chat on its way out; undefined when it is busy already. Returns the release.
   */
  hold: (conversationId: string) => (() => void) | undefined;
  clock?: () => number;
  log?: StoreLog;
  /** Upper bound of one upstream delete call. Default 30 000 ms. */
  deleteTimeoutMs?: number;
  /** Give up on a chat after this many failed deletions. Default 5. */
  maxDeleteAttempts?: number;
}

export interface ConversationRegistry {
  /** Writes the chat's whole record, no reads; with `deleteAt` (chats the gateway created only), first its deletion job. */
  bind(conversationId: string, accountId: string, details: { parentMessageId?: string; createdByGateway: boolean; deleteAt?: number; isParentUnconfirmed?: boolean }): Promise<void>;
  get(conversationId: string): Promise<ConversationRecord | undefined>;
  /** Writes the chat's deletion job for `atMs`, no reads: the caller knows the chat is the gateway's and whose it is. */
  postponeDeletion(conversationId: string, accountId: string, atMs: number): Promise<void>;
  /** `known`: the chat's record as just read (saves reading it again). */
  cancelDeletion(conversationId: string, known?: ConversationRecord): Promise<void>;
  /** Deletes every due chat now; returns how many were deleted. */
  sweep(): Promise<number>;
}

/** The deletion time for a retention setting (§10.3): -1 keeps the chat (undefined), 0 deletes it now. */
export function deletionTimeFor(retentionSeconds: number, nowMs: number): number | undefined {
  if (retentionSeconds < 0) return undefined;
  return nowMs + retentionSeconds * 1000;
}

export function createConversationRegistry(options: ConversationRegistryOptions): ConversationRegistry {
  const { store, clock = Date.now, log = silentLog, deleteTimeoutMs = 30_000, maxDeleteAttempts = 5 } = options;
  const get = (conversationId: string): Promise<ConversationRecord | undefined> =>
    getJson<ConversationRecord>(store, storeKeys.conversation(conversationId), log);

  async function forget(conversationId: string): Promise<void> {
    await store.delete(storeKeys.deletion(conversationId));
    await store.delete(storeKeys.conversation(conversationId));
  }

  async function runJob(job: DeletionJob): Promise<boolean> {
    const lock = await store.acquireLock(storeKeys.deletionLock(job.conversationId), deleteTimeoutMs + 5_000);
    if (!lock) return false; // another replica is deleting it
    try {
      const key = storeKeys.deletion(job.conversationId);
      const text = await store.get(key);
      const current = parseStoredJson<DeletionJob>(text, key, log);
      // Continued meanwhile (its job moved out).
      if (!current || current.atMs > clock()) return false;
      // A turn on it started here while the lock was being taken; else none may start until the delete is over.
      const release = options.hold(job.conversationId);
      if (!release) return false;
      try {
        try {
          await options.deleteConversation(current.accountId, current.conversationId, AbortSignal.timeout(deleteTimeoutMs));
        } catch (error) {
          if (!(error instanceof NotFoundError)) return await retryLater(current, text!, error);
        }
        await forget(current.conversationId);
        return true;
      } finally {
        release();
      }
    } finally {
      await lock.release();
    }
  }

  /**
   * After a failed delete, only if the job is still the one that was read (`read`, its stored text): a turn that
   * started on the chat meanwhile (here or on another replica) has moved it out, and its time must win.
   */
  async function retryLater(job: DeletionJob, read: string, error: unknown): Promise<boolean> {
    const key = storeKeys.deletion(job.conversationId);
    const attempts = job.attempts + 1;
    const details = { accountId: job.accountId, conversationId: job.conversationId, attempts, err: String(error) };
    if (attempts >= maxDeleteAttempts) {
      log.warn(details, 'giving up deleting a temporary chat');
      if (await store.compareAndDelete(key, read)) await store.delete(storeKeys.conversation(job.conversationId));
      return false;
    }
    log.warn(details, 'deleting a temporary chat failed; will retry');
    const next: DeletionJob = { ...job, attempts, atMs: clock() + 60_000 * 2 ** (attempts - 1) };
    await store.compareAndSet(key, read, JSON.stringify(next));
    return false;
  }

  return {
    get,
    async bind(conversationId, accountId, details) {
      const record: ConversationRecord = { accountId, createdByGateway: details.createdByGateway };
      if (details.parentMessageId) record.parentMessageId = details.parentMessageId;
      if (details.isParentUnconfirmed) record.isParentUnconfirmed = true;
      if (details.deleteAt !== undefined && details.createdByGateway) {
        // The job first: a crash between the two writes still deletes the chat.
        const job: DeletionJob = { conversationId, accountId, atMs: details.deleteAt, attempts: 0 };
        await setJson(store, storeKeys.deletion(conversationId), job);
        record.deleteAfter = details.deleteAt;
      }
      await setJson(store, storeKeys.conversation(conversationId), record);
    },
    async postponeDeletion(conversationId, accountId, atMs) {
      const job: DeletionJob = { conversationId, accountId, atMs, attempts: 0 };
      await setJson(store, storeKeys.deletion(conversationId), job);
    },
    async cancelDeletion(conversationId, known) {
      const record = known ?? (await get(conversationId));
      // The job goes whatever the record says: after a crash between bind's two writes, a job may exist without it.
      // The two writes may land in either order (one round trip, not two): if only the record's lands, the old job
      // still deletes the chat, which is where it was before the call; if only the job's delete lands, the chat is
      // kept, as asked, and its record merely still shows a time.
      const writes: Promise<void>[] = [store.delete(storeKeys.deletion(conversationId))];
      if (record?.deleteAfter !== undefined) {
        const { deleteAfter: _dropped, ...rest } = record;
        writes.push(setJson(store, storeKeys.conversation(conversationId), rest));
      }
      await Promise.all(writes);
    },
    async sweep() {
      let deleted = 0;
      for (const key of await store.scan(storeKeys.deletionPrefix)) {
        const job = await getJson<DeletionJob>(store, key, log);
        if (!job || job.atMs > clock() || options.isBusy(job.conversationId)) continue;
        try {
          if (await runJob(job)) deleted += 1;
        } catch (error) {
          log.warn({ conversationId: job.conversationId, err: String(error) }, 'deletion sweep step failed');
        }
      }
      return deleted;
    },
  };
}
