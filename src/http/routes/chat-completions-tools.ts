/**
 * @module http/routes/chat-completions-tools
 * The OpenAI chat completion's tool fields: the request schema additions (tools, tool_choice,
 * parallel_tool_calls, response_format, and the deprecated functions/function_call), their translation
 * into the tool layer's plan, and the wire shapes of calls (streamed `tool_calls` deltas and
 * `message.tool_calls`, or for `functions` requests the legacy `function_call`), and `stop`. Pure;
 * chat-completions.ts and to-openai.ts call these.
 */
import { z } from 'zod';
import { parseStopSequences } from '../../chat/stop-sequences.ts';
import type { ChatMessage, ToolCallRecord } from '../../chat/chat-request.ts';
import type { ChatOutputEvent, ResponseFormat, ToolChoice, ToolDefinition } from '../../chat/tools/tool-events.ts';
import { checkToolResults, planTools, type ToolPlan } from '../../chat/tools/tool-plan.ts';
import { looseBoolean } from '../openai-schema.ts';

const functionDefinition = z.looseObject({
  name: z.string().min(1, 'name must be a non-empty string'),
  description: z.string().optional().nullable(),
  parameters: z.record(z.string(), z.unknown()).optional().nullable(),
  strict: looseBoolean.optional().nullable(),
});

const toolChoice = z.union([
  z.enum(['auto', 'none', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string().min(1) }) }),
]);

const responseFormat = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: z.string().min(1).max(64),
      description: z.string().optional().nullable(),
      schema: z.record(z.string(), z.unknown()).optional().nullable(),
      strict: looseBoolean.optional().nullable(),
    }),
  }),
]);

/** Fields to add to the chat completion request schema (`chatCompletionRequestSchema.extend(...)`). */
export const chatToolFields = {
  tools: z.array(z.looseObject({ type: z.literal('function').default('function'), function: functionDefinition })).optional().nullable(),
  tool_choice: toolChoice.optional().nullable(),
  parallel_tool_calls: looseBoolean.optional().nullable(),
  response_format: responseFormat.optional().nullable(),
  /** Deprecated OpenAI spelling, still sent by older LangChain and Dify versions. */
  functions: z.array(functionDefinition).optional().nullable(),
  function_call: z.union([z.enum(['auto', 'none']), z.looseObject({ name: z.string().min(1) })]).optional().nullable(),
  /** String or up to 4 strings; checked by parseStopSequences for a clearer 400 than a zod union gives. */
  stop: z.unknown().optional(),
};

export interface ChatToolFieldsInput {
  tools?: { function: z.output<typeof functionDefinition> }[] | null;
  tool_choice?: z.output<typeof toolChoice> | null;
  parallel_tool_calls?: boolean | null;
  response_format?: z.output<typeof responseFormat> | null;
  functions?: z.output<typeof functionDefinition>[] | null;
  function_call?: 'auto' | 'none' | { name: string } | null;
  stop?: unknown;
}

/**
 * True when the client offered the deprecated `functions` (and no `tools`): it reads the answer in the legacy
 * shape, `message.function_call` and finish_reason `function_call` (older LangChain and Dify versions).
 */
export function usesLegacyFunctions(body: Pick<ChatToolFieldsInput, 'tools' | 'functions'>): boolean {
  return !body.tools?.length && Boolean(body.functions?.length);
}

/** Checks the tool fields (400s with OpenAI params) and makes the plan; `isContinuation` skips the result check. */
export function planChatTools(body: ChatToolFieldsInput, messages: readonly ChatMessage[], isContinuation: boolean): ToolPlan {
  const isLegacy = usesLegacyFunctions(body);
  const definitions = isLegacy ? (body.functions ?? []) : (body.tools?.map((tool) => tool.function) ?? []);
  const tools: ToolDefinition[] = definitions.map((definition) => ({
    name: definition.name,
    description: definition.description ?? undefined,
    parameters: definition.parameters ?? { type: 'object', properties: {} },
  }));
  const plan = planTools({
    tools,
    choice: toToolChoice(isLegacy ? (body.function_call ?? body.tool_choice ?? undefined) : (body.tool_choice ?? body.function_call ?? undefined)),
    // The legacy shape carries one call, so only the first is kept (as OpenAI's functions API did).
    parallelToolCalls: isLegacy ? false : (body.parallel_tool_calls ?? true),
    responseFormat: toResponseFormat(body.response_format ?? undefined),
    stopSequences: parseStopSequences(body.stop, 'stop'),
  });
  if (!isContinuation) checkToolResults(messages, (index) => `messages[${index}].tool_call_id`);
  return plan;
}

function toToolChoice(choice: ChatToolFieldsInput['tool_choice'] | ChatToolFieldsInput['function_call']): ToolChoice {
  if (choice === undefined || choice === null || choice === 'auto') return { kind: 'auto' };
  if (choice === 'none') return { kind: 'none' };
  if (choice === 'required') return { kind: 'required' };
  return { kind: 'function', name: 'function' in choice ? choice.function.name : choice.name };
}

function toResponseFormat(format: ChatToolFieldsInput['response_format']): ResponseFormat {
  if (!format || format.type === 'text') return { kind: 'text' };
  if (format.type === 'json_object') return { kind: 'json-object' };
  const spec = format.json_schema;
  return { kind: 'json-schema', name: spec.name, description: spec.description ?? undefined, schema: spec.schema ?? { type: 'object' }, strict: spec.strict ?? false };
}

export interface ToolCallChunkDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

/** The `delta.tool_calls[0]` for a tool event: id, type and name on the first delta, then argument pieces. */
export function toolCallChunkDelta(event: ChatOutputEvent): ToolCallChunkDelta | undefined {
  if (event.type === 'tool-call-start') return { index: event.index, id: event.id, type: 'function', function: { name: event.name, arguments: '' } };
  if (event.type === 'tool-call-delta') return { index: event.index, function: { arguments: event.argumentsDelta } };
  return undefined;
}

/** The legacy `delta.function_call` for a tool event: the name first, then argument pieces (first call only). */
export function functionCallChunkDelta(event: ChatOutputEvent): { name?: string; arguments: string } | undefined {
  if (event.type === 'tool-call-start' && event.index === 0) return { name: event.name, arguments: '' };
  if (event.type === 'tool-call-delta' && event.index === 0) return { arguments: event.argumentsDelta };
  return undefined;
}

/** The legacy `message.function_call` of a non-streamed completion: the first call (undefined when there is none). */
export function messageFunctionCall(toolCalls: readonly ToolCallRecord[] | undefined): { name: string; arguments: string } | undefined {
  const first = toolCalls?.[0];
  return first ? { name: first.function.name, arguments: first.function.arguments } : undefined;
}

/** `message.tool_calls` of a non-streamed completion (undefined when there are none). */
export function messageToolCalls(toolCalls: readonly ToolCallRecord[] | undefined): ToolCallRecord[] | undefined {
  return toolCalls && toolCalls.length > 0 ? toolCalls.map((call) => ({ id: call.id, type: 'function', function: { ...call.function } })) : undefined;
}
