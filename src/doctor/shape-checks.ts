/**
 * @module doctor/shape-checks
 * Strict checks of what came over the wire, step by step, where the dialects are deliberately tolerant: a
 * missing required shape is a fatal finding (the step FAILs even if the gateway limps on); an unknown extra is
 * drift (shown, not fatal). Each finding names the protocol-spec section it contradicts.
 */
import type { DialectName } from '../upstream/dialect.ts';
import type { AccountStep, Finding } from './doctor-types.ts';
import { decodeJwtClaims } from '../jwt.ts';
import { contentType, decodeFrames, describeAnswer, describeNonJson, exchangeTo, jsonOf, keysOf } from './wire-shapes.ts';
import { isPlainObject } from '../plain-object.ts';
import type { WireExchange } from './wire-tap.ts';

export interface ShapeResult {
  findings: Finding[];
  /** Unknown things seen, named as the dialects name them (`event:widget`, `field:block.content`, `op:merge`, `mask:…`). */
  drift: string[];
}

const knownContainers = new Set(['chat', 'message', 'block', 'heartbeat', 'done', 'notification', 'error']);
const knownMasks = new Set([
  'chat.lastRequest', 'message', 'chat.name', 'chat.files', 'message.status', 'message.refs.searchChunks', 'message.refs.usedSearchChunks',
  'block.multiStage', 'block.stage', 'block.think', 'block.think.content', 'block.text', 'block.text.content', 'block.exception',
  'block.tool.args', 'block.tool.status', 'block.tool.toolCallId', 'block.tool.contents', 'block.search.keywords', 'block.search.webPages',
]);
const knownBlockParts = new Set(['id', 'parentId', 'text', 'think', 'tool', 'search', 'exception', 'multiStage', 'stage', 'file']);
const isMissingRoute = (exchange: WireExchange) => exchange.status === 404 || exchange.status === 405 || exchange.status === 501;

export function checkShapes(step: AccountStep, dialect: DialectName, exchanges: readonly WireExchange[]): ShapeResult {
  const result: ShapeResult = { findings: [], drift: [] };
  const checks = dialect === 'current' ? currentChecks : legacyChecks;
  checks[step]?.(exchanges, result);
  return result;
}

type Check = (exchanges: readonly WireExchange[], result: ShapeResult) => void;

function fatal(result: ShapeResult, section: string, expected: string, observed: string): void {
  result.findings.push({ section, expected, observed, isFatal: true });
}

function note(result: ShapeResult, section: string, expected: string, observed: string): void {
  result.findings.push({ section, expected, observed, isFatal: false });
}

/** A documented route that answered "no such route": it moved, even if a fallback made the step work. */
function movedRoute(result: ShapeResult, exchange: WireExchange | undefined, section: string, expected: string): boolean {
  if (!exchange || !isMissingRoute(exchange)) return false;
  fatal(result, section, expected, `${describeAnswer(exchange)} (the endpoint moved or was removed)`);
  return true;
}

const currentChecks: Partial<Record<AccountStep, Check>> = {
  refresh(exchanges, result) {
    const rpc = exchangeTo(exchanges, '.AuthService/RefreshToken');
    const expected = 'POST /api/account.gateway.v1.AuthService/RefreshToken → 200 {"accessToken","refreshToken"}';
    if (movedRoute(result, rpc, '§3.4', expected)) {
      const fallback = exchangeTo(exchanges, '/api/auth/token/refresh');
      if (fallback?.status === 200) result.findings[0].observed += '; the web GET refresh of §9 D3 still answered, so the gateway limps on';
      return;
    }
    if (!rpc || rpc.status !== 200) return;
    const json = jsonOf(rpc);
    if (json === undefined) {
      fatal(result, '§3.4', expected, `200 with ${describeNonJson(rpc)} instead of JSON`);
      return;
    }
    if (!isPlainObject(json) || (typeof json.accessToken !== 'string' && typeof json.access_token !== 'string')) {
      fatal(result, '§3.4', expected, `200 with fields ${keysOf(json)}`);
      return;
    }
    if (typeof json.accessToken !== 'string') note(result, '§3.4', 'camelCase accessToken', 'snake_case access_token');
    checkRotation(json, result);
  },

  'current-user'(exchanges, result) {
    const rpc = exchangeTo(exchanges, '.UserService/GetCurrentUser');
    const expected = 'POST /apiv2/kimi.gateway.account.v1.UserService/GetCurrentUser → 200 {"user":{"id",…}}';
    if (movedRoute(result, rpc, '§3.4', expected) || !rpc || rpc.status !== 200) return;
    const json = jsonOf(rpc);
    const user = isPlainObject(json) ? json.user : undefined;
    if (!isPlainObject(user) || typeof user.id !== 'string') fatal(result, '§3.4', expected, `200 with ${isPlainObject(user) ? `user fields ${keysOf(user)}` : `fields ${keysOf(json)}`}`);
  },

  models(exchanges, result) {
    const rpc = exchangeTo(exchanges, '.ConfigService/GetAvailableModels');
    const expected = 'POST /apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels → 200 {"availableModels":[{"id","scenario",…}]}';
    if (movedRoute(result, rpc, '§3.5', expected) || !rpc || rpc.status !== 200) return;
    const json = jsonOf(rpc);
    const models = isPlainObject(json) ? json.availableModels : undefined;
    if (!Array.isArray(models) || models.length === 0) {
      fatal(result, '§3.5', expected, `200 with fields ${keysOf(json)}`);
      return;
    }
    const unnamed = models.filter((model) => !isPlainObject(model) || (typeof model.id !== 'string' && typeof model.key !== 'string'));
    if (unnamed.length > 0) fatal(result, '§3.5', 'every catalogue entry has an "id"', `${unnamed.length} entr${unnamed.length === 1 ? 'y' : 'ies'} with fields ${keysOf(unnamed[0])}`);
    const withoutScenario = models.filter((model) => isPlainObject(model) && typeof model.scenario !== 'string');
    if (withoutScenario.length > 0) note(result, '§3.5', 'every catalogue entry has a "scenario"', `${withoutScenario.length} without one`);
  },

  chat(exchanges, result) {
    const rpc = exchangeTo(exchanges, '.ChatService/Chat');
    const expected = 'POST /apiv2/kimi.gateway.chat.v1.ChatService/Chat → 200 application/connect+json';
    if (movedRoute(result, rpc, '§3.5', expected) || !rpc || rpc.status !== 200) return;
    if (!contentType(rpc).startsWith('application/connect+json')) {
      fatal(result, '§3.2', expected, `200 ${contentType(rpc) || 'without a content type'}`);
      return;
    }
    checkChatFrames(decodeFrames(rpc.responseBody), result);
  },

  'delete-chat'(exchanges, result) {
    const rpc = exchangeTo(exchanges, '.ChatService/DeleteChat');
    // The dialect reads 404 as "already deleted"; a 404 that says the *route* is unknown means chats pile up.
    if (rpc?.status === 404 && !/not_found/.test(describeAnswer(rpc))) {
      fatal(result, '§3.11', 'POST /apiv2/kimi.chat.v1.ChatService/DeleteChat → 200', `${describeAnswer(rpc)} (the endpoint moved; chats are not deleted)`);
    }
  },
};

const knownRefreshFields = new Set(['accessToken', 'access_token', 'refreshToken', 'refresh_token']);

/**
 * §3.4 / §10.2: both tokens rotate on every refresh, so an answer whose rotated refresh token is not where the spec
 * puts it, while it carries fields nobody knows, FAILs: the old token may already be spent, and the doctor must not
 * use up a rotation and report success. Without unknown fields a missing refresh token stays a note (the web GET
 * path may not rotate, §9 D3).
 */
function checkRotation(json: Record<string, unknown>, result: ShapeResult): void {
  const unknown = Object.keys(json).filter((name) => !knownRefreshFields.has(name));
  // Field names are upstream data: only plain identifiers are shown (fieldLabel).
  for (const name of unknown) result.drift.push(`field:refresh.${fieldLabel(name)}`);
  if (typeof json.refreshToken === 'string' || typeof json.refresh_token === 'string') return;
  if (unknown.length === 0) {
    note(result, '§3.4', 'a rotated refreshToken', `no refresh token in ${keysOf(json)}`);
    return;
  }
  const carrier = unknown.find((name) => typeof json[name] === 'string' && decodeJwtClaims(json[name] as string)?.typ === 'refresh');
  const where = carrier ? `; a refresh JWT came under the unknown field "${fieldLabel(carrier)}"` : '; the rotated token may be lost';
  fatal(result, '§3.4, §10.2', 'the rotated refresh token as "refreshToken" (both tokens rotate on every refresh and the new one must be kept)', `no refresh token in ${keysOf(json)}${where}`);
}

function fieldLabel(name: string): string {
  return /^[A-Za-z_][\w-]{0,63}$/.test(name) ? name : '(unusual-name)';
}

/** §3.6 / §3.2: the event stream of one turn. */
function checkChatFrames(frames: ReturnType<typeof decodeFrames>, result: ShapeResult): void {
  if (frames.problem) fatal(result, '§3.2', 'whole Connect envelopes', frames.problem);
  if (!frames.hasEndFrame) fatal(result, '§3.2', 'an end-stream frame (flag 0x02)', 'the stream ended without one');
  let chatFields: unknown;
  let hasChatId = false;
  let hasAssistant = false;
  let hasText = false;
  let hasDone = false;
  const unknownBlockParts = new Set<string>();
  for (const frame of frames.data) {
    if (!isPlainObject(frame)) {
      result.drift.push(`frame:${typeof frame}`);
      continue;
    }
    for (const [key, value] of Object.entries(frame)) {
      if (isPlainObject(value) && !knownContainers.has(key)) result.drift.push(`event:${key}`);
    }
    if (typeof frame.op === 'string' && frame.op !== 'set' && frame.op !== 'append') result.drift.push(`op:${frame.op}`);
    if (typeof frame.mask === 'string') {
      for (const mask of frame.mask.split(',')) if (!knownMasks.has(mask.trim())) result.drift.push(`mask:${mask.trim()}`);
    }
    if (frame.op !== undefined && frame.eventOffset === undefined && !('heartbeat' in frame)) result.drift.push('missing:eventOffset');
    if (isPlainObject(frame.chat)) {
      chatFields ??= frame.chat;
      if (typeof frame.chat.id === 'string' && frame.chat.id) hasChatId = true;
    }
    if (isPlainObject(frame.message) && frame.message.role === 'assistant' && typeof frame.message.id === 'string') hasAssistant = true;
    if (isPlainObject(frame.block)) {
      if (isPlainObject(frame.block.text)) hasText = true;
      for (const [part, value] of Object.entries(frame.block)) if (isPlainObject(value) && !knownBlockParts.has(part)) unknownBlockParts.add(part);
    }
    if ('done' in frame) hasDone = true;
  }
  for (const part of unknownBlockParts) result.drift.push(`field:block.${part}`);
  if (!hasChatId) fatal(result, '§3.6', 'chat.id in the first chat event (chat.lastRequest)', chatFields ? `chat fields ${keysOf(chatFields)}` : 'no chat event');
  if (!hasAssistant) fatal(result, '§3.6', 'the assistant message event (message.role "assistant" with an id)', 'none');
  const renamed = [...unknownBlockParts].map((part) => `block.${part}`).join(', ');
  if (!hasText) fatal(result, '§3.6', 'block.text frames', renamed ? `unknown ${renamed} instead` : 'no answer frames');
  if (!hasDone) note(result, '§3.6', 'a done event', 'none');
  result.drift = [...new Set(result.drift)];
}

const legacyChecks: Partial<Record<AccountStep, Check>> = {
  refresh(exchanges, result) {
    const rest = exchangeTo(exchanges, '/api/auth/token/refresh');
    const expected = 'GET /api/auth/token/refresh → 200 {"access_token","refresh_token"}';
    if (movedRoute(result, rest, '§2.2', expected) || !rest || rest.status !== 200) return;
    const json = jsonOf(rest);
    if (json === undefined) fatal(result, '§2.2', expected, `200 with ${describeNonJson(rest)} instead of JSON`);
    else if (!isPlainObject(json) || typeof json.access_token !== 'string') fatal(result, '§2.2', expected, `200 with fields ${keysOf(json)}`);
  },
  'current-user'(exchanges, result) {
    const rest = exchangeTo(exchanges, /\/api\/user$/);
    const expected = 'GET /api/user → 200 {"id","status"}';
    if (movedRoute(result, rest, '§2.2', expected) || !rest || rest.status !== 200) return;
    const json = jsonOf(rest);
    if (!isPlainObject(json) || typeof json.id !== 'string') fatal(result, '§2.2', expected, `200 with fields ${keysOf(json)}`);
  },
  chat(exchanges, result) {
    const create = exchangeTo(exchanges, /^\/api\/chat$/);
    if (movedRoute(result, create, '§2.3', 'POST /api/chat → 200 {"id"}')) return;
    const stream = exchangeTo(exchanges, /\/completion\/stream$/);
    const expected = 'POST /api/chat/{id}/completion/stream → 200 text/event-stream with cmpl … all_done';
    if (movedRoute(result, stream, '§2.3', expected) || !stream || stream.status !== 200) return;
    const text = stream.responseBody.toString('utf8');
    if (!/"event"\s*:\s*"cmpl"/.test(text)) fatal(result, '§2.5', 'cmpl events', 'none in the stream');
    if (!/"event"\s*:\s*"all_done"/.test(text)) note(result, '§2.5', 'an all_done event', 'none');
  },
};
