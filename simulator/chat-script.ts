/**
 * @module simulator/chat-script
 * Pure builder of the Connect Chat event sequence for one turn (spec §3.6, §3.14 a–d) and its fault variants.
 * The output is a list of items (data frame, end frame, raw bytes, stall, reset); chat-route.ts encodes them.
 */
import type { ScenarioName } from './scenarios.ts';
import type { MessageStatus } from './simulator-types.ts';
import { splitIntoPieces, type SimulatedReply } from './reply-text.ts';
import { connectErrorBody } from './http-io.ts';
import { encodeEnvelope, FLAG_DATA } from './connect-framing.ts';

export type ScriptItem =
  | { kind: 'data'; value: Record<string, unknown> }
  | { kind: 'end'; value: Record<string, unknown> }
  | { kind: 'raw'; bytes: Buffer }
  | { kind: 'stall' }
  /** Heartbeat frames only, from here until the client leaves. */
  | { kind: 'keep-alive' }
  | { kind: 'reset' };

export interface ChatPlan {
  chat: { id: string; name: string; createTime: string };
  /** Set on the first turn of a chat: the auto title sent as `chat.name`. */
  newName?: string;
  userMessage: { id: string; text: string; fileIds: string[] };
  assistantMessageId: string;
  /** Top-level Connect scenario of the request (e.g. SCENARIO_CHAT). */
  apiScenario: string;
  /** Wire objects for `append chat.files` (spec §3.10 step 3). */
  files: Record<string, unknown>[];
  thinkingText?: string;
  searchQuery?: string;
  reply: SimulatedReply;
}

export interface ChatScript {
  items: ScriptItem[];
  /** Status of the stored assistant message when every item was delivered (undefined: no assistant message). */
  finalStatus?: MessageStatus;
}

export const OVERLOAD_MESSAGE = 'Too many people are chatting with Kimi right now. Subscribe to enter a priority queue!';
export const EXCEPTION_MESSAGE = '不好意思，刚刚和Kimi聊的人太多了。';
export const DEGRADE_MESSAGE = '当前使用人数较多，已为你切换至 K2.6 快速版 (simulated model degrade)';
export const QUOTA_MESSAGE = 'Monthly quota used up';
export const SESSION_IN_PROGRESS_MESSAGE = 'session in progress';

/** Appends events with strictly increasing eventOffset; heartbeats reuse the current offset (spec §3.6). */
class EventLog {
  readonly items: ScriptItem[] = [];
  #offset = 0;

  state(op: string, mask: string | undefined, payload: Record<string, unknown>): void {
    this.#offset += 1;
    this.items.push({ kind: 'data', value: { op, ...(mask ? { mask } : {}), eventOffset: this.#offset, ...payload } });
  }

  heartbeat(withOffset: boolean): void {
    this.items.push({ kind: 'data', value: withOffset ? { eventOffset: this.#offset, heartbeat: {} } : { heartbeat: {} } });
  }

  done(): void {
    this.#offset += 1;
    this.items.push({ kind: 'data', value: { eventOffset: this.#offset, done: {} } });
  }

  plain(value: Record<string, unknown>): void {
    this.items.push({ kind: 'data', value });
  }

  end(error?: Record<string, unknown>): void {
    this.items.push({ kind: 'end', value: error ? { error } : {} });
  }
}

function opening(log: EventLog, plan: ChatPlan): void {
  log.heartbeat(false);
  log.state('set', 'chat.lastRequest', { chat: plan.chat });
  const blocks: Record<string, unknown>[] = [{ id: 'text_0_0', text: { content: plan.userMessage.text } }];
  plan.userMessage.fileIds.forEach((id, index) => blocks.push({ id: `file_0_${index + 1}`, file: { id } }));
  log.state('set', 'message', {
    message: { id: plan.userMessage.id, role: 'user', status: 'MESSAGE_STATUS_COMPLETED', blocks, scenario: plan.apiScenario },
  });
  if (plan.files.length > 0) log.state('append', 'chat.files', { chat: { files: plan.files } });
}

function assistantStart(log: EventLog, plan: ChatPlan): void {
  log.state('set', 'message', {
    message: {
      id: plan.assistantMessageId,
      parentId: plan.userMessage.id,
      role: 'assistant',
      status: 'MESSAGE_STATUS_GENERATING',
      scenario: plan.apiScenario,
    },
  });
  if (plan.newName !== undefined) log.state('set', 'chat.name', { chat: { name: plan.newName } });
  log.heartbeat(true);
}

/** Thinking phase per §3.14 (b): multiStage START, think set + appends, multiStage END. */
function thinking(log: EventLog, text: string, blockId: string): void {
  const stage = (status: string) => ({ block: { id: '0_m', multiStage: { stages: [{ name: 'STAGE_NAME_THINKING', status }] } } });
  log.state('set', 'block.multiStage', stage('STAGE_STATUS_START'));
  splitIntoPieces(text).forEach((piece, index) => {
    if (index === 0) log.state('set', 'block.think', { block: { id: blockId, think: { content: piece } } });
    else log.state('append', 'block.think.content', { block: { id: blockId, think: { content: piece } } });
  });
  log.state('set', 'block.multiStage', stage('STAGE_STATUS_END'));
}

/** Search tool call and citation table per §3.14 (c) and §3.7. */
function searchCall(log: EventLog, plan: ChatPlan, blockId: string): void {
  const args = JSON.stringify({ queries: [plan.searchQuery ?? ''] });
  const cut = Math.ceil(args.length / 2);
  const sources = plan.reply.sources;
  log.state('set', undefined, { block: { id: blockId, parentId: '', tool: { toolCallId: 'web_search_0', name: 'web_search', status: 'STATUS_PENDING' } } });
  log.state('append', 'block.tool.args', { block: { id: blockId, tool: { args: args.slice(0, cut) } } });
  log.state('append', 'block.tool.args', { block: { id: blockId, tool: { args: args.slice(cut) } } });
  log.state('set', 'block.tool.args,block.tool.status,block.tool.toolCallId', {
    block: { id: blockId, tool: { toolCallId: 'web_search:1', args, status: 'STATUS_RUNNING' } },
  });
  const results = sources.map(({ id, refIndex, ...base }) => ({ searchResult: { id, base, refIndex } }));
  log.state('set', 'block.tool.contents,block.tool.status', { block: { id: blockId, tool: { status: 'STATUS_DONE', contents: results } } });
  const chunks = sources.map(({ id, refIndex, title, url, siteName, snippet, publishTime }) => ({
    id,
    base: { title, url, siteName, snippet, publishTime },
    refIndex,
  }));
  log.state('append', 'message.refs.searchChunks', { message: { refs: { searchChunks: chunks } } });
}

/** Answer text: `set block.text` then appends, with one heartbeat in the middle. Stops after `limit` pieces. */
function answerText(log: EventLog, text: string, blockId: string, limit = Infinity): void {
  const pieces = splitIntoPieces(text).slice(0, limit);
  pieces.forEach((piece, index) => {
    if (index === 0) log.state('set', 'block.text', { block: { id: blockId, text: { content: piece } } });
    else log.state('append', 'block.text.content', { block: { id: blockId, text: { content: piece } } });
    if (index === 4) log.heartbeat(true);
  });
}

function completed(log: EventLog, plan: ChatPlan): void {
  log.state('set', 'message.status', { message: { id: plan.assistantMessageId, status: 'MESSAGE_STATUS_COMPLETED' } });
  log.done();
}

/** Everything up to and including the answer text (optionally cut after `textLimit` pieces). */
function answerBody(log: EventLog, plan: ChatPlan, scenario: ScenarioName, textLimit = Infinity): void {
  opening(log, plan);
  assistantStart(log, plan);
  if (scenario === 'degrade-notice') log.plain({ notification: { type: 'TYPE_MODEL_DEGRADE', message: DEGRADE_MESSAGE } });
  if (scenario === 'unknown-op') log.state('merge', 'widget.layout', { widget: { layout: 'simulated-unknown-container' } });
  let block = 0;
  if (plan.thinkingText !== undefined) thinking(log, plan.thinkingText, `0_${block++}`);
  if (plan.searchQuery !== undefined) searchCall(log, plan, `0_${block++}`);
  answerText(log, plan.reply.text, `0_${block}`, textLimit);
}

function refusal(code: string, reason: string, message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return connectErrorBody(code, undefined, { reason, localizedMessage: { locale: 'en-US', message }, ...extra });
}

/** The event script of one Chat turn under `scenario` (transport-level faults are handled elsewhere). */
export function buildChatScript(plan: ChatPlan, scenario: ScenarioName): ChatScript {
  const log = new EventLog();
  switch (scenario) {
    case 'overload-free-user':
    case 'quota-exhausted':
    case 'paywall': {
      opening(log, plan);
      log.done();
      log.end(refusalFor(scenario));
      return { items: log.items };
    }
    case 'unauthenticated-in-stream':
      log.end(connectErrorBody('unauthenticated', 'invalid auth token', { reason: 'REASON_INVALID_AUTH_TOKEN' }));
      return { items: log.items };
    case 'session-in-progress':
      log.end(sessionInProgressError());
      return { items: log.items };
    case 'empty-stream':
      log.end();
      return { items: log.items };
    case 'exception-mid-stream': {
      answerBody(log, plan, scenario, 3);
      const exception = { error: { reason: 'REASON_COMPLETION_OVERLOADED', localizedMessage: { locale: 'zh-CN', message: EXCEPTION_MESSAGE }, severity: 'SEVERITY_BLOCK_RETRACT' } };
      const lastText = log.items.findLast((item) => item.kind === 'data' && 'block' in item.value);
      const blockId = lastText?.kind === 'data' ? (lastText.value.block as { id: string }).id : '0_0';
      log.state('set', 'block.exception', { block: { id: blockId, exception } });
      completed(log, plan);
      log.end();
      return { items: log.items, finalStatus: 'failed' };
    }
    case 'heartbeats-only':
      opening(log, plan);
      log.items.push({ kind: 'keep-alive' });
      return { items: log.items, finalStatus: 'interrupted' };
    case 'text-then-heartbeats':
      answerBody(log, plan, scenario, 3);
      log.items.push({ kind: 'keep-alive' });
      return { items: log.items, finalStatus: 'interrupted' };
    case 'reset-after-first-byte':
    case 'stall-between-chunks':
      answerBody(log, plan, scenario, 3);
      log.items.push({ kind: scenario === 'reset-after-first-byte' ? 'reset' : 'stall' });
      return { items: log.items, finalStatus: 'interrupted' };
    case 'malformed-frame': {
      answerBody(log, plan, scenario, 2);
      const header = Buffer.from([0x00, 0x00, 0x00, 0x10, 0x00]); // claims 4096 bytes
      log.items.push({ kind: 'raw', bytes: Buffer.concat([header, Buffer.from('{"op":"append"')]) });
      return { items: log.items, finalStatus: 'interrupted' };
    }
    case 'non-json-frame':
      answerBody(log, plan, scenario, 2);
      log.items.push({ kind: 'raw', bytes: encodeEnvelope(FLAG_DATA, 'this is not json {') });
      log.end();
      return { items: log.items, finalStatus: 'interrupted' };
    default:
      answerBody(log, plan, scenario);
      completed(log, plan);
      log.end(scenario === 'error-after-done' ? connectErrorBody('internal', 'simulated error after done') : undefined);
      return { items: log.items, finalStatus: 'completed' };
  }
}

function refusalFor(scenario: 'overload-free-user' | 'quota-exhausted' | 'paywall'): Record<string, unknown> {
  if (scenario === 'overload-free-user') return refusal('resource_exhausted', 'REASON_SERVER_OVERLOADED_FOR_FREE_USER', OVERLOAD_MESSAGE);
  if (scenario === 'quota-exhausted') {
    return {
      ...refusal('resource_exhausted', 'REASON_MEMBERSHIP_QUOTA_EXHAUSTED', QUOTA_MESSAGE, {
        needUpgrade: true,
        upgradeTo: 'LEVEL_ADVANCED',
        source: 'membership_quota_notice',
      }),
      message: QUOTA_MESSAGE,
    };
  }
  return refusal('resource_exhausted', 'REASON_PAYWALL', 'This model needs a subscription', {
    paywall: { feature: 'FEATURE_OK_COMPUTER', minMembershipLevel: 'LEVEL_BASIC', needUpgrade: true },
  });
}

export function sessionInProgressError(): Record<string, unknown> {
  return connectErrorBody('resource_exhausted', SESSION_IN_PROGRESS_MESSAGE, { reason: 'REASON_SESSION_IN_PROGRESS' });
}
