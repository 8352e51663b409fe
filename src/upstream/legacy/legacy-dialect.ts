/**
 * @module upstream/legacy/legacy-dialect
 * KimiDialect for the legacy web app (kimi.moonshot.cn, REST + SSE, protocol spec §2 with §9 D5–D7, D13, D14).
 */
import { z } from 'zod';
import { AuthenticationError, NotFoundError, RateLimitError, UpstreamError } from '../../errors.ts';
import { createProgressDeadline, readBodyRuns, readBodyText, parseJsonSafely, toTransportError, type UpstreamHttp, type UpstreamResponse } from '../upstream-http.ts';
import type { ChatEvent, ChatEventBatch, KimiDialect, KimiPrompt, Session, StreamReplyOptions } from '../dialect.ts';
import { fetchLegacyProfile, legacyHeaders, legacySessionFromAccessToken, refreshLegacySession } from './legacy-auth.ts';
import { completionBody, continuationBody, createChatBody, kimiplusIdFor, legacyModelCatalog } from './legacy-bodies.ts';
import { errorBodyFromJson, legacyErrorFromBody } from './legacy-errors.ts';
import { decideAfterSegment, initialLegacyStreamState, mapLegacyPayload, startNextSegment, type LegacyStreamState } from './legacy-events.ts';
import { callLegacyJson, discardBody, sendLegacy, type LegacyContext } from './legacy-rest.ts';
import { parseDataField, readSseMessageBatches, type LegacyUnknownHandler } from './legacy-sse.ts';
import { uploadLegacyFile } from './legacy-upload.ts';

export interface LegacyDialectOptions {
  /** Legacy origin, e.g. `https://kimi.moonshot.cn` (contract: KIMI_LEGACY_BASE_URL). */
  baseUrl: string;
  http: UpstreamHttp;
  /** R-Timezone header (§2.1). Default `Asia/Shanghai`, the zone of the web app's users. */
  timeZone?: string;
  /** Automatic `continue` requests after a `length` cut before finishing with reason `length`. Default 3. */
  maxContinuations?: number;
  /** Upper bound for waiting on document parsing (§2.3). Default 120000. */
  parseTimeoutMs?: number;
  /** First pause between parse polls. Default 500. */
  parsePollInitialMs?: number;
  /** Called with unknown event names and unreadable payloads (never their content). */
  onUnknown?: LegacyUnknownHandler;
  /** Cooldown for overload/rate errors without a hint. Default: the UpstreamHttp's setting (§10.6). */
  defaultRetryAfterMs?: number;
  /** Ask `/api/chat/research/usage` before a research turn and refuse when none remain. Default true. */
  checkResearchQuota?: boolean;
}

export interface ResearchUsage {
  remain: number;
  total: number;
  used: number;
}

export interface LegacyDialect extends KimiDialect {
  /** `GET /api/chat/research/usage` (§2.3): the account's research-mode quota. */
  researchUsage(session: Session, signal: AbortSignal): Promise<ResearchUsage>;
}

const chatIdSchema = z.looseObject({ id: z.string().min(1) });
const researchUsageSchema = z.looseObject({ remain: z.coerce.number(), total: z.coerce.number(), used: z.coerce.number() });
/** Chat ids are 20-char xids (§2.3); anything path-like is refused before it reaches a URL. */
const conversationIdPattern = /^[A-Za-z0-9_-]{1,128}$/;

export function createLegacyDialect(options: LegacyDialectOptions): LegacyDialect {
  const context: LegacyContext = {
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    http: options.http,
    timeZone: options.timeZone ?? 'Asia/Shanghai',
    defaultRetryAfterMs: options.defaultRetryAfterMs ?? options.http.options.defaultRetryAfterMs,
    onUnknown: options.onUnknown ?? (() => {}),
  };
  const maxContinuations = options.maxContinuations ?? 3;
  const uploadOptions = { parseTimeoutMs: options.parseTimeoutMs ?? 120_000, parsePollInitialMs: options.parsePollInitialMs ?? 500 };
  const mapContext = { onUnknown: context.onUnknown, defaultRetryAfterMs: context.defaultRetryAfterMs };

  async function researchUsage(session: Session, signal: AbortSignal): Promise<ResearchUsage> {
    const answer = await callLegacyJson(context, { method: 'GET', path: '/api/chat/research/usage', headers: legacyHeaders(context, session), signal });
    const parsed = researchUsageSchema.safeParse(answer);
    if (!parsed.success) throw new UpstreamError('Kimi answered the research usage call without remain/total/used.', { isRetryable: true });
    return { remain: parsed.data.remain, total: parsed.data.total, used: parsed.data.used };
  }

  /** Refuses a research turn on an account without research runs left; an unreadable quota is not a refusal. */
  async function ensureResearchQuota(session: Session, signal: AbortSignal): Promise<void> {
    let usage: ResearchUsage;
    try {
      usage = await researchUsage(session, signal);
    } catch (error) {
      if (error instanceof AuthenticationError || signal.aborted) throw error;
      return;
    }
    if (usage.remain <= 0) {
      throw new RateLimitError('insufficient_quota', `This account has no research runs left (used ${usage.used} of ${usage.total}).`, {
        retryAfterMs: context.defaultRetryAfterMs,
      });
    }
  }

  async function createChat(session: Session, kimiplusId: string, signal: AbortSignal): Promise<string> {
    const answer = await callLegacyJson(context, { method: 'POST', path: '/api/chat', headers: legacyHeaders(context, session), body: createChatBody(kimiplusId), signal });
    const parsed = chatIdSchema.safeParse(answer);
    if (!parsed.success) throw new UpstreamError('Kimi did not return an id for the new chat.', { isRetryable: true });
    return parsed.data.id;
  }

  async function* streamReply(session: Session, prompt: KimiPrompt, _options: StreamReplyOptions, signal: AbortSignal): AsyncGenerator<ChatEventBatch> {
    if (prompt.conversation) assertConversationId(prompt.conversation.id);
    if (prompt.model.research && options.checkResearchQuota !== false) await ensureResearchQuota(session, signal);
    const kimiplusId = kimiplusIdFor(prompt.model);
    const conversationId = prompt.conversation?.id ?? (await createChat(session, kimiplusId, signal));
    yield [{ type: 'conversation-start', conversationId }];
    let state = initialLegacyStreamState();
    let body = completionBody(prompt, kimiplusId);
    for (let continuations = 0; ; continuations += 1) {
      const segment = { conversationId, body, isKnownChat: prompt.conversation !== undefined };
      state = yield* streamSegment(session, segment, state, signal);
      const outcome = decideAfterSegment(state, continuations, maxContinuations);
      if (outcome.action === 'finish') {
        yield [{ type: 'finish', reason: outcome.reason }];
        return;
      }
      body = continuationBody(outcome.segmentId, kimiplusId);
      state = startNextSegment(state);
    }
  }

  /** One completion request: yields its events and returns the state at its end. The body is always released. */
  async function* streamSegment(
    session: Session,
    segment: { conversationId: string; body: Record<string, unknown>; isKnownChat: boolean },
    state: LegacyStreamState,
    signal: AbortSignal,
  ): AsyncGenerator<ChatEventBatch, LegacyStreamState> {
    const path = `/api/chat/${segment.conversationId}/completion/stream`;
    const headers = { ...legacyHeaders(context, session, { chatId: segment.conversationId }), Accept: 'text/event-stream' };
    const response = await sendLegacy(context, { method: 'POST', path, headers, body: segment.body, signal, isConversationLookup: segment.isKnownChat });
    let next = state;
    try {
      await rejectJsonAnswer(response);
      const deadline = createProgressDeadline(context.http.options, context.baseUrl);
      for await (const messages of readSseMessageBatches(readBodyRuns(response.body, context.baseUrl))) {
        // What one read carried goes on as one batch, also when a later message in it fails or ends the segment;
        // messages are parsed one by one, so nothing after that point is parsed or reported as unknown.
        const batch: ChatEvent[] = [];
        let failure: unknown;
        reading: for (const message of messages) {
          for (const data of parseDataField(message.data, context.onUnknown)) {
            const step = mapLegacyPayload(next, { data, sseEvent: message.event }, mapContext);
            next = step.state;
            for (const event of step.events) batch.push(event);
            if (step.error || next.ending) {
              failure = step.error;
              break reading;
            }
          }
        }
        if (batch.length > 0) {
          yield batch;
          deadline.progressed();
        }
        if (failure) throw failure;
        if (next.ending) break;
        if (batch.length === 0) deadline.check();
      }
    } catch (error) {
      throw signal.aborted ? error : toTransportError(error, context.baseUrl);
    } finally {
      // Runs on normal end, on error and when the consumer leaves (generator return): frees the socket now.
      response.body.destroy();
    }
    return next;
  }

  /** A 200 JSON body instead of SSE carries an error (`{"error_type":...}`), e.g. a busy chat (§2.8). */
  async function rejectJsonAnswer(response: UpstreamResponse): Promise<void> {
    if (!String(response.headers['content-type'] ?? '').includes('application/json')) return;
    const body = errorBodyFromJson(parseJsonSafely(await readBodyText(response.body)));
    if (body) throw legacyErrorFromBody(body, { kind: 'request', defaultRetryAfterMs: context.defaultRetryAfterMs, statusCode: response.statusCode });
    throw new UpstreamError('Kimi answered the completion with JSON instead of an event stream.', { isRetryable: true });
  }

  return {
    name: 'legacy',
    refreshSession: (refreshToken, signal) => refreshLegacySession(context, refreshToken, signal),
    sessionFromAccessToken: legacySessionFromAccessToken,
    checkSession: (session, signal) => fetchLegacyProfile(context, session, signal),
    streamReply,
    async findConversation(session, conversationId, signal) {
      // The legacy host lists no messages; GET /api/chat/{id} (the web app's chat page load) proves existence.
      assertConversationId(conversationId);
      const headers = legacyHeaders(context, session, { chatId: conversationId });
      await discardBody(await sendLegacy(context, { method: 'GET', path: `/api/chat/${conversationId}`, headers, signal, isConversationLookup: true }));
      return {};
    },
    async deleteConversation(session, conversationId, signal) {
      assertConversationId(conversationId);
      const headers = legacyHeaders(context, session, { chatId: conversationId });
      const response = await sendLegacy(context, { method: 'DELETE', path: `/api/chat/${conversationId}`, headers, signal, acceptStatuses: [404] });
      await discardBody(response);
    },
    uploadFile: (session, source, signal) => uploadLegacyFile(context, uploadOptions, session, source, signal),
    listModels: async () => legacyModelCatalog.map((model) => ({ ...model })),
    researchUsage,
  };
}

function assertConversationId(conversationId: string): void {
  if (!conversationIdPattern.test(conversationId)) {
    throw new NotFoundError('Kimi does not know this conversation (malformed conversation id).', { code: 'conversation_not_found' });
  }
}
