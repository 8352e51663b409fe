/**
 * @module http/to-openai
 * Pure mapping from normalised chat events to OpenAI objects: `chat.completion.chunk` for streams,
 * `chat.completion` for the folded result. The response id is the upstream chat id, so a client can
 * send it back as `conversation_id`.
 */
import { randomUUID } from 'node:crypto';
import type { ChatResult } from '../chat/fold-chat-events.ts';
import type { ChatToolResult } from '../chat/tools/fold-tool-events.ts';
import type { ChatOutputEvent } from '../chat/tools/tool-events.ts';
import type { FinishReason, SearchSource } from '../upstream/dialect.ts';
import type { ChatCompletion, ChatCompletionChunk, CompletionUsage, SearchResultView } from './openai-schema.ts';
import { messageToolCalls, toolCallChunkDelta } from './routes/chat-completions-tools.ts';

export interface ChunkMapperOptions {
  model: string;
  includeUsage: boolean;
  created?: number;
}

export interface ChunkMapper {
  /** Chunks to send for one event (often none). */
  map(event: ChatOutputEvent): ChatCompletionChunk[];
  readonly id: string;
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
      case 'tool-call-delta':
        return [chunk({ tool_calls: [toolCallChunkDelta(event)] })];
      case 'finish': {
        const final = chunk({}, toFinishReason(event.reason));
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
  };
}

export function toChatCompletion(result: ChatResult | ChatToolResult, model: string, created = Math.floor(Date.now() / 1000)): ChatCompletion {
  const toolCalls = messageToolCalls('toolCalls' in result ? result.toolCalls : undefined);
  const message: ChatCompletion['choices'][0]['message'] = { role: 'assistant', content: toolCalls && !result.text ? null : result.text, refusal: null };
  if (result.reasoning) message.reasoning_content = result.reasoning;
  if (toolCalls) message.tool_calls = toolCalls;
  return {
    id: result.conversationId ?? `chatcmpl-${randomUUID()}`,
    object: 'chat.completion',
    created,
    model,
    system_fingerprint: null,
    choices: [{ index: 0, message, finish_reason: toFinishReason(result.finishReason), logprobs: null }],
    usage: toUsage(result.usage?.promptTokens ?? 0, result.usage?.completionTokens ?? 0),
    ...sourceFields(result.sources),
  };
}

export function toFinishReason(reason: FinishReason | 'tool-calls'): string {
  if (reason === 'content-filter') return 'content_filter';
  if (reason === 'tool-calls') return 'tool_calls';
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
