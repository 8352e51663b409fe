/**
 * @module simulator/chat-request
 * Reads a Connect `ChatService/Chat` request body in snake_case or camelCase (spec §3.2, §3.5) into one
 * normalised shape, rejecting what the server would reject with `invalid_argument`.
 */
import { field, isObject } from './http-io.ts';

export interface ChatRequest {
  /** Undefined for a new chat (`chat_id` omitted or "" — the spec §6 item 4 conflict is accepted both ways). */
  chatId?: string;
  parentId?: string;
  /** Text blocks joined with a newline. */
  text: string;
  fileIds: string[];
  thinking: boolean;
  search: boolean;
  apiScenario: string;
  model?: string;
  reasoningEffort?: string;
  kimiplusId?: string;
}

export type ChatRequestResult = { ok: true; request: ChatRequest } | { ok: false; message: string };

const AGENT_MODELS = new Set(['k3-agent', 'k28-agent-preview', 'k3-agent-swarm']);

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function parseChatRequest(body: unknown): ChatRequestResult {
  if (!isObject(body)) return { ok: false, message: 'request must be a JSON object' };
  const message = field(body, 'message');
  if (!isObject(message)) return { ok: false, message: 'message is required' };
  const role = field(message, 'role');
  if (role !== undefined && role !== 'user') return { ok: false, message: 'message.role must be "user"' };
  const blocks = field(message, 'blocks');
  if (!Array.isArray(blocks) || blocks.length === 0) return { ok: false, message: 'message.blocks must be a non-empty array' };
  const texts: string[] = [];
  const fileIds: string[] = [];
  for (const block of blocks) {
    const text = field(block, 'text');
    const file = field(block, 'file');
    if (isObject(text) && typeof text.content === 'string') texts.push(text.content);
    else if (isObject(file) && typeof file.id === 'string' && file.id !== '') fileIds.push(file.id);
    else return { ok: false, message: 'each block needs text.content or file.id' };
  }
  if (texts.join('').trim() === '' && fileIds.length === 0) return { ok: false, message: 'message has no content' };
  const options = field(body, 'options');
  const tools = field(body, 'tools');
  const request: ChatRequest = {
    chatId: optionalString(field(body, 'chat_id', 'chatId')),
    parentId: optionalString(field(message, 'parent_id', 'parentId')),
    text: texts.join('\n'),
    fileIds,
    thinking: field(options, 'thinking') === true,
    search: Array.isArray(tools) && tools.some((tool) => field(tool, 'type') === 'TOOL_TYPE_SEARCH'),
    apiScenario: optionalString(field(body, 'scenario')) ?? optionalString(field(message, 'scenario')) ?? 'SCENARIO_CHAT',
    model: optionalString(field(options, 'model')),
    reasoningEffort: optionalString(field(options, 'reasoning_effort', 'reasoningEffort')),
    kimiplusId: optionalString(field(body, 'kimiplus_id', 'kimiplusId', 'kimi_plus_id', 'kimiPlusId')),
  };
  // K3/K2.8 have no "off" rung on their effort ladder (spec §3.5, §3.12 [I]).
  if (request.reasoningEffort === 'REASONING_EFFORT_NONE' && request.model !== undefined && AGENT_MODELS.has(request.model)) {
    return { ok: false, message: `reasoning effort REASONING_EFFORT_NONE is not supported by ${request.model}` };
  }
  return { ok: true, request };
}
