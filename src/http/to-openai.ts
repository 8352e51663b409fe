/**
 * @module http/to-openai
 * Pure mapping from normalised chat events to OpenAI objects: `chat.completion.chunk` for streams,
 * `chat.completion` for the folded result. The response id is the upstream chat id, so a client can
 * send it back as `conversation_id`. Calls take the `tool_calls` shape, or the legacy `function_call` shape
 * when the request offered `functions` (option `legacyFunctionCall`).
 */
import { randomUUID } from 'node:crypto';
import type { ChatResult } from '../chat/fold-chat-events.ts';
import type { ChatToolResult } from '../chat/tools/fold-tool-events.ts';
import type { ChatOutputEvent } from '../chat/tools/tool-events.ts';
import type { FinishReason, SearchSource } from '../upstream/dialect.ts';
import type { ChatCompletion, ChatCompletionChunk, CompletionUsage, SearchResultView } from './openai-schema.ts';
import { functionCallChunkDelta, messageFunctionCall, messageToolCalls, toolCallChunkDelta } from './routes/chat-completions-tools.ts';

export interface ChunkMapperOptions {
  model: string;
  includeUsage: boolean;
  created?: number;
  /** The request used `functions`: calls go out as `delta.function_call`, finish_reason `function_call`. */
  legacyFunctionCall?: boolean;
}

export interface CompletionShapeOptions {
  /** The request used `functions`: `message.function_call` (the first call), finish_reason `function_call`. */
  legacyFunctionCall?: boolean;
}

export interface ChunkMapper {
  /** Chunks to send for one event (often none). */
  map(event: ChatOutputEvent): ChatCompletionChunk[];
  readonly id: string;
  readonly created: number;
}

export function createChunkMapper(options: ChunkMapperOptions): ChunkMapper {
  const created = options.created ?? Math.floor(Date.now() / 1000);
  let id = `chatcmpl-${randomUUID()}`;
  let hasSentRole = false;
  let usage: CompletionUsage | undefined;
  const sources: SearchSource[] = [];

  function chunk(delta: ChatCompletionChunk['choices'][0]['delta'], finishReason: string | null = null): ChatCompletionChunk {
    if (!hasSentRole) {
      delta = { role: 'assistant', ...delta };
      hasSentRole = true;
    }
    const value: ChatCompletionChunk = {
      id,
      object: 'chat.completion.chunk',
      created,
      model: options.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    };
    if (options.includeUsage) value.usage = null;
    return value;
  }

  function map(event: ChatOutputEvent): ChatCompletionChunk[] {
    switch (event.type) {
      case 'conversation-start':
        id = event.conversationId;
        return [];
      case 'text-delta':
        return event.text ? [chunk({ content: event.text })] : [];
      case 'reasoning-delta':
        return event.text ? [chunk({ reasoning_content: event.text })] : [];
      case 'search-source':
        sources.push(event.source);
        return [];
      case 'usage':
        usage = toUsage(event.promptTokens, event.completionTokens);
        return [];
      case 'tool-call-start':
      case 'tool-call-delta': {
        if (!options.legacyFunctionCall) return [chunk({ tool_calls: [toolCallChunkDelta(event)] })];
        const functionCall = functionCallChunkDelta(event);
        return functionCall ? [chunk({ function_call: functionCall })] : [];
      }
      case 'finish': {
        const final = chunk({}, toFinishReason(event.reason, options.legacyFunctionCall));
        Object.assign(final, sourceFields(sources));
        if (!options.includeUsage) return [final];
        const usageChunk: ChatCompletionChunk = { ...chunk({}), choices: [], usage: usage ?? toUsage(0, 0) };
        return [final, usageChunk];
      }
      default:
        return [];
    }
  }

  return {
    map,
    get id() {
      return id;
    },
    created,
  };
}

/**
 * The SSE text (`data: <chunk>\n\n` per chunk) of each event. Text and reasoning deltas are most of a stream,
 * so after the first chunk their JSON is the chunk's fixed part around `JSON.stringify(text)`, cached per
 * response id: byte for byte what stringifying the chunk object gives, for a fraction of the CPU.
 */
export function createSseChunkEncoder(options: ChunkMapperOptions): { encode(event: ChatOutputEvent): string } {
  const mapper = createChunkMapper(options);
  let hasSentFirst = false;
  let cachedFor: string | undefined;
  let frames = { content: ['', ''], reasoning_content: ['', ''] };

  function frameFor(field: 'content' | 'reasoning_content'): string[] {
    if (cachedFor !== mapper.id) {
      cachedFor = mapper.id;
      const head = `data: {"id":${JSON.stringify(cachedFor)},"object":"chat.completion.chunk","created":${mapper.created},"model":${JSON.stringify(options.model)},"system_fingerprint":null,"choices":[{"index":0,"delta":{`;
      const tail = `},"finish_reason":null,"logprobs":null}]${options.includeUsage ? ',"usage":null' : ''}}\n\n`;
      frames = { content: [`${head}"content":`, tail], reasoning_content: [`${head}"reasoning_content":`, tail] };
    }
    return frames[field];
  }

  return {
    encode(event) {
      if (hasSentFirst && (event.type === 'text-delta' || event.type === 'reasoning-delta')) {
        if (!event.text) return '';
        const [head, tail] = frameFor(event.type === 'text-delta' ? 'content' : 'reasoning_content');
        return head + JSON.stringify(event.text) + tail;
      }
      const chunks = mapper.map(event);
      if (chunks.length === 0) return '';
      hasSentFirst = true;
      return chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join('');
    },
  };
}

export function toChatCompletion(
  result: ChatResult | ChatToolResult,
  model: string,
  created = Math.floor(Date.now() / 1000),
  shape: CompletionShapeOptions = {},
): ChatCompletion {
  const calls = 'toolCalls' in result ? result.toolCalls : undefined;
  const toolCalls = shape.legacyFunctionCall ? undefined : messageToolCalls(calls);
  const functionCall = shape.legacyFunctionCall ? messageFunctionCall(calls) : undefined;
  const hasCall = Boolean(toolCalls ?? functionCall);
  const message: ChatCompletion['choices'][0]['message'] = { role: 'assistant', content: hasCall && !result.text ? null : result.text, refusal: null };
  if (result.reasoning) message.reasoning_content = result.reasoning;
  if (toolCalls) message.tool_calls = toolCalls;
  if (functionCall) message.function_call = functionCall;
  return {
    id: result.conversationId ?? `chatcmpl-${randomUUID()}`,
    object: 'chat.completion',
    created,
    model,
    system_fingerprint: null,
    choices: [{ index: 0, message, finish_reason: toFinishReason(result.finishReason, shape.legacyFunctionCall), logprobs: null }],
    usage: toUsage(result.usage?.promptTokens ?? 0, result.usage?.completionTokens ?? 0),
    ...sourceFields(result.sources),
  };
}

export function toFinishReason(reason: FinishReason | 'tool-calls', legacyFunctionCall = false): string {
  if (reason === 'content-filter') return 'content_filter';
  if (reason === 'tool-calls') return legacyFunctionCall ? 'function_call' : 'tool_calls';
  return reason;
}

function toUsage(promptTokens: number, completionTokens: number): CompletionUsage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** Structured citations beside the text list: `citations` (URLs, as Perplexity/OpenRouter do) and `search_results`. */
function sourceFields(sources: SearchSource[]): { citations?: string[]; search_results?: SearchResultView[] } {
  if (sources.length === 0) return {};
  const ordered = [...sources].sort((left, right) => left.index - right.index);
  return {
    citations: ordered.map((source) => source.url),
    search_results: ordered.map((source) => ({ index: source.index, title: source.title, url: source.url, ...(source.siteName ? { site_name: source.siteName } : {}) })),
  };
}
