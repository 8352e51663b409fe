/**
 * @module chat/chat-service
 * The chat use case: resolve the model, build the prompt, pick an account, upload attachments, open
 * the dialect stream and hand its events on. Fails over to another account only before the first
 * content event; cleans up temporary chats (protocol spec §10.3) however the answer ends.
 */
import { AuthenticationError, GatewayError, NotFoundError, RateLimitError, UpstreamTimeoutError, isAbortError, type RateLimitCode } from '../errors.ts';
import type { ChatEvent, ChatEventBatch, DialectName, KimiDialect, ModelChoice, Session, UploadedFile } from '../upstream/dialect.ts';
import { buildPrompt, type BuiltPrompt } from './build-prompt.ts';
import type { AccountDirectory, AccountLease, AccountRef, AttachmentOpener, ConversationRecord, OpenedAttachment } from './chat-ports.ts';
import type { ChatRequest } from './chat-request.ts';
import { estimateTokens } from './estimate-tokens.ts';
import { holdAbort } from './held-abort.ts';
import type { ModelCatalog } from './model-catalog.ts';

export interface ChatLog {
  info(record: object, message: string): void;
  warn(record: object, message: string): void;
}

export interface ChatServiceOptions {
  dialects: Partial<Record<DialectName, KimiDialect>>;
  accounts: AccountDirectory;
  attachments: AttachmentOpener;
  catalog: ModelCatalog;
  /** CHAT_RETENTION_SECONDS: 0 deletes when the answer ends, -1 keeps, otherwise delete after that long. */
  retentionSeconds: number;
  maxAttempts: number;
  attemptBudgetMs: number;
  log: ChatLog;
  clock?: () => number;
  /** Called for every failed attempt (metrics by error kind and dialect). */
  onAttemptError?: (error: unknown, dialect: DialectName) => void;
}

export interface ChatStream {
  model: ModelChoice;
  /** The requested name matched nothing known; the default model answers. */
  modelIsFallback: boolean;
  /** The answer's events in batches (`eachEvent` takes them one by one). */
  batches: AsyncIterable<ChatEventBatch>;
  /** Filled in while the stream runs: the account that answered (for the request log). */
  readonly meta: { accountId?: string; attempts: number };
}

export interface ChatService {
  streamChat(request: ChatRequest, signal: AbortSignal): ChatStream;
  /** Deletes an upstream chat now (used by the deletion sweeper). */
  deleteConversation(account: AccountRef, conversationId: string, session: Session): Promise<void>;
  /** Resolves when background clean-ups (chat deletions) have finished. */
  idle(): Promise<void>;
}

interface AttemptOutcome {
  conversationId?: string;
  messageId?: string;
  /** The chat request left for Kimi: from then on Kimi may have started an answer the gateway never heard of. */
  hasSentRequest?: boolean;
  /** Kimi's stream began (its first frames arrived). */
  hasStreamStarted?: boolean;
  /** How the attempt failed, when it did (a consumer that left ends it without one). */
  error?: unknown;
  /** The deletion job written as soon as a new chat was named, so that a crash mid-turn still deletes it. */
  provisionalDeletion?: Promise<void>;
}

export function createChatService(options: ChatServiceOptions): ChatService {
  const clock = options.clock ?? Date.now;
  const background = new Set<Promise<unknown>>();

  function track(task: Promise<unknown>): void {
    const guarded = task.catch((error: unknown) => options.log.warn({ err: error }, 'background clean-up failed'));
    background.add(guarded);
    void guarded.finally(() => background.delete(guarded));
  }

  /** By the session's dialect: an account may move from legacy to current after a fallback refresh (§10.1). */
  function dialectFor(name: DialectName): KimiDialect {
    const dialect = options.dialects[name];
    if (!dialect) throw new GatewayError({ status: 500, type: 'server_error', code: 'dialect_unavailable', message: `The ${name} dialect is not enabled.` });
    return dialect;
  }

  function streamChat(request: ChatRequest, signal: AbortSignal): ChatStream {
    const resolved = options.catalog.resolve(request.model, { useSearch: request.useSearch });
    const meta: ChatStream['meta'] = { attempts: 0 };
    return { model: resolved.choice, modelIsFallback: resolved.isFallback, meta, batches: run(request, resolved.choice, signal, meta) };
  }

  async function* run(request: ChatRequest, model: ModelChoice, signal: AbortSignal, meta: ChatStream['meta']): AsyncGenerator<ChatEventBatch> {
    const prompt = buildPrompt(request.messages, { isContinuation: request.conversationId !== undefined, instructions: request.instructions });
    const candidates = await options.accounts.candidates(request.bearerTokens);
    const continued = request.conversationId
      ? await findConversation(request.conversationId, candidates, signal)
      : undefined;
    // Fetched (headers checked, type sniffed) before an account is leased: a slow attachment server must not hold an
    // account's slot. Their bytes stream during the first attempt's upload.
    const firstOpened = prompt.attachments.length > 0 ? await openAttachments(prompt, signal, request.spool) : undefined;
    try {
      const exclude = new Set<string>();
      const startedAt = clock();
      // Counted once per request, while the first upstream call is in flight.
      const promptEstimate = request.estimateUsage !== false ? estimateWhileWaiting(prompt.text) : undefined;
      let lastError: unknown;
      let soonestRetryAfterMs = Number.POSITIVE_INFINITY;
      for (let attempt = 1; attempt <= options.maxAttempts; attempt += 1) {
        if (attempt > 1 && clock() - startedAt > options.attemptBudgetMs) break;
        // A later attempt reads the files again (a body is read once), also before its lease: a slow file server must
        // not hold the next account's slot either.
        const opened = attempt === 1 ? firstOpened : prompt.attachments.length > 0 ? await openAttachments(prompt, signal, request.spool) : undefined;
        let lease: AccountLease;
        try {
          lease = await options.accounts.lease({ candidates, conversation: continued && { id: continued.id, accountId: continued.record.accountId }, exclude, signal });
        } catch (error) {
          for (const attachment of opened ?? []) attachment.release();
          // Every account has been tried: the last upstream failure says more than "no account left".
          if (lastError !== undefined && (error as GatewayError).code === 'no_account_left') throw withSoonestRetry(lastError, soonestRetryAfterMs);
          throw error;
        }
        meta.accountId = lease.account.id;
        meta.attempts = attempt;
        const pending: ChatEvent[] = [];
        let hasDelivered = false;
        const outcome: AttemptOutcome = {};
        let isSuccess = false;
        let batches: AsyncGenerator<ChatEventBatch> | undefined;
        try {
          batches = attemptOnce(lease, prompt, model, continued, signal, outcome, { spool: request.spool, promptEstimate, opened });
          // Hold events until the first content: until then a failure may still move to another account.
          for (let step = await batches.next(); !step.done; step = await batches.next()) {
            pending.push(...step.value);
            if (step.value.some(isContentEvent)) {
              hasDelivered = true;
              break;
            }
          }
          if (pending.length > 0) yield pending.splice(0);
          // Then delegate: one generator hop less per batch than re-yielding in a loop.
          if (hasDelivered) yield* batches;
          isSuccess = true;
          lease.reportSuccess();
          return;
        } catch (error) {
          lastError = error;
          outcome.error = error;
          if (error instanceof RateLimitError && error.retryAfterMs !== undefined) soonestRetryAfterMs = Math.min(soonestRetryAfterMs, error.retryAfterMs);
          if (!isAbortError(error)) options.onAttemptError?.(error, lease.account.dialect);
          // Whatever happens to this request next, the pool learns what the account was told (a cooldown, a refused
          // token): a continued turn or an answer cut after its first text must not leave a limited account in use.
          if (!isAbortError(error) && !signal.aborted) await lease.reportFailure(error);
          if (hasDelivered || isAbortError(error) || signal.aborted || continued || !canFailOver(error)) throw error;
          exclude.add(lease.account.id);
          options.log.warn({ account: lease.account.id, code: (error as GatewayError).code, attempt }, 'attempt failed before the first byte; trying another account');
        } finally {
          // A consumer that left while the held events were handed over never reached the attempt: close it, so
          // the upstream body is released with the lease rather than at its idle timeout.
          await batches?.return(undefined).catch(() => undefined);
          await finishConversation(lease, outcome, continued, hasDelivered || isSuccess);
          lease.release();
        }
      }
      throw withSoonestRetry(lastError, soonestRetryAfterMs);
    } finally {
      // The first attempt released them after its upload; this covers an attempt that never got that far (release is idempotent).
      for (const attachment of firstOpened ?? []) attachment.release();
    }
  }

  async function* attemptOnce(
    lease: AccountLease,
    prompt: BuiltPrompt,
    model: ModelChoice,
    continued: { id: string; record: ConversationRecord } | undefined,
    signal: AbortSignal,
    outcome: AttemptOutcome,
    request: { spool: ChatRequest['spool']; promptEstimate: Promise<number> | undefined; opened: OpenedAttachment[] | undefined },
  ): AsyncGenerator<ChatEventBatch> {
    // Only now, with the chat's lease held: a turn that never got one leaves the chat's schedule as it was.
    if (continued) await keepWhileAnswering(continued);
    let opened = request.opened ?? (prompt.attachments.length > 0 ? await openAttachments(prompt, signal, request.spool) : []);
    let session: Session;
    let files: UploadedFile[];
    try {
      session = await lease.session(signal);
      try {
        files = await uploadAll(dialectFor(session.dialect), session, opened, signal);
      } catch (error) {
        if (!isRefusedAccessToken(error)) throw error;
        // Kimi refused the access token during an upload: one refresh, then the uploads again from fresh reads of
        // the files (a body is read once), as for the chat itself (spec §3.4).
        for (const attachment of opened) attachment.release();
        opened = await openAttachments(prompt, signal, request.spool);
        session = await lease.refreshAfterAuthFailure(signal);
        files = await uploadAll(dialectFor(session.dialect), session, opened, signal);
      }
    } finally {
      // Also when no session could be had: an opened attachment holds a connection or a temporary file.
      for (const attachment of opened) attachment.release();
    }
    const dialect = dialectFor(session.dialect);
    const kimiPrompt = {
      text: prompt.text,
      model,
      files,
      conversation: continued ? { id: continued.id, parentMessageId: continued.record.parentMessageId } : undefined,
    };
    const citations = model.silentSearch ? 'strip' : 'numbered';
    const { promptEstimate } = request;
    let hasContent = false;
    const outputParts: string[] = [];
    const sources: { index: number; title: string; url: string }[] = [];
    for (let authRetry = 0; ; authRetry += 1) {
      // A client that leaves before Kimi names the new chat would leave it behind: the call outlives it until then.
      const upstream = holdAbort(signal, chatIdWaitMs, continued !== undefined);
      try {
        outcome.hasSentRequest = true;
        for await (const batch of dialect.streamReply(session, kimiPrompt, { citations }, upstream.signal)) {
          outcome.hasStreamStarted = true;
          const out: ChatEvent[] = [];
          for (const event of batch) {
            if (event.type === 'conversation-start') {
              outcome.conversationId = event.conversationId;
              upstream.release();
              if (!continued) scheduleProvisionalDeletion(lease, outcome);
            }
            if (event.type === 'message-start') outcome.messageId = event.messageId;
            if (event.type === 'text-delta' || event.type === 'reasoning-delta') {
              hasContent = true;
              outputParts.push(event.text);
            }
            if (event.type === 'search-source') sources.push(event.source);
            if (event.type === 'usage') continue;
            if (event.type === 'finish') {
              const sourceList = !model.silentSearch && sources.length > 0 ? formatSources(sources) : '';
              if (sourceList) {
                outputParts.push(sourceList);
                out.push({ type: 'text-delta', text: sourceList });
              }
              if (promptEstimate) {
                // What this read carried goes out now; only the usage and the finish wait for the count.
                if (out.length > 0) yield out.splice(0);
                const [promptTokens, completionTokens] = await Promise.all([promptEstimate, estimateTokens(outputParts.join(''))]);
                out.push({ type: 'usage', promptTokens, completionTokens, isEstimate: true });
              }
            }
            out.push(event);
          }
          if (out.length > 0) yield out;
        }
        return;
      } catch (error) {
        const mayRefresh = isRefusedAccessToken(error) && !hasContent && authRetry === 0;
        if (!mayRefresh) throw error;
        // The access token was refused: one refresh, then the same request again (spec §3.4).
        session = await lease.refreshAfterAuthFailure(signal);
        // A chat the refused attempt created (the legacy dialect creates it first) would be left behind: the retry
        // makes its own, which is the one kept for continuation.
        if (outcome.conversationId && !continued) {
          if (options.retentionSeconds >= 0) track(deleteConversation(lease.account, outcome.conversationId, session));
          outcome.conversationId = undefined;
          outcome.messageId = undefined;
        }
      } finally {
        upstream.dispose();
      }
    }
  }

  async function openAttachments(prompt: BuiltPrompt, signal: AbortSignal, spool: ChatRequest['spool']): Promise<OpenedAttachment[]> {
    const opened: OpenedAttachment[] = [];
    try {
      // Open (and so validate) every attachment before any upload: a refused URL makes no upstream call.
      for (const reference of prompt.attachments) opened.push(await options.attachments.open(reference, signal, spool));
      return opened;
    } catch (error) {
      for (const attachment of opened) attachment.release();
      throw error;
    }
  }

  async function uploadAll(dialect: KimiDialect, session: Session, opened: OpenedAttachment[], signal: AbortSignal): Promise<UploadedFile[]> {
    const files: UploadedFile[] = [];
    // Serially: free accounts hit resource limits on parallel uploads (spec §3.10).
    for (const attachment of opened) files.push(await dialect.uploadFile(session, attachment, signal));
    return files;
  }

  async function findConversation(conversationId: string, candidates: AccountRef[], signal: AbortSignal) {
    const record = await options.accounts.getConversation(conversationId);
    if (record) {
      if (!candidates.some((account) => account.id === record.accountId)) {
        throw new NotFoundError(`Conversation ${conversationId} belongs to an account this request may not use.`, { code: 'conversation_not_found', param: 'conversation_id' });
      }
      return { id: conversationId, record: record.isParentUnconfirmed ? await confirmParent(conversationId, record, candidates, signal) : record };
    }
    // A chat made in the web app: find which of the request's accounts holds it (never deleted by us).
    let lastError: unknown;
    for (const account of candidates) {
      const lease = await options.accounts.lease({ candidates, accountId: account.id, exclude: new Set(), signal });
      try {
        const session = await lease.session(signal);
        const state = await dialectFor(session.dialect).findConversation(session, conversationId, signal);
        const found: ConversationRecord = { accountId: account.id, parentMessageId: state.lastAssistantMessageId, createdByGateway: false };
        await options.accounts.recordConversation(conversationId, found);
        return { id: conversationId, record: found };
      } catch (error) {
        lastError = error;
        if (!(error instanceof NotFoundError)) throw error;
      } finally {
        lease.release();
      }
    }
    throw lastError instanceof NotFoundError
      ? new NotFoundError(`Conversation ${conversationId} does not exist upstream (or not for these accounts).`, { code: 'conversation_not_found', param: 'conversation_id' })
      : lastError;
  }

  /** Kimi's latest assistant message of a chat whose last turn failed unseen (§3.8), stored as the next parent. */
  async function confirmParent(conversationId: string, record: ConversationRecord, candidates: AccountRef[], signal: AbortSignal): Promise<ConversationRecord> {
    const lease = await options.accounts.lease({ candidates, accountId: record.accountId, exclude: new Set(), signal });
    try {
      const session = await lease.session(signal);
      const state = await dialectFor(session.dialect).findConversation(session, conversationId, signal);
      const { isParentUnconfirmed: _looked, ...rest } = record;
      const confirmed: ConversationRecord = { ...rest, parentMessageId: state.lastAssistantMessageId ?? record.parentMessageId };
      await options.accounts.recordConversation(conversationId, confirmed, record.deleteAfter);
      return confirmed;
    } finally {
      lease.release();
    }
  }

  /** While a turn runs, its chat's deletion waits a day (or the retention, if longer); the turn's end sets the real time. */
  function midTurnDeletionTime(): number {
    return clock() + Math.max(options.retentionSeconds * 1000, turnDeletionGraceMs);
  }

  /**
   * A continued chat must not be deleted while its turn runs, and must still be deleted if this process dies
   * mid-turn: its deletion job moves out by a day (the turn's end sets the real time). Chats kept for good lose
   * any job left from an earlier setting.
   */
  async function keepWhileAnswering(continued: { id: string; record: ConversationRecord }): Promise<void> {
    const { id, record } = continued;
    if (record.createdByGateway && options.retentionSeconds >= 0) {
      await options.accounts.postponeDeletion(id, record.accountId, midTurnDeletionTime());
    } else if (record.deleteAfter !== undefined) {
      await options.accounts.cancelDeletion(id, record);
    }
  }

  async function finishConversation(
    lease: AccountLease,
    outcome: AttemptOutcome,
    continued: { id: string; record: ConversationRecord } | undefined,
    wasAnswered: boolean,
  ): Promise<void> {
    const conversationId = continued?.id ?? outcome.conversationId;
    if (!conversationId) return;
    const createdByGateway = continued ? continued.record.createdByGateway : true;
    // Once Kimi has started an assistant message it keeps it, also when the turn then failed (interrupted): the next
    // turn must follow that message (§3.8), or Kimi refuses the parent and the chat can never be continued.
    const parentMessageId = outcome.messageId ?? continued?.record.parentMessageId;
    // Written before this record, whatever happens below.
    await outcome.provisionalDeletion;
    const record: ConversationRecord = { accountId: lease.account.id, parentMessageId, createdByGateway };
    // An answer Kimi may have started and kept without the gateway hearing its id (a client that left at once, an
    // upstream that went quiet): the next turn looks the parent up rather than be refused for an outdated one.
    if (!wasAnswered && outcome.messageId === undefined && mayHoldUnheardAnswer(outcome)) record.isParentUnconfirmed = true;
    // A continued chat holds earlier answers: a turn that failed keeps it, so the client can retry that turn.
    const isKept = wasAnswered || continued !== undefined;
    // Kept for continuation until then; undefined when kept for good, or when it goes now.
    const deleteAt = isKept && createdByGateway && options.retentionSeconds > 0 ? clock() + options.retentionSeconds * 1000 : undefined;
    // Nobody can continue a new chat that failed before answering, nor any chat when retention is zero: it goes now.
    const goesNow = createdByGateway && options.retentionSeconds >= 0 && deleteAt === undefined;
    try {
      // The record is known in full (the continued one was read at the start), so this writes without reading. A chat
      // that goes now needs none: with CHAT_RETENTION_SECONDS=0 every answer would otherwise leave one for good.
      if (isKept && !goesNow) await options.accounts.recordConversation(conversationId, record, deleteAt);
      if (!goesNow) return;
      const session = await lease.session(AbortSignal.timeout(10_000));
      track(
        deleteWithOneRefresh(lease, conversationId, session).then(async () => {
          // Deleted: the provisional job has nothing left to do. Had the delete failed, the job would retry it.
          if (outcome.provisionalDeletion) await options.accounts.cancelDeletion(conversationId, record);
        }),
      );
    } catch (error) {
      options.log.warn({ err: error, account: lease.account.id }, 'could not record or clean up the conversation');
    }
  }

  /**
   * A new chat is named in the answer's first frames; it is recorded for deletion only when the answer ends. A process
   * that dies before would leave it in the account for good, so its deletion is scheduled at once, a day out (or the
   * retention, if longer), and the answer's end sets the real time. Not awaited: the first text must not wait on the
   * store; finishConversation awaits it before its own writes.
   */
  function scheduleProvisionalDeletion(lease: AccountLease, outcome: AttemptOutcome): void {
    if (options.retentionSeconds < 0 || !outcome.conversationId) return;
    outcome.provisionalDeletion = options.accounts.postponeDeletion(outcome.conversationId, lease.account.id, midTurnDeletionTime()).catch((error: unknown) => {
      options.log.warn({ err: error, account: lease.account.id }, 'could not schedule the deletion of a new chat');
    });
  }

  /** Deletes a finished chat; a refused access token (revoked, or dead before its stated expiry) gets one refresh, as the chat did. */
  async function deleteWithOneRefresh(lease: AccountLease, conversationId: string, session: Session): Promise<void> {
    try {
      await deleteConversation(lease.account, conversationId, session);
    } catch (error) {
      if (!isRefusedAccessToken(error)) throw error;
      await deleteConversation(lease.account, conversationId, await lease.refreshAfterAuthFailure(AbortSignal.timeout(10_000)));
    }
  }

  async function deleteConversation(account: AccountRef, conversationId: string, session: Session): Promise<void> {
    await dialectFor(session.dialect).deleteConversation(session, conversationId, AbortSignal.timeout(15_000));
  }

  async function idle(): Promise<void> {
    while (background.size > 0) await Promise.allSettled([...background]);
  }

  return { streamChat, deleteConversation, idle };
}

/**
 * How long the upstream call may outlive a client that left before Kimi named the new chat: the id comes with the
 * answer's first frames, usually within a second; a stalled upstream is let go after this.
 */
const chatIdWaitMs = 5_000;

/** How far a continued chat's deletion moves out while its turn runs (at least; the retention if longer). */
const turnDeletionGraceMs = 24 * 3_600_000;

/**
 * When every account refused with a wait, the client should come back when the first of them is usable
 * again (contract.md), not when the last one tried is.
 */
function withSoonestRetry(error: unknown, soonestRetryAfterMs: number): unknown {
  if (!(error instanceof RateLimitError) || !(soonestRetryAfterMs < (error.retryAfterMs ?? Number.POSITIVE_INFINITY))) return error;
  return new RateLimitError(error.code as RateLimitCode, error.message, { retryAfterMs: soonestRetryAfterMs, upstreamReason: error.upstreamReason, cause: error });
}

/**
 * Counts the prompt's tokens once the upstream request is on its way (setImmediate runs after this turn's
 * I/O), so the count costs the answer no time. Never an unhandled rejection: the caller awaits it at the end.
 */
function estimateWhileWaiting(text: string): Promise<number> {
  const estimate = new Promise<number>((resolve, reject) => setImmediate(() => estimateTokens(text).then(resolve, reject)));
  estimate.catch(() => undefined);
  return estimate;
}

/** Kimi refused the account's access token: worth one refresh and the same call again (spec §3.4). */
function isRefusedAccessToken(error: unknown): boolean {
  return error instanceof AuthenticationError && error.blamesAccount;
}

/**
 * Whether Kimi may hold an answer to the failed turn that the gateway never heard of: its stream began, or the request
 * left and the attempt ended by a timeout, an abort or a consumer that left. A refusal before the stream (an HTTP
 * status, a Connect error) stored nothing.
 */
function mayHoldUnheardAnswer(outcome: AttemptOutcome): boolean {
  if (!outcome.hasSentRequest) return false;
  if (outcome.hasStreamStarted) return true;
  return !(outcome.error instanceof GatewayError) || outcome.error instanceof UpstreamTimeoutError;
}

function isContentEvent(event: ChatEvent): boolean {
  return event.type === 'text-delta' || event.type === 'reasoning-delta' || event.type === 'finish';
}

/** Only failures that another account could avoid are worth a second attempt. */
function canFailOver(error: unknown): boolean {
  if (!(error instanceof GatewayError)) return false;
  if (error.code === 'conversation_busy' || error.status === 400 || error.status === 404) return false;
  // A token refused even after its one refresh is that account's problem: the next account may well work.
  if (error instanceof AuthenticationError && error.code === 'invalid_token') return true;
  return error.isRetryable || error.blamesAccount;
}

function formatSources(sources: { index: number; title: string; url: string }[]): string {
  const lines = [...sources]
    .sort((left, right) => left.index - right.index)
    .map((source) => `${source.index}. [${source.title.replace(/[[\]]/g, '')}](${source.url})`);
  return `\n\n**Sources**\n${lines.join('\n')}`;
}
