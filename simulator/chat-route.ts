/**
 * @module simulator/chat-route
 * `POST /apiv2/kimi.gateway.chat.v1.ChatService/Chat` (spec §3.5–§3.8, §3.12–§3.14): authenticates, decodes
 * the single request envelope, picks the scenario, validates chat / parent / files, stores the turn and
 * streams the scripted events.
 */
import { buildChatScript, sessionInProgressError, type ChatPlan, type ScriptItem } from './chat-script.ts';
import { parseChatRequest, type ChatRequest } from './chat-request.ts';
import { answerChatDrift, driftChatItems } from './drift.ts';
import { decodeSingleEnvelope, encodeEnvelope, encodeJsonEnvelope, FLAG_DATA, FLAG_END_STREAM } from './connect-framing.ts';
import { currentFileWire } from './file-wire.ts';
import { readBody, recordText, requireAccount, sendConnectError, type RouteContext } from './http-io.ts';
import { newUuidLikeId } from './ids.ts';
import { collapseText, LONG_ANSWER_PARAGRAPHS, searchQueryOf, simulatedReply, simulatedThinkingText } from './reply-text.ts';
import { scenarioApplies, scenarioFromPrompt, type ScenarioName } from './scenarios.ts';
import { withToolReply } from './tool-replies.ts';
import type { AccountRecord, ChatRecord, FileRecord, StreamSlot } from './state.ts';
import { KEEP_ALIVE_EVERY_MS, runStream, utf8SplitPoint, type StreamPlan, type StreamStep } from './stream-writer.ts';
import { bearerToken } from './tokens.ts';
import { transportFaultPlan } from './transport-faults.ts';

export const CONNECT_STREAM_HEADERS = { 'content-type': 'application/connect+json' };
const SLOW_DELAY_MS = 50;

/** Scenarios that refuse before the turn is stored, and those that store the user turn but no answer. */
const STORES_NOTHING = new Set<ScenarioName>(['unauthenticated-in-stream', 'empty-stream', 'session-in-progress']);
const STORES_USER_ONLY = new Set<ScenarioName>(['overload-free-user', 'quota-exhausted', 'paywall']);

export async function handleChat(context: RouteContext): Promise<void> {
  const account = requireAccount(context, 'connect', bearerToken(context.req.headers.authorization));
  if (!account) return;
  const request = await readChatRequest(context);
  if (!request) return;
  const scenario = chooseScenario(context, request, account);
  if (!scenario) return;
  context.record.scenario = scenario;
  if (answerChatDrift(context, scenario)) return;
  const fault = transportFaultPlan(scenario, 'connect');
  if (fault) {
    await runStream(context.res, fault, context.signal);
    return;
  }
  const existing = request.chatId === undefined ? undefined : context.state.findChat(account, request.chatId);
  if (request.chatId !== undefined && !existing) {
    sendConnectError(context.res, 'not_found', 'chat not found');
    return;
  }
  const slot = context.state.acquireStream(account, existing);
  if (!slot) {
    await playItems(context, [{ kind: 'end', value: { error: sessionInProgressError() } }], scenario);
    return;
  }
  try {
    const problem = validateTurn(context, account, request, existing);
    if (problem) {
      sendConnectError(context.res, 'invalid_argument', problem);
      return;
    }
    await streamTurn(context, account, request, existing, scenario, slot);
  } finally {
    slot.release();
  }
}

async function readChatRequest(context: RouteContext): Promise<ChatRequest | undefined> {
  const body = await readBody(context);
  if (!body) return undefined;
  const decoded = decodeSingleEnvelope(body);
  if (!decoded.ok) {
    // Bare JSON (or anything not one envelope) is `invalid_argument` (spec §3.2).
    sendConnectError(context.res, 'invalid_argument', `protocol error: ${decoded.reason}`);
    return undefined;
  }
  recordText(context.record, decoded.json);
  const parsed = parseChatRequest(context.record.bodyJson);
  if (!parsed.ok) {
    sendConnectError(context.res, 'invalid_argument', parsed.message);
    return undefined;
  }
  return parsed.request;
}

function chooseScenario(context: RouteContext, request: ChatRequest, account: AccountRecord): ScenarioName | undefined {
  const hook = scenarioFromPrompt(request.text);
  if (hook && 'unknown' in hook) {
    sendConnectError(context.res, 'invalid_argument', `unknown simulator scenario in prompt: ${hook.unknown}`);
    return undefined;
  }
  if (hook) return scenarioApplies(hook.name, 'chat') ? hook.name : 'normal';
  return context.scenarios.take('chat', account.userId);
}

/** Parent must be the chat's latest assistant message (spec §3.8); files must be this user's and parsed. */
function validateTurn(context: RouteContext, account: AccountRecord, request: ChatRequest, chat: ChatRecord | undefined): string | undefined {
  const expectedParent = chat?.messages.findLast((message) => message.role === 'assistant')?.id;
  if (request.parentId !== expectedParent) {
    return expectedParent === undefined
      ? 'parent_id must be omitted for a chat without an assistant message'
      : 'parent_id must be the latest assistant message of the chat';
  }
  for (const fileId of request.fileIds) {
    const file = account.files.get(fileId);
    if (!file) return `file ${fileId} not found`;
    const status = context.state.fileStatus(file);
    if (status !== 'success') return `file ${fileId} is not parsed (${status})`;
  }
  return undefined;
}

async function streamTurn(
  context: RouteContext,
  account: AccountRecord,
  request: ChatRequest,
  existing: ChatRecord | undefined,
  scenario: ScenarioName,
  slot: StreamSlot,
): Promise<void> {
  const { state } = context;
  const storesUser = !STORES_NOTHING.has(scenario);
  const storesAnswer = storesUser && !STORES_USER_ONLY.has(scenario);
  const chat = existing ?? (storesUser ? state.createChat(account, 'current', 'Untitled Chat', 'uuid') : ephemeralChat(state.isoNow()));
  if (storesUser) slot.attach(chat);
  const chatAtStart = { id: chat.id, name: chat.name, createTime: chat.createTime };
  const isFirstTurn = chat.messages.length === 0;
  const files = request.fileIds.map((id) => account.files.get(id)).filter((file): file is FileRecord => file !== undefined);
  const turn = chat.messages.filter((message) => message.role === 'user').length + 1;
  const reply = withToolReply(simulatedReply({
    userText: request.text,
    turn,
    files: files.map((file) => ({ name: file.name, sizeBytes: file.sizeBytes, sha256: file.sha256 })),
    search: request.search,
    markerStyle: scenario === 'search-alt-markers' ? '1f6e0' : 'e3a3',
    paragraphs: scenario === 'long-answer' ? LONG_ANSWER_PARAGRAPHS : 1,
  }), request.text, scenario);
  const userMessage = storesUser
    ? state.addMessage(chat, { role: 'user', parentId: request.parentId, text: request.text, fileIds: request.fileIds, status: 'completed', scenario: request.apiScenario })
    : { id: newUuidLikeId(state.now()) };
  const assistant = storesAnswer
    ? state.addMessage(chat, { role: 'assistant', parentId: userMessage.id, text: scenario === 'exception-mid-stream' ? '' : reply.text, fileIds: [], status: 'generating', scenario: request.apiScenario })
    : undefined;
  const newName = isFirstTurn && storesAnswer ? collapseText(request.text, 30) || 'Untitled Chat' : undefined;
  if (newName !== undefined) chat.name = newName;
  const plan: ChatPlan = {
    chat: chatAtStart,
    newName,
    userMessage: { id: userMessage.id, text: request.text, fileIds: request.fileIds },
    assistantMessageId: assistant?.id ?? newUuidLikeId(state.now()),
    apiScenario: request.apiScenario,
    files: files.map((file) => currentFileWire(file, context.baseUrl)),
    thinkingText: request.thinking ? simulatedThinkingText(request.text, turn) : undefined,
    searchQuery: request.search ? searchQueryOf(request.text) : undefined,
    reply,
  };
  const script = buildChatScript(plan, scenario);
  const outcome = await playItems(context, driftChatItems(script.items, scenario), scenario, slot.cancelSignal);
  if (assistant) assistant.status = outcome === 'completed' && script.finalStatus ? script.finalStatus : 'interrupted';
}

function ephemeralChat(createTime: string): ChatRecord {
  return { id: newUuidLikeId(), name: 'Untitled Chat', dialect: 'current', messages: [], deleted: false, createTime, updateTime: createTime };
}

/** Encodes script items as envelopes; in normal runs one frame is split inside a UTF-8 character (spec §3.2). */
export function itemsToSteps(items: ScriptItem[], splitOneUtf8Char: boolean): StreamStep[] {
  let splitDone = !splitOneUtf8Char;
  return items.map((item): StreamStep => {
    if (item.kind === 'stall' || item.kind === 'reset') return { type: item.kind };
    if (item.kind === 'keep-alive') return { type: 'keep-alive', bytes: encodeJsonEnvelope(FLAG_DATA, { heartbeat: {} }), everyMs: KEEP_ALIVE_EVERY_MS };
    const bytes =
      item.kind === 'raw' ? item.bytes : encodeJsonEnvelope(item.kind === 'end' ? FLAG_END_STREAM : FLAG_DATA, item.value);
    if (!splitDone && item.kind === 'data') {
      const splitAt = utf8SplitPoint(bytes);
      if (splitAt !== undefined) {
        splitDone = true;
        return { type: 'write', bytes, splitAt };
      }
    }
    return { type: 'write', bytes };
  });
}

async function playItems(context: RouteContext, items: ScriptItem[], scenario: ScenarioName, cancelSignal?: AbortSignal): Promise<string> {
  const plan: StreamPlan = {
    status: 200,
    headers: CONNECT_STREAM_HEADERS,
    steps: itemsToSteps(items, scenario !== 'split-frames'),
    delayMs: scenario === 'slow' ? SLOW_DELAY_MS : context.state.settings.chunkDelayMs,
    splitWrites: scenario === 'split-frames',
  };
  const signal = cancelSignal ? AbortSignal.any([context.signal, cancelSignal]) : context.signal;
  const outcome = await runStream(context.res, plan, signal);
  if (outcome === 'aborted' && !context.signal.aborted && !context.res.destroyed) {
    // CancelChat: finish the stream politely with a plain end frame.
    if (!context.res.headersSent) context.res.writeHead(200, CONNECT_STREAM_HEADERS);
    context.res.end(encodeEnvelope(FLAG_END_STREAM, '{}'));
  }
  return outcome;
}
