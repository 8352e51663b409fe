/**
 * @module simulator/legacy-routes
 * The legacy REST + SSE dialect (spec §2): user, chat create/delete/list, completion stream with
 * continuation, research usage, and the browser-mimicking calls gateways make. `GET /api/user` and
 * `POST /api/chat` also serve current-dialect tokens (spec §3.4, §3.8 item 4).
 */
import { field, isObject, readJsonObject, requireAccount, sendJson, sendLegacyError, type RouteContext, type RouteHandler } from './http-io.ts';
import { newXid, XID_PATTERN } from './ids.ts';
import { buildContinuationScript, buildLegacyScript, type LegacyItem, type LegacyScript } from './legacy-script.ts';
import { collapseText, LONG_ANSWER_PARAGRAPHS, searchQueryOf, simulatedReply, simulatedSearchSources, simulatedThinkingText } from './reply-text.ts';
import { scenarioApplies, scenarioFromPrompt, type ScenarioName } from './scenarios.ts';
import { withToolReply } from './tool-replies.ts';
import type { AccountRecord, ChatRecord } from './state.ts';
import { KEEP_ALIVE_EVERY_MS, runStream, utf8SplitPoint, type StreamStep } from './stream-writer.ts';
import { bearerToken } from './tokens.ts';
import { transportFaultPlan } from './transport-faults.ts';

const K1_KIMIPLUS_ID = 'crm40ee9e5jvhsn7ptcg';
const THINKING_MODELS = new Set(['k1', 'k1.5']);
const RESEARCH_TOTAL = 20;
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

function account(context: RouteContext): AccountRecord | undefined {
  return requireAccount(context, 'legacy', bearerToken(context.req.headers.authorization));
}

function legacyChat(context: RouteContext, owner: AccountRecord, chatId: string): ChatRecord | undefined {
  return XID_PATTERN.test(chatId) ? context.state.findChat(owner, chatId) : undefined;
}

const getUser: RouteHandler = (context) => {
  const owner = account(context);
  if (owner) sendJson(context.res, 200, { id: owner.userId, name: `Simulated user ${owner.userId.slice(-4)}`, status: 'normal', region: owner.region });
};

const createChat: RouteHandler = async (context) => {
  const owner = account(context);
  if (!owner) return;
  const body = await readJsonObject(context);
  if (!body) return;
  const family = context.state.authenticate(bearerToken(context.req.headers.authorization));
  const dialect = family.ok && family.claims.iss === 'account' ? 'current' : 'legacy';
  const name = typeof body.name === 'string' && body.name !== '' ? body.name : '未命名会话';
  const chat = context.state.createChat(owner, dialect, name, 'xid');
  sendJson(context.res, 200, { id: chat.id, name: chat.name, created_at: chat.createTime, kimiplus_id: body.kimiplus_id ?? 'kimi' });
};

const listChats: RouteHandler = async (context) => {
  const owner = account(context);
  if (!owner) return;
  const body = await readJsonObject(context);
  if (!body) return;
  const offset = Number(body.offset) || 0;
  const size = Number(body.size) || 50;
  const live = [...owner.chats.values()].filter((chat) => !chat.deleted).reverse();
  const items = live.slice(offset, offset + size).map((chat) => ({ id: chat.id, name: chat.name, created_at: chat.createTime, updated_at: chat.updateTime }));
  sendJson(context.res, 200, { items, total: live.length });
};

const deleteChat: RouteHandler = (context) => {
  const owner = account(context);
  if (!owner) return;
  const chat = legacyChat(context, owner, decodeURIComponent(context.url.pathname.slice('/api/chat/'.length)));
  if (!chat) return sendLegacyError(context.res, 404, 'chat.not_found', '会话不存在');
  chat.deleted = true;
  chat.activeStream?.abort();
  sendJson(context.res, 200, {});
};

const researchUsage: RouteHandler = (context) => {
  const owner = account(context);
  if (owner) sendJson(context.res, 200, { remain: Math.max(0, RESEARCH_TOTAL - owner.researchUsed), total: RESEARCH_TOTAL, used: owner.researchUsed });
};

/** Calls gateways make only to look like a browser (spec §2.3 "Other calls"); answered with `{}`. */
const browserMimic: RouteHandler = async (context) => {
  if (!account(context)) return;
  if (context.req.method === 'POST' && !(await readJsonObject(context))) return;
  sendJson(context.res, 200, {});
};

interface CompletionRequest {
  text: string;
  refs: string[];
  search: boolean;
  thinking: boolean;
  research: boolean;
  continueSegment?: string;
}

function parseCompletion(body: Record<string, unknown>): CompletionRequest | string {
  const messages = body.messages;
  const first: unknown = Array.isArray(messages) ? messages[0] : undefined; // only the first is read (§2.4)
  const text = isObject(first) && typeof first.content === 'string' ? first.content : undefined;
  const continueSegment = body.action === 'continue' && typeof body.segment_id === 'string' ? body.segment_id : undefined;
  if (text === undefined && continueSegment === undefined) return 'messages[0].content is required';
  const refs = Array.isArray(body.refs) ? body.refs.filter((ref): ref is string => typeof ref === 'string') : [];
  const model = field(body, 'model');
  return {
    text: text ?? '',
    refs,
    search: body.use_search === true,
    research: body.use_research === true,
    thinking: body.kimiplus_id === K1_KIMIPLUS_ID || (typeof model === 'string' && THINKING_MODELS.has(model)) || body.use_research === true,
    continueSegment,
  };
}

function itemsToSteps(items: LegacyItem[]): StreamStep[] {
  return items.map((item): StreamStep => {
    if (item.kind === 'stall' || item.kind === 'reset') return item.kind === 'stall' ? { type: 'stall' } : { type: 'reset' };
    if (item.kind === 'keep-alive') return { type: 'keep-alive', bytes: Buffer.from(': keep-alive\n\ndata: {"event":"ping"}\n\n', 'utf8'), everyMs: KEEP_ALIVE_EVERY_MS };
    const bytes = Buffer.from(item.kind === 'raw' ? item.text : `data: ${JSON.stringify(item.value)}\n\n`, 'utf8');
    // Every answer delta with a multi-byte character is split inside it across two TCP writes (§2.5, §9 D14).
    const splitAt = item.kind === 'event' && item.value.event === 'cmpl' ? utf8SplitPoint(bytes) : undefined;
    return { type: 'write', bytes, splitAt };
  });
}

async function play(context: RouteContext, script: LegacyScript, scenario: ScenarioName, cancelSignal: AbortSignal): Promise<boolean> {
  const plan = {
    status: 200,
    headers: SSE_HEADERS,
    steps: itemsToSteps(script.items),
    delayMs: scenario === 'slow' ? 50 : context.state.settings.chunkDelayMs,
    splitWrites: scenario === 'split-frames',
  };
  const outcome = await runStream(context.res, plan, AbortSignal.any([context.signal, cancelSignal]));
  if (outcome === 'aborted' && !context.signal.aborted && !context.res.destroyed) context.res.end();
  return outcome === 'completed';
}

function chooseScenario(context: RouteContext, request: CompletionRequest, owner: AccountRecord): ScenarioName | undefined {
  const hook = scenarioFromPrompt(request.text);
  if (hook && 'unknown' in hook) {
    sendLegacyError(context.res, 400, 'chat.invalid_params', `unknown simulator scenario in prompt: ${hook.unknown}`);
    return undefined;
  }
  if (hook) return scenarioApplies(hook.name, 'legacy-chat') ? hook.name : 'normal';
  return context.scenarios.take('legacy-chat', owner.userId);
}

const completion: RouteHandler = async (context) => {
  const owner = account(context);
  if (!owner) return;
  const body = await readJsonObject(context);
  if (!body) return;
  const request = parseCompletion(body);
  if (typeof request === 'string') return sendLegacyError(context.res, 400, 'chat.invalid_params', request);
  const scenario = chooseScenario(context, request, owner);
  if (!scenario) return;
  context.record.scenario = scenario;
  const fault = transportFaultPlan(scenario, 'legacy');
  if (fault) return void (await runStream(context.res, fault, context.signal));
  const chatId = decodeURIComponent(context.url.pathname.split('/')[3] ?? '');
  const chat = legacyChat(context, owner, chatId);
  if (!chat) return sendLegacyError(context.res, 404, 'chat.not_found', '会话不存在');
  const slot = scenario === 'legacy-stream-pushing' ? undefined : context.state.acquireStream(owner, chat);
  if (!slot) return sendLegacyError(context.res, 400, 'chat.user_stream_pushing', '当前会话正在生成回复，请稍后再试');
  try {
    const problem = request.refs.find((id) => {
      const file = owner.files.get(id);
      return !file || context.state.fileStatus(file) !== 'success';
    });
    if (problem !== undefined) return sendLegacyError(context.res, 400, 'file.not_ready', `文件 ${problem} 不可用`);
    if (request.continueSegment !== undefined) return await continueSegment(context, owner, chat, request.continueSegment, scenario, slot.cancelSignal);
    await answer(context, owner, chat, request, scenario, slot.cancelSignal);
  } finally {
    slot.release();
  }
};

async function answer(context: RouteContext, owner: AccountRecord, chat: ChatRecord, request: CompletionRequest, scenario: ScenarioName, cancelSignal: AbortSignal): Promise<void> {
  const { state } = context;
  if (request.research) owner.researchUsed += 1;
  const isFirstTurn = chat.messages.length === 0;
  const turn = chat.messages.filter((message) => message.role === 'user').length + 1;
  const files = request.refs.map((id) => owner.files.get(id)!);
  const reply = withToolReply(simulatedReply({ userText: request.text, turn, files, search: request.search, markerStyle: 'none', paragraphs: scenario === 'long-answer' ? LONG_ANSWER_PARAGRAPHS : 1 }), request.text, scenario);
  const user = state.addMessage(chat, { role: 'user', parentId: chat.messages.at(-1)?.id, text: request.text, fileIds: request.refs, status: 'completed' });
  const assistant = state.addMessage(chat, { role: 'assistant', parentId: user.id, text: reply.text, fileIds: [], status: 'generating' });
  const rename = isFirstTurn ? collapseText(request.text, 30) : undefined;
  if (rename) chat.name = rename;
  const segmentId = newXid(state.now());
  const script = buildLegacyScript(
    {
      segmentId,
      groupId: newXid(state.now()),
      responseId: assistant.id,
      userText: request.text,
      refs: request.refs,
      thinkingText: request.thinking ? simulatedThinkingText(request.text, turn) : undefined,
      search: request.search ? { query: searchQueryOf(request.text), sources: simulatedSearchSources(request.text) } : undefined,
      replyText: reply.text,
      rename,
    },
    scenario,
  );
  if (script.remainder !== undefined) {
    state.legacySegments.set(segmentId, { userId: owner.userId, chatId: chat.id, remainder: script.remainder });
  }
  const completed = await play(context, script, scenario, cancelSignal);
  assistant.status = completed && script.finalStatus ? script.finalStatus : 'interrupted';
}

async function continueSegment(context: RouteContext, owner: AccountRecord, chat: ChatRecord, segmentId: string, scenario: ScenarioName, cancelSignal: AbortSignal): Promise<void> {
  const segment = context.state.legacySegments.get(segmentId);
  if (!segment || segment.userId !== owner.userId || segment.chatId !== chat.id) {
    return sendLegacyError(context.res, 400, 'chat.segment_not_found', '无法继续生成');
  }
  context.state.legacySegments.delete(segmentId);
  const lastAssistant = chat.messages.findLast((message) => message.role === 'assistant');
  await play(context, buildContinuationScript(lastAssistant?.id ?? newXid(), newXid(), segment.remainder), scenario, cancelSignal);
}

/** Method + path pattern → handler. */
export const LEGACY_ROUTES: Array<{ method: string; pattern: RegExp; handler: RouteHandler }> = [
  { method: 'GET', pattern: /^\/api\/user$/, handler: getUser },
  { method: 'POST', pattern: /^\/api\/chat$/, handler: createChat },
  { method: 'POST', pattern: /^\/api\/chat\/list$/, handler: listChats },
  { method: 'GET', pattern: /^\/api\/chat\/research\/usage$/, handler: researchUsage },
  { method: 'POST', pattern: /^\/api\/chat\/[^/]+\/completion\/stream$/, handler: completion },
  { method: 'POST', pattern: /^\/api\/chat\/[^/]+\/(pre-n2s|token_size)$/, handler: browserMimic },
  { method: 'DELETE', pattern: /^\/api\/chat\/[^/]+$/, handler: deleteChat },
  { method: 'POST', pattern: /^\/api\/(suggestion|user\/usage|kimiplus\/history|kimiplus\/search)$/, handler: browserMimic },
  { method: 'GET', pattern: /^\/api\/(chat_1m|kimi_mv)\/user\/status$/, handler: browserMimic },
];
