/**
 * @module chat/tools/tool-plan
 * Checks a request's tools, tool choice and response format once, before anything goes upstream, and
 * turns them into a plan: compiled argument validators, the instruction text and the grammar to parse
 * with. Bad input is the client's 400 with a `param` in the client API's own spelling.
 */
import { InvalidRequestError } from '../../errors.ts';
import type { ChatMessage } from '../chat-request.ts';
import { compileSchema, type CompiledSchema } from './schema-validator.ts';
import { renderFormatInstructions } from './structured-output.ts';
import type { JsonSchema, ResponseFormat, ToolChoice, ToolDefinition } from './tool-events.ts';
import { xmlTagGrammar, type ToolGrammar, type ToolPromptInput } from './tool-grammar.ts';

export const MAX_TOOLS = 128;
export const MAX_TOOL_DEFINITION_BYTES = 256 * 1024;
const TOOL_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/** How the client API spells the fields, for error params (OpenAI chat spelling by default). */
export interface ToolParamNames {
  tools: string;
  toolName(index: number): string;
  toolSchema(index: number): string;
  toolChoice: string;
  responseFormatSchema: string;
}

export const openAiChatParams: ToolParamNames = {
  tools: 'tools',
  toolName: (index) => `tools[${index}].function.name`,
  toolSchema: (index) => `tools[${index}].function.parameters`,
  toolChoice: 'tool_choice',
  responseFormatSchema: 'response_format.json_schema.schema',
};

export interface ToolRequest {
  tools?: readonly ToolDefinition[];
  choice?: ToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  params?: ToolParamNames;
  grammar?: ToolGrammar;
  /** Client stop sequences, already checked (chat/stop-sequences.ts parseStopSequences). */
  stopSequences?: readonly string[];
}

export interface ToolPlan {
  grammar: ToolGrammar;
  prompt: ToolPromptInput;
  validators: ReadonlyMap<string, CompiledSchema>;
  /** True when tool calls are emulated (tools offered and tool_choice is not `none`). */
  hasTools: boolean;
  responseFormat: ResponseFormat;
  formatValidator: CompiledSchema | undefined;
  /** Text for ChatRequest.instructions; undefined when there is nothing to add. */
  instructions: string | undefined;
  /** Where the plain answer text is cut (empty: never). Tool calls and their grammar are not scanned. */
  stopSequences: readonly string[];
}

export function planTools(request: ToolRequest): ToolPlan {
  const params = request.params ?? openAiChatParams;
  const tools = request.tools ?? [];
  const choice = request.choice ?? { kind: 'auto' };
  checkToolList(tools, params);
  const validators = new Map<string, CompiledSchema>();
  tools.forEach((tool, index) => validators.set(tool.name, compileToolSchema(tool, index, params)));
  if ((choice.kind === 'required' || choice.kind === 'function') && tools.length === 0) {
    throw new InvalidRequestError(`tool_choice "${choice.kind === 'function' ? choice.name : 'required'}" needs at least one tool in ${params.tools}.`, { param: params.toolChoice });
  }
  if (choice.kind === 'function' && !validators.has(choice.name)) {
    throw new InvalidRequestError(`tool_choice names the function "${choice.name}", which is not among the tools (${[...validators.keys()].join(', ')}).`, { param: params.toolChoice });
  }
  const responseFormat = request.responseFormat ?? { kind: 'text' };
  const formatValidator = responseFormat.kind === 'json-schema' ? compileFormatSchema(responseFormat.schema, params) : undefined;
  const grammar = request.grammar ?? xmlTagGrammar;
  const prompt: ToolPromptInput = { tools, choice, parallelToolCalls: request.parallelToolCalls ?? true };
  const hasTools = tools.length > 0 && choice.kind !== 'none';
  const parts = [hasTools ? grammar.renderInstructions(prompt) : '', renderFormatInstructions(responseFormat)].filter(Boolean);
  return { grammar, prompt, validators, hasTools, responseFormat, formatValidator, instructions: parts.length ? parts.join('\n\n') : undefined, stopSequences: request.stopSequences ?? [] };
}

function checkToolList(tools: readonly ToolDefinition[], params: ToolParamNames): void {
  if (tools.length > MAX_TOOLS) {
    throw new InvalidRequestError(`${tools.length} tools were sent; at most ${MAX_TOOLS} are accepted.`, { param: params.tools });
  }
  const bytes = Buffer.byteLength(JSON.stringify(tools));
  if (bytes > MAX_TOOL_DEFINITION_BYTES) {
    throw new InvalidRequestError(`The tool definitions take ${bytes} bytes; at most ${MAX_TOOL_DEFINITION_BYTES} are accepted (they all go into the prompt).`, { param: params.tools });
  }
  const seen = new Set<string>();
  tools.forEach((tool, index) => {
    if (!TOOL_NAME.test(tool.name)) {
      throw new InvalidRequestError(`Tool name "${tool.name.slice(0, 80)}" is invalid: use 1-128 letters, digits, "_", "-", "." or ":".`, { param: params.toolName(index) });
    }
    if (seen.has(tool.name)) throw new InvalidRequestError(`Two tools are named "${tool.name}".`, { param: params.toolName(index) });
    seen.add(tool.name);
  });
}

function compileToolSchema(tool: ToolDefinition, index: number, params: ToolParamNames): CompiledSchema {
  const schema = tool.parameters;
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new InvalidRequestError(`The parameters of tool "${tool.name}" must be a JSON Schema object.`, { param: params.toolSchema(index) });
  }
  const declaredType = schema.type;
  if (declaredType !== undefined && declaredType !== 'object' && !(Array.isArray(declaredType) && declaredType.includes('object'))) {
    throw new InvalidRequestError(`The parameters of tool "${tool.name}" must describe an object (type "object"), not ${JSON.stringify(declaredType)}.`, { param: params.toolSchema(index) });
  }
  try {
    return compileSchema(schema);
  } catch (error) {
    throw new InvalidRequestError(`The parameters of tool "${tool.name}" are not a valid JSON Schema: ${(error as Error).message}`, { param: params.toolSchema(index) });
  }
}

function compileFormatSchema(schema: JsonSchema, params: ToolParamNames): CompiledSchema {
  try {
    return compileSchema(schema);
  } catch (error) {
    throw new InvalidRequestError(`The response format's schema is not a valid JSON Schema: ${(error as Error).message}`, { param: params.responseFormatSchema });
  }
}

/**
 * Every `tool` message must answer a call made earlier in the same history. Skipped on continuations
 * (previous_response_id, conversation_id), where the call was made in an earlier request.
 */
export function checkToolResults(messages: readonly ChatMessage[], paramOf: (messageIndex: number) => string): void {
  const calls = new Set<string>();
  messages.forEach((message, index) => {
    for (const call of message.tool_calls ?? []) calls.add(call.id);
    if (message.role !== 'tool') return;
    if (!message.tool_call_id) throw new InvalidRequestError(`messages[${index}] is a tool result without tool_call_id.`, { param: paramOf(index) });
    if (!calls.has(message.tool_call_id)) {
      throw new InvalidRequestError(`The tool result for "${message.tool_call_id}" answers no earlier tool call in this request.`, { param: paramOf(index) });
    }
  });
}
