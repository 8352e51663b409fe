/**
 * @module chat/fold-chat-events
 * The whole non-streaming path: folds the same event stream the SSE writer consumes into one result.
 */
import { UpstreamError } from '../errors.ts';
import type { ChatEvent, FinishReason, SearchSource } from '../upstream/dialect.ts';

export interface ChatResult {
  conversationId: string | undefined;
  messageId: string | undefined;
  text: string;
  reasoning: string;
  sources: SearchSource[];
  notices: { kind: string; message: string }[];
  usage: { promptTokens: number; completionTokens: number; isEstimate: boolean } | undefined;
  finishReason: FinishReason;
}

export interface ChatFold {
  add(event: ChatEvent): void;
  result(): ChatResult;
}

/** Incremental fold, so that translators can also keep a running picture while streaming. */
export function createChatFold(): ChatFold {
  const textParts: string[] = [];
  const reasoningParts: string[] = [];
  const state: Omit<ChatResult, 'text' | 'reasoning' | 'finishReason'> & { finishReason?: FinishReason } = {
    conversationId: undefined,
    messageId: undefined,
    sources: [],
    notices: [],
    usage: undefined,
  };
  return {
    add(event) {
      switch (event.type) {
        case 'conversation-start':
          state.conversationId = event.conversationId;
          break;
        case 'message-start':
          state.messageId = event.messageId;
          break;
        case 'text-delta':
          textParts.push(event.text);
          break;
        case 'reasoning-delta':
          reasoningParts.push(event.text);
          break;
        case 'search-source':
          state.sources.push(event.source);
          break;
        case 'notice':
          state.notices.push({ kind: event.kind, message: event.message });
          break;
        case 'usage':
          state.usage = { promptTokens: event.promptTokens, completionTokens: event.completionTokens, isEstimate: event.isEstimate };
          break;
        case 'finish':
          state.finishReason = event.reason;
          break;
      }
    },
    result() {
      if (!state.finishReason) throw new UpstreamError('Kimi ended the answer without finishing it.', { isRetryable: true });
      return { ...state, text: textParts.join(''), reasoning: reasoningParts.join(''), finishReason: state.finishReason };
    },
  };
}

export async function foldChatEvents(events: AsyncIterable<ChatEvent>): Promise<ChatResult> {
  const fold = createChatFold();
  for await (const event of events) fold.add(event);
  return fold.result();
}
