/**
 * @module http/responses/responses-request
 * The Responses API request (`POST /v1/responses`): its zod schema (loose about fields we do not own) and
 * the translation of `input` items, `instructions`, `tools`, `tool_choice` and `text.format` into the chat
 * use case's messages and the tool layer's request. Pure.
 */
import { z } from 'zod';
import { InvalidRequestError, NotFoundError } from '../../errors.ts';
import type { ChatMessage, ContentPart, ToolCallRecord } from '../../chat/chat-request.ts';
import type { ResponseFormat, ToolChoice, ToolDefinition } from '../../chat/tools/tool-events.ts';
import type { ToolParamNames, ToolRequest } from '../../chat/tools/tool-plan.ts';
import { looseBoolean } from '../openai-schema.ts';

const contentPart = z.looseObject({ type: z.string() });
const inputItem = z.looseObject({ type: z.string().optional(), role: z.string().optional() });

const tool = z.looseObject({
  type: z.string(),
  name: z.string().optional(),
  description: z.string().optional().nullable(),
  parameters: z.record(z.string(), z.unknown()).optional().nullable(),
  strict: looseBoolean.optional().nullable(),
});

export const responsesRequestSchema = z.looseObject({
  model: z.string().optional(),
  input: z.union([z.string(), z.array(inputItem)]),
  instructions: z.string().optional().nullable(),
  tools: z.array(tool).optional().nullable(),
  tool_choice: z.union([z.enum(['auto', 'none', 'required']), z.looseObject({ type: z.string(), name: z.string().optional() })]).optional().nullable(),
  parallel_tool_calls: looseBoolean.optional().nullable(),
  previous_response_id: z.string().min(1).max(250).optional().nullable(),
  // OpenAI's Conversations API id (string or {id}); only our own response ids are accepted (conversationOf).
  conversation: z.union([z.string().max(250), z.looseObject({ id: z.string().max(250) })], { error: 'must be a response id (resp_...) or {"id": "resp_..."}' }).optional().nullable(),
  store: looseBoolean.optional().nullable(),
  stream: looseBoolean.optional().nullable(),
  background: looseBoolean.optional().nullable(),
  text: z.looseObject({ format: z.looseObject({ type: z.string(), name: z.string().optional(), schema: z.record(z.string(), z.unknown()).optional(), description: z.string().optional(), strict: looseBoolean.optional().nullable() }).optional() }).optional().nullable(),
  reasoning: z.looseObject({ effort: z.string().optional().nullable(), summary: z.string().optional().nullable() }).optional().nullable(),
  // The ranges OpenAI enforces (it asks max_output_tokens >= 16; we only refuse what cannot mean anything).
  max_output_tokens: z.number().int().min(1, 'must be a positive integer').optional().nullable(),
  temperature: z.number().min(0, 'must be between 0 and 2').max(2, 'must be between 0 and 2').optional().nullable(),
  top_p: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').optional().nullable(),
  metadata: z.record(z.string(), z.unknown()).optional().nullable(),
  user: z.string().optional().nullable(),
});

export type ResponsesRequest = z.output<typeof responsesRequestSchema>;

/** Response ids: `resp_<upstream chat id>` continues that chat; store:false answers get an id that cannot. */
export const RESPONSE_ID_PREFIX = 'resp_';
export const UNSTORED_ID_PREFIX = 'resp_nostore_';

export const responsesParams: ToolParamNames = {
  tools: 'tools',
  toolName: (index) => `tools[${index}].name`,
  toolSchema: (index) => `tools[${index}].parameters`,
  toolChoice: 'tool_choice',
  responseFormatSchema: 'text.format.schema',
};

export interface TranslatedResponsesRequest {
  messages: ChatMessage[];
  /** Origin of each message, for error params (`input[3]`). */
  messageParams: string[];
  conversationId: string | undefined;
  useSearch: boolean;
  tools: ToolRequest;
}

export function translateResponsesRequest(body: ResponsesRequest): TranslatedResponsesRequest {
  if (body.background) throw new InvalidRequestError('background responses are not supported by this gateway; omit background.', { param: 'background' });
  const messages: ChatMessage[] = [];
  const messageParams: string[] = [];
  if (body.instructions) {
    messages.push({ role: 'system', content: body.instructions });
    messageParams.push('instructions');
  }
  const items = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : body.input;
  items.forEach((item, index) => addItem(messages, messageParams, item, `input[${index}]`));
  const { tools, useSearch } = translateTools(body.tools ?? []);
  return {
    messages,
    messageParams,
    conversationId: continuedChatOf(body),
    useSearch,
    tools: {
      tools,
      choice: translateToolChoice(body.tool_choice ?? undefined),
      parallelToolCalls: body.parallel_tool_calls ?? true,
      responseFormat: translateFormat(body.text?.format),
      params: responsesParams,
    },
  };
}

/** The upstream chat a request continues: `previous_response_id`, or `conversation` naming one of our response ids. */
function continuedChatOf(body: ResponsesRequest): string | undefined {
  const conversation = body.conversation ?? undefined;
  const previous = body.previous_response_id ?? undefined;
  if (conversation === undefined) return previous === undefined ? undefined : conversationIdOf(previous, 'previous_response_id');
  if (previous !== undefined) {
    throw new InvalidRequestError('Send either previous_response_id or conversation, not both.', { param: 'conversation' });
  }
  const id = typeof conversation === 'string' ? conversation : conversation.id;
  // The gateway has no Conversations API: a conv_... id names nothing here, and answering in a new chat would lose the context silently.
  if (!id.startsWith(RESPONSE_ID_PREFIX)) {
    throw new InvalidRequestError('This gateway has no Conversations API: continue a conversation with previous_response_id (the id of the last response, resp_...).', { param: 'conversation' });
  }
  return conversationIdOf(id, 'conversation');
}

function conversationIdOf(responseId: string, param: string): string {
  if (responseId.startsWith(UNSTORED_ID_PREFIX)) {
    throw new NotFoundError(`Response ${responseId} was created with store: false, so it cannot be continued.`, { code: 'response_not_found', param });
  }
  // `resp_` alone names no chat: continuing "nothing" must not quietly start a new one.
  if (!responseId.startsWith(RESPONSE_ID_PREFIX) || responseId.length === RESPONSE_ID_PREFIX.length) {
    throw new NotFoundError(`${param} must be the id of a response from this gateway (resp_...).`, { code: 'response_not_found', param });
  }
  return responseId.slice(RESPONSE_ID_PREFIX.length);
}

type InputItem = z.output<typeof inputItem>;

function addItem(messages: ChatMessage[], params: string[], item: InputItem, param: string): void {
  const type = item.type ?? 'message';
  if (type === 'message') {
    const role = item.role;
    if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer') {
      throw new InvalidRequestError(`${param}.role must be user, assistant, system or developer.`, { param: `${param}.role` });
    }
    messages.push({ role, content: translateContent(item.content, `${param}.content`) });
    params.push(param);
    return;
  }
  if (type === 'function_call') {
    const call = parseWithParam(functionCallItem, item, param);
    const record: ToolCallRecord = { id: call.call_id, type: 'function', function: { name: call.name, arguments: call.arguments } };
    const previous = messages.at(-1);
    // Consecutive calls (and a message right before them) form one assistant turn, as in chat completions.
    if (previous?.role === 'assistant') previous.tool_calls = [...(previous.tool_calls ?? []), record];
    else {
      messages.push({ role: 'assistant', content: null, tool_calls: [record] });
      params.push(param);
    }
    return;
  }
  if (type === 'function_call_output') {
    const output = parseWithParam(functionCallOutputItem, item, param);
    const content = typeof output.output === 'string' ? output.output : translateContent(output.output, `${param}.output`);
    messages.push({ role: 'tool', tool_call_id: output.call_id, content });
    params.push(param);
    return;
  }
  // Reasoning items from earlier answers carry nothing Kimi can use again.
  if (type === 'reasoning') return;
  throw new InvalidRequestError(`Input items of type "${type}" are not supported; use message, function_call, function_call_output or reasoning.`, { param: `${param}.type` });
}

const functionCallItem = z.looseObject({ call_id: z.string().min(1), name: z.string().min(1), arguments: z.string() });
const functionCallOutputItem = z.looseObject({ call_id: z.string().min(1), output: z.union([z.string(), z.array(contentPart)]) });

function parseWithParam<T extends z.ZodType>(schema: T, value: unknown, param: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.map(String).join('.');
  throw new InvalidRequestError(`Invalid ${param}.${field}: ${issue.message}.`, { param: `${param}.${field}` });
}

function translateContent(content: unknown, param: string): string | ContentPart[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new InvalidRequestError(`${param} must be a string or an array of content parts.`, { param });
  return content.map((part: Record<string, unknown>, index) => translatePart(part, `${param}[${index}]`));
}

function translatePart(part: Record<string, unknown>, param: string): ContentPart {
  if (part === null || typeof part !== 'object' || Array.isArray(part)) {
    throw new InvalidRequestError(`${param} must be a content part object such as {"type":"input_text","text":"..."}.`, { param });
  }
  switch (part.type) {
    case 'input_text':
    case 'output_text':
    case 'text':
      return { type: 'text', text: textField(part, 'text', param) };
    case 'refusal':
      return { type: 'text', text: textField(part, 'refusal', param) };
    case 'input_image': {
      if (typeof part.image_url !== 'string' || !part.image_url) throw unsupportedFileId(param, 'input_image', 'image_url');
      return { type: 'image_url', image_url: { url: part.image_url } };
    }
    case 'input_file': {
      if (typeof part.file_url === 'string' && part.file_url) return { type: 'file', file_url: { url: part.file_url } };
      if (typeof part.file_data !== 'string' || !part.file_data) throw unsupportedFileId(param, 'input_file', 'file_data or file_url');
      const data = part.file_data.startsWith('data:') ? part.file_data : `data:application/octet-stream;base64,${part.file_data}`;
      return { type: 'file', file: { file_data: data, filename: typeof part.filename === 'string' ? part.filename : undefined } };
    }
    default:
      throw new InvalidRequestError(`Content parts of type "${String(part.type)}" are not supported.`, { param: `${param}.type` });
  }
}

/** A part's text: absent or null reads as empty (lenient, as before); anything but a string is refused rather than sent as "[object Object]". */
function textField(part: Record<string, unknown>, field: string, param: string): string {
  const value = part[field] ?? '';
  if (typeof value !== 'string') throw new InvalidRequestError(`${param}.${field} must be a string.`, { param: `${param}.${field}` });
  return value;
}

function unsupportedFileId(param: string, type: string, field: string): InvalidRequestError {
  return new InvalidRequestError(`${type} needs ${field}; uploaded file ids (file_id) are not supported by this gateway.`, { param });
}

function translateTools(tools: z.output<typeof tool>[]): { tools: ToolDefinition[]; useSearch: boolean } {
  const definitions: ToolDefinition[] = [];
  let useSearch = false;
  tools.forEach((entry, index) => {
    if (entry.type === 'web_search' || entry.type === 'web_search_preview') {
      // Kimi's own web search answers these (the sources come back in the text, as with use_search).
      useSearch = true;
      return;
    }
    if (entry.type !== 'function') {
      throw new InvalidRequestError(`Tools of type "${entry.type}" are not supported; use function tools (or web_search).`, { param: `tools[${index}].type` });
    }
    if (!entry.name) throw new InvalidRequestError('A function tool needs a name.', { param: `tools[${index}].name` });
    definitions.push({ name: entry.name, description: entry.description ?? undefined, parameters: entry.parameters ?? { type: 'object', properties: {} } });
  });
  return { tools: definitions, useSearch };
}

function translateToolChoice(choice: ResponsesRequest['tool_choice']): ToolChoice {
  if (choice === undefined || choice === null || choice === 'auto') return { kind: 'auto' };
  if (choice === 'none') return { kind: 'none' };
  if (choice === 'required') return { kind: 'required' };
  if (choice.type === 'function' && choice.name) return { kind: 'function', name: choice.name };
  throw new InvalidRequestError(`tool_choice of type "${choice.type}" is not supported; use auto, none, required or {"type":"function","name":...}.`, { param: 'tool_choice' });
}

function translateFormat(format: NonNullable<ResponsesRequest['text']>['format']): ResponseFormat {
  if (!format || format.type === 'text') return { kind: 'text' };
  if (format.type === 'json_object') return { kind: 'json-object' };
  if (format.type === 'json_schema') {
    if (!format.schema) throw new InvalidRequestError('text.format json_schema needs a schema.', { param: 'text.format.schema' });
    return { kind: 'json-schema', name: format.name ?? 'response', schema: format.schema, description: format.description, strict: format.strict ?? false };
  }
  throw new InvalidRequestError(`text.format type "${format.type}" is not supported; use text, json_object or json_schema.`, { param: 'text.format.type' });
}
