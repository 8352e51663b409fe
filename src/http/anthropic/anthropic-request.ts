/**
 * @module http/anthropic/anthropic-request
 * The Anthropic Messages request (`POST /v1/messages`, `/v1/messages/count_tokens`): zod schema and the
 * translation of system, content blocks (text, image, document, tool_use, tool_result, thinking) and tools
 * into the chat use case's messages and the tool layer's request. Base64 sources become data: URLs, the
 * attachment form the chat layer already understands. Pure.
 */
import { z } from 'zod';
import { InvalidRequestError, NotFoundError } from '../../errors.ts';
import type { ChatMessage, ContentPart, ToolCallRecord } from '../../chat/chat-request.ts';
import type { ToolChoice, ToolDefinition } from '../../chat/tools/tool-events.ts';
import type { ToolParamNames, ToolRequest } from '../../chat/tools/tool-plan.ts';

const block = z.looseObject({ type: z.string() });

export const anthropicRequestSchema = z.looseObject({
  model: z.string().min(1, 'model is required'),
  max_tokens: z.number().int().positive().optional(),
  messages: z.array(z.looseObject({ role: z.enum(['user', 'assistant']), content: z.union([z.string(), z.array(block)]) })).min(1, 'messages must be a non-empty array'),
  system: z.union([z.string(), z.array(z.looseObject({ type: z.literal('text'), text: z.string() }))]).optional(),
  tools: z.array(z.looseObject({ name: z.string().min(1), type: z.string().optional().nullable(), description: z.string().optional(), input_schema: z.record(z.string(), z.unknown()).optional() })).optional(),
  tool_choice: z.looseObject({ type: z.enum(['auto', 'any', 'tool', 'none']), name: z.string().optional(), disable_parallel_tool_use: z.boolean().optional() }).optional(),
  thinking: z.looseObject({ type: z.string(), budget_tokens: z.number().optional() }).optional(),
  stream: z.boolean().optional(),
  stop_sequences: z.array(z.string()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  thread: z.looseObject({ type: z.string() }).optional().nullable(),
});

export type AnthropicRequest = z.output<typeof anthropicRequestSchema>;

export const anthropicParams: ToolParamNames = {
  tools: 'tools',
  toolName: (index) => `tools.${index}.name`,
  toolSchema: (index) => `tools.${index}.input_schema`,
  toolChoice: 'tool_choice.name',
  responseFormatSchema: 'output_format',
};

export interface TranslatedAnthropicRequest {
  /** The model name for the chat use case (with `-thinking` when thinking is enabled). */
  model: string;
  messages: ChatMessage[];
  /** Origin of each message, for error params (`messages.2.content.0`). */
  messageParams: string[];
  useSearch: boolean;
  tools: ToolRequest;
}

export function translateAnthropicRequest(body: AnthropicRequest): TranslatedAnthropicRequest {
  // The SDK's threaded tool runner sends only the new turn on a `continue`. This gateway keeps no threads, so it
  // says the thread is gone: the SDK answers that code by sending the whole conversation again (a `create`, which
  // needs nothing kept and is answered like any request).
  if (body.thread?.type === 'continue') {
    throw new NotFoundError('This gateway keeps no message threads: send the whole conversation (the SDK does so on this error).', { code: 'thread_not_found', param: 'thread' });
  }
  const messages: ChatMessage[] = [];
  const messageParams: string[] = [];
  const system = typeof body.system === 'string' ? body.system : body.system?.map((part) => part.text).join('\n');
  if (system) {
    messages.push({ role: 'system', content: system });
    messageParams.push('system');
  }
  body.messages.forEach((message, index) => {
    const param = `messages.${index}`;
    if (typeof message.content === 'string') {
      messages.push({ role: message.role, content: message.content });
      messageParams.push(param);
    } else if (message.role === 'assistant') {
      addAssistant(messages, messageParams, message.content, param);
    } else {
      addUser(messages, messageParams, message.content, param);
    }
  });
  const { tools, useSearch } = translateTools(body.tools ?? []);
  const thinking = body.thinking?.type === 'enabled' || body.thinking?.type === 'adaptive';
  return {
    model: thinking && !/thinking/i.test(body.model) ? `${body.model}-thinking` : body.model,
    messages,
    messageParams,
    useSearch,
    tools: { tools, choice: translateToolChoice(body.tool_choice), parallelToolCalls: !body.tool_choice?.disable_parallel_tool_use, params: anthropicParams },
  };
}

type Block = z.output<typeof block>;

function addAssistant(messages: ChatMessage[], params: string[], blocks: Block[], param: string): void {
  const parts: ContentPart[] = [];
  const calls: ToolCallRecord[] = [];
  blocks.forEach((entry, index) => {
    const at = `${param}.content.${index}`;
    if (entry.type === 'text') parts.push({ type: 'text', text: blockText(entry, at) });
    else if (entry.type === 'tool_use') {
      const use = parseBlock(toolUseBlock, entry, at);
      calls.push({ id: use.id, type: 'function', function: { name: use.name, arguments: JSON.stringify(use.input ?? {}) } });
    } else if (entry.type !== 'thinking' && entry.type !== 'redacted_thinking') {
      // Earlier thinking is Kimi's own and is not sent back; anything else is unexpected in an assistant turn.
      throw unsupportedBlock(entry.type, at);
    }
  });
  messages.push({ role: 'assistant', content: parts.length ? parts : null, ...(calls.length ? { tool_calls: calls } : {}) });
  params.push(param);
}

function addUser(messages: ChatMessage[], params: string[], blocks: Block[], param: string): void {
  const parts: ContentPart[] = [];
  blocks.forEach((entry, index) => {
    const at = `${param}.content.${index}`;
    if (entry.type === 'tool_result') {
      const result = parseBlock(toolResultBlock, entry, at);
      const content = typeof result.content === 'string' || result.content === undefined ? (result.content ?? '') : result.content.map((inner, innerIndex) => toPart(inner, `${at}.content.${innerIndex}`));
      const flagged = result.is_error ? prefixError(content) : content;
      messages.push({ role: 'tool', tool_call_id: result.tool_use_id, content: flagged });
      params.push(`${at}.tool_use_id`);
    } else parts.push(toPart(entry, at));
  });
  if (parts.length > 0) {
    messages.push({ role: 'user', content: parts });
    params.push(param);
  }
}

const toolUseBlock = z.looseObject({ id: z.string().min(1), name: z.string().min(1), input: z.unknown().optional() });
const toolResultBlock = z.looseObject({ tool_use_id: z.string().min(1), content: z.union([z.string(), z.array(block)]).optional(), is_error: z.boolean().optional() });
const base64Source = z.looseObject({ type: z.literal('base64'), media_type: z.string().min(1), data: z.string().min(1) });
const urlSource = z.looseObject({ type: z.literal('url'), url: z.string().min(1) });
const textSource = z.looseObject({ type: z.literal('text'), data: z.string() });
const source = z.discriminatedUnion('type', [base64Source, urlSource, textSource]);

function toPart(entry: Block, at: string): ContentPart {
  if (entry.type === 'text') return { type: 'text', text: blockText(entry, at) };
  if (entry.type === 'image' || entry.type === 'document') {
    const from = parseBlock(z.looseObject({ source }), entry, at).source;
    if (from.type === 'text') return { type: 'text', text: from.data };
    const url = from.type === 'url' ? from.url : `data:${from.media_type};base64,${from.data}`;
    if (entry.type === 'image') return { type: 'image_url', image_url: { url } };
    const title = typeof entry.title === 'string' ? entry.title : undefined;
    return from.type === 'url' ? { type: 'file', file_url: { url } } : { type: 'file', file: { file_data: url, filename: title } };
  }
  throw unsupportedBlock(entry.type, at);
}

/** A text block's text: absent or null reads as empty (lenient, as before); anything but a string is refused rather than sent as "[object Object]". */
function blockText(entry: Block, at: string): string {
  const text = entry.text ?? '';
  if (typeof text !== 'string') throw new InvalidRequestError(`${at}.text: must be a string.`, { param: `${at}.text` });
  return text;
}

function prefixError(content: string | ContentPart[]): string | ContentPart[] {
  return typeof content === 'string' ? `[error] ${content}` : [{ type: 'text', text: '[error]' }, ...content];
}

function parseBlock<T extends z.ZodType>(schema: T, value: unknown, at: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.map(String).join('.');
  throw new InvalidRequestError(`${at}.${field}: ${issue.message}`, { param: `${at}.${field}` });
}

function unsupportedBlock(type: string, at: string): InvalidRequestError {
  return new InvalidRequestError(`${at}: content blocks of type "${type}" are not supported here.`, { param: `${at}.type` });
}

function translateTools(tools: NonNullable<AnthropicRequest['tools']>): { tools: ToolDefinition[]; useSearch: boolean } {
  const definitions: ToolDefinition[] = [];
  let useSearch = false;
  tools.forEach((tool, index) => {
    if (tool.type && tool.type.startsWith('web_search')) {
      // Anthropic's server-side web search: Kimi's own search answers it.
      useSearch = true;
      return;
    }
    if (tool.type && tool.type !== 'custom') {
      throw new InvalidRequestError(`Tools of type "${tool.type}" are not supported; use custom tools with an input_schema.`, { param: `tools.${index}.type` });
    }
    definitions.push({ name: tool.name, description: tool.description, parameters: tool.input_schema ?? { type: 'object', properties: {} } });
  });
  return { tools: definitions, useSearch };
}

function translateToolChoice(choice: AnthropicRequest['tool_choice']): ToolChoice {
  if (!choice || choice.type === 'auto') return { kind: 'auto' };
  if (choice.type === 'none') return { kind: 'none' };
  if (choice.type === 'any') return { kind: 'required' };
  if (!choice.name) throw new InvalidRequestError('tool_choice of type "tool" needs a name.', { param: 'tool_choice.name' });
  return { kind: 'function', name: choice.name };
}
