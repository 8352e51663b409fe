/**
 * @module http/openai-schema
 * zod schemas of the OpenAI chat request (loose about fields we do not own; lenient with the
 * non-standard shapes real clients send, e.g. `stream: "true"`) and the types of the response objects.
 */
import { z } from 'zod';
import { InvalidRequestError } from '../errors.ts';
import type { ChatMessage, ToolCallRecord } from '../chat/chat-request.ts';

/** Booleans as some clients (NextChat, one-api, Dify) send them: true/false, "true"/"false", 1/0. */
export const looseBoolean = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']), z.literal(1), z.literal(0)]).transform(
  (value) => value === true || value === 'true' || value === '1' || value === 1,
);

const contentPart = z.looseObject({ type: z.string() });

export const chatMessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.array(z.looseObject({ id: z.string(), type: z.literal('function').default('function'), function: z.object({ name: z.string(), arguments: z.string() }) })).optional(),
  tool_call_id: z.string().optional(),
  /** Deprecated form of one assistant call (older LangChain and Dify); answered by a `function` message. */
  function_call: z.looseObject({ name: z.string().min(1), arguments: z.string().optional().nullable() }).optional().nullable(),
});

export const chatCompletionRequestSchema = z.looseObject({
  model: z.string().optional(),
  messages: z.array(chatMessageSchema).min(1, 'messages must be a non-empty array'),
  stream: looseBoolean.optional().nullable(),
  stream_options: z.looseObject({ include_usage: looseBoolean.optional() }).optional().nullable(),
  conversation_id: z.string().min(1).max(200).optional().nullable(),
  use_search: looseBoolean.optional().nullable(),
});

export type ChatCompletionRequest = z.output<typeof chatCompletionRequestSchema>;

/** Safe-parses a body; the first issue becomes a 400 envelope whose `param` names the field. */
export function parseWith<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidRequestError('The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue.path.map((segment, index) => (typeof segment === 'number' ? `[${segment}]` : `${index ? '.' : ''}${String(segment)}`)).join('');
  throw new InvalidRequestError(`Invalid ${param || 'body'}: ${describeIssue(issue, body)}`, { param: param || null });
}

function describeIssue(issue: z.core.$ZodIssue, body: object): string {
  if (issue.code === 'invalid_value' && issue.path.at(-1) === 'role') {
    return `unknown role; use one of ${issue.values.map(String).join(', ')}.`;
  }
  // Zod leaves `issue.input` out unless asked to copy every input, so whether the field was sent is read from the body.
  if (issue.code === 'invalid_type' && valueAt(body, issue.path) === undefined) return 'required.';
  return `${issue.message}.`;
}

function valueAt(body: object, path: readonly PropertyKey[]): unknown {
  let value: unknown = body;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/**
 * The messages in the use case's form. The deprecated pair, an assistant `function_call` and the `function`
 * message with its result, becomes a one-element `tool_calls` and a `tool` message answering its id, so the
 * prompt shows them as it shows the tools path (the call in the grammar, then `[result of call_…]`).
 */
export function toChatMessages(messages: ChatCompletionRequest['messages']): ChatMessage[] {
  const unanswered: ToolCallRecord[] = [];
  return messages.map((message, index) => {
    const converted: ChatMessage = {
      role: message.role,
      content: (message.content ?? null) as ChatMessage['content'],
      name: message.name,
      tool_calls: message.tool_calls as ChatMessage['tool_calls'],
      tool_call_id: message.tool_call_id,
    };
    if (message.role === 'assistant' && message.function_call && !message.tool_calls?.length) {
      // A stable id from the position: the same history renders the same prompt on every request.
      const call: ToolCallRecord = { id: `call_fn_${index}`, type: 'function', function: { name: message.function_call.name, arguments: message.function_call.arguments || '{}' } };
      unanswered.push(call);
      return { ...converted, tool_calls: [call] };
    }
    if (message.role === 'function' && !message.tool_call_id) {
      const at = unanswered.findIndex((call) => message.name === undefined || call.function.name === message.name);
      // Without a matching call (e.g. a continuation) it stays a `function` message, rendered with its name.
      if (at !== -1) return { ...converted, role: 'tool', tool_call_id: unanswered.splice(at, 1)[0].id };
    }
    return converted;
  });
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface SearchResultView {
  index: number;
  title: string;
  url: string;
  site_name?: string;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  system_fingerprint: null;
  choices: {
    index: 0;
    delta: { role?: 'assistant'; content?: string; reasoning_content?: string; tool_calls?: unknown[]; function_call?: { name?: string; arguments: string } };
    finish_reason: string | null;
    logprobs: null;
  }[];
  usage?: CompletionUsage | null;
  citations?: string[];
  search_results?: SearchResultView[];
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint: null;
  choices: {
    index: 0;
    message: {
      role: 'assistant';
      content: string | null;
      reasoning_content?: string;
      tool_calls?: unknown[];
      function_call?: { name: string; arguments: string };
      refusal: null;
    };
    finish_reason: string;
    logprobs: null;
  }[];
  usage: CompletionUsage;
  citations?: string[];
  search_results?: SearchResultView[];
}
