/**
 * @module upstream/connect/connect-dialect
 * The current Kimi dialect (www.kimi.com / www.kimi.ai, Connect-RPC; protocol spec §3) as a `KimiDialect`.
 */
import { z } from 'zod';
import { UpstreamError } from '../../errors.ts';
import { decodeJwtClaims } from '../../jwt.ts';
import type { AccountProfile, AccountUsage, CatalogModel, ConversationState, KimiDialect, Session } from '../dialect.ts';
import { readBodyText, type UpstreamHttp } from '../upstream-http.ts';
import { connectHeaders, refreshSession, sessionFromAccessToken, type ConnectSettings, type RefreshMode } from './connect-auth.ts';
import { defaultBusyRetryAfterMs } from './connect-errors.ts';
import type { UnknownObserver, UnknownReport } from './connect-events.ts';
import { lenientId, lenientString } from './connect-frame-schema.ts';
import { defaultMaxFrameBytes } from './connect-framing.ts';
import { callUnary, readUnaryJson, sendUnary } from './connect-rpc.ts';
import { streamChat } from './connect-stream.ts';
import { uploadFile } from './connect-upload.ts';

export interface ConnectDialectOptions {
  /** Business host, e.g. `https://www.kimi.com` (or `https://www.kimi.ai`). */
  baseUrl: string;
  /** Account service host, e.g. `https://auth.kimi.com`. */
  authUrl: string;
  http: UpstreamHttp;
  /** `x-msh-version`; default `2.2.0` (§3.3). */
  clientVersion?: string;
  /** `x-language`; default `en-US`, which also makes Kimi's error texts English. */
  language?: string;
  /** `r-timezone`; default the process time zone, else `UTC`. */
  timeZone?: string;
  /** First GetFileParseProgress interval; default 500 ms, growing to 4× (§3.10). */
  parsePollIntervalMs?: number;
  /** Give up waiting for Kimi to read a file; default 120 000 ms. */
  parseTimeoutMs?: number;
  /** Told about protocol drift: unknown containers, ops, block fields and enum values. Never throws into the stream. */
  onUnknown?: UnknownObserver;
  /** Cooldown for limits without an upstream hint; default `http.options.defaultRetryAfterMs` (§10.6). */
  defaultRetryAfterMs?: number;
  /** Cooldown for "session in progress" (account busy); default 3000 ms. */
  busyRetryAfterMs?: number;
  /** Largest accepted stream frame; default 16 MiB. */
  maxFrameBytes?: number;
  /** Refresh path; default `auto` (account service, then the web GET path if that route is missing). */
  refreshMode?: RefreshMode;
}

const userSchema = z.looseObject({
  id: lenientId,
  nickname: lenientString,
  name: lenientString,
  region: lenientString,
  membership: z.looseObject({ level: lenientId }).optional().catch(undefined),
});
const messagesSchema = z.looseObject({
  messages: z.array(z.looseObject({ id: lenientString, role: lenientString, createTime: lenientString }).catch({})).optional().catch(undefined),
});
const catalogSchema = z.looseObject({
  availableModels: z
    .array(
      z
        .looseObject({
          id: lenientString,
          key: lenientString,
          displayName: lenientString,
          scenario: lenientString,
          kimiPlusId: lenientString,
          agentMode: lenientString,
          thinking: z.boolean().optional().catch(undefined),
          defaultReasoningEffort: lenientString,
          reasoningEffortOptions: z.array(z.looseObject({ effort: lenientString }).catch({})).optional().catch(undefined),
        })
        .catch({}),
    )
    .optional()
    .catch(undefined),
});

/** GetSubscriptionStats (§3.9): only the fields the account view shows; everything else passes. */
const subscriptionStatsSchema = z.looseObject({
  subscriptionBalance: z
    .looseObject({ amountUsedRatio: z.coerce.number().min(0).max(1).optional(), expireTime: z.string().optional(), type: z.string().optional() })
    .optional(),
});

export function createConnectDialect(options: ConnectDialectOptions): KimiDialect {
  const settings: ConnectSettings = {
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    authUrl: options.authUrl.replace(/\/+$/, ''),
    http: options.http,
    clientVersion: options.clientVersion ?? '2.2.0',
    language: options.language ?? 'en-US',
    timeZone: options.timeZone ?? (Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'),
    defaultRetryAfterMs: options.defaultRetryAfterMs ?? options.http.options.defaultRetryAfterMs,
    busyRetryAfterMs: options.busyRetryAfterMs ?? defaultBusyRetryAfterMs,
    // A renamed refresh-token field is drift like any other: counted and shown, not only warned about.
    ...(options.onUnknown ? { onUnknown: options.onUnknown } : {}),
  };
  const api = (path: string) => `${settings.baseUrl}/apiv2/${path}`;

  /** Reports each unknown once per call site's set; an observer that throws never breaks a stream. */
  function reporter(): (unknown: UnknownReport) => void {
    const seen = new Set<string>();
    return ({ kind, name }) => {
      const key = `${kind}:${name}`;
      if (!options.onUnknown || seen.has(key)) return;
      seen.add(key);
      try {
        options.onUnknown(kind, name);
      } catch {
        // Observation must not change behaviour.
      }
    };
  }

  return {
    name: 'current',
    refreshSession: (refreshToken, signal) => refreshSession(settings, refreshToken, options.refreshMode ?? 'auto', signal),
    sessionFromAccessToken,

    async checkSession(session, signal) {
      const response = await sendUnary(settings, session, api('kimi.gateway.account.v1.UserService/GetCurrentUser'), {}, signal);
      let json: unknown;
      if (response.statusCode === 404 || response.statusCode === 501) {
        await readBodyText(response.body); // RPC missing on this host: the REST probe still answers (§3.4)
        const rest = await settings.http.send({ url: `${settings.baseUrl}/api/user`, method: 'GET', headers: connectHeaders(settings, session.identity, session.accessToken), signal });
        json = await readUnaryJson(settings, rest, { operation: 'account check' });
      } else {
        json = await readUnaryJson(settings, response, { operation: 'account check' });
      }
      return profileFrom(json, session);
    },

    streamReply: (session, prompt, replyOptions, signal) =>
      streamChat(settings, session, prompt, replyOptions, signal, { maxFrameBytes: options.maxFrameBytes ?? defaultMaxFrameBytes, report: reporter() }),

    async findConversation(session, conversationId, signal): Promise<ConversationState> {
      const context = { operation: 'conversation lookup', conversationId };
      const json = await callUnary(settings, session, api('kimi.gateway.chat.v1.ChatService/ListMessages'), { chat_id: conversationId, page_size: 200 }, context, signal);
      const parsed = messagesSchema.safeParse(json);
      const assistant = (parsed.success ? (parsed.data.messages ?? []) : []).filter((message) => message.role === 'assistant' && message.id);
      // Newest first per §3.9; createTime decides when every message carries one.
      const newest = assistant.every((message) => message.createTime)
        ? assistant.reduce<(typeof assistant)[number] | undefined>((best, message) => (!best || Date.parse(message.createTime!) > Date.parse(best.createTime!) ? message : best), undefined)
        : assistant[0];
      return newest?.id ? { lastAssistantMessageId: newest.id } : {};
    },

    async deleteConversation(session, conversationId, signal) {
      // §3.11: note the package has no `gateway` here, unlike Chat and ListMessages.
      const response = await sendUnary(settings, session, api('kimi.chat.v1.ChatService/DeleteChat'), { chat_id: conversationId }, signal);
      if (response.statusCode === 404 || response.statusCode === 410) {
        await readBodyText(response.body); // already gone: that is what we wanted
        return;
      }
      await readUnaryJson(settings, response, { operation: 'conversation deletion', conversationId });
    },

    uploadFile: (session, source, signal) =>
      uploadFile(settings, session, source, signal, {
        parsePollIntervalMs: options.parsePollIntervalMs ?? 500,
        parseTimeoutMs: options.parseTimeoutMs ?? 120_000,
        report: reporter(),
      }),

    async accountUsage(session, signal): Promise<AccountUsage> {
      const json = await callUnary(settings, session, api('kimi.gateway.membership.v2.MembershipService/GetSubscriptionStats'), {}, { operation: 'usage check' }, signal);
      const parsed = subscriptionStatsSchema.safeParse(json);
      const balance = parsed.success ? parsed.data.subscriptionBalance : undefined;
      const usage: AccountUsage = {};
      if (balance?.amountUsedRatio !== undefined) usage.usedRatio = balance.amountUsedRatio;
      const resetAt = balance?.expireTime ? Date.parse(balance.expireTime) : Number.NaN;
      if (!Number.isNaN(resetAt)) usage.resetAt = resetAt;
      if (balance?.type) usage.plan = balance.type;
      return usage;
    },

    async listModels(session, signal): Promise<CatalogModel[]> {
      const json = await callUnary(settings, session, api('kimi.gateway.config.v1.ConfigService/GetAvailableModels'), {}, { operation: 'model list' }, signal);
      const parsed = catalogSchema.safeParse(json);
      const entries = parsed.success ? (parsed.data.availableModels ?? []) : [];
      return entries.flatMap((entry) => {
        const id = entry.id ?? entry.key;
        if (!id) return [];
        const model: CatalogModel = { id };
        if (entry.displayName) model.displayName = entry.displayName;
        if (entry.scenario) model.scenario = entry.scenario;
        if (entry.kimiPlusId) model.kimiplusId = entry.kimiPlusId;
        if (entry.agentMode) model.agentMode = entry.agentMode;
        if (entry.thinking !== undefined) model.thinking = entry.thinking;
        const efforts = (entry.reasoningEffortOptions ?? []).map((option) => option.effort).filter((effort) => effort !== undefined);
        if (efforts.length > 0) model.reasoningEfforts = efforts;
        if (entry.defaultReasoningEffort) model.defaultReasoningEffort = entry.defaultReasoningEffort;
        return [model];
      });
    },
  };
}

/** GetCurrentUser answers `{user:{…}}`, `/api/user` the user itself; claims fill what neither says. */
function profileFrom(json: unknown, session: Session): AccountProfile {
  const container = json !== null && typeof json === 'object' && 'user' in json ? json.user : json;
  const parsed = userSchema.safeParse(container);
  const user = parsed.success ? parsed.data : {};
  const claims = decodeJwtClaims(session.accessToken);
  const userId = user.id ?? session.identity.userId;
  if (!userId) throw new UpstreamError('Kimi answered the account check without a user id.');
  const profile: AccountProfile = { userId };
  const name = user.nickname ?? user.name;
  if (name) profile.name = name;
  const region = user.region ?? (typeof claims?.region === 'string' ? claims.region : undefined);
  if (region) profile.region = region;
  const claimLevel = (claims?.membership as { level?: unknown } | undefined)?.level;
  const level = user.membership?.level ?? (claimLevel === undefined ? undefined : String(claimLevel));
  if (level) profile.membershipLevel = level;
  return profile;
}
