/**
 * @module chat/tools/fold-tool-events
 * The non-streaming path for answers that may contain tool calls: the chat fold plus the calls and the
 * `tool-calls` finish reason. Translators fold the same events their streaming form writes.
 */
import { createChatFold, type ChatResult } from '../fold-chat-events.ts';
import type { ToolCallRecord } from '../chat-request.ts';
import type { ChatOutputEvent, OutputFinishReason } from './tool-events.ts';

export interface ChatToolResult extends Omit<ChatResult, 'finishReason'> {
  finishReason: OutputFinishReason;
  /** Complete calls in index order (arguments are valid JSON that matched the tool's schema). */
  toolCalls: ToolCallRecord[];
  /** The client stop sequence the answer was cut at (Anthropic's `stop_sequence`). */
  stopSequence?: string;
}

export interface ChatToolFold {
  add(event: ChatOutputEvent): void;
  result(): ChatToolResult;
}

export function createChatToolFold(): ChatToolFold {
  const fold = createChatFold();
  const calls = new Map<number, ToolCallRecord>();
  let isToolFinish = false;
  let stopSequence: string | undefined;
  return {
    add(event) {
      switch (event.type) {
        case 'tool-call-start':
          calls.set(event.index, { id: event.id, type: 'function', function: { name: event.name, arguments: '' } });
          return;
        case 'tool-call-delta':
          return;
        case 'tool-call-end': {
          const call = calls.get(event.index);
          if (call) call.function.arguments = event.arguments;
          return;
        }
        case 'finish':
          isToolFinish = event.reason === 'tool-calls';
          stopSequence = event.stopSequence;
          fold.add({ type: 'finish', reason: event.reason === 'tool-calls' ? 'stop' : event.reason });
          return;
        default:
          fold.add(event);
      }
    },
    result() {
      const result = fold.result();
      const toolCalls = [...calls.entries()].sort(([left], [right]) => left - right).map(([, call]) => call);
      return { ...result, finishReason: isToolFinish ? 'tool-calls' : result.finishReason, toolCalls, ...(stopSequence !== undefined ? { stopSequence } : {}) };
    },
  };
}

export async function foldChatOutputBatches(batches: AsyncIterable<readonly ChatOutputEvent[]>): Promise<ChatToolResult> {
  const fold = createChatToolFold();
  for await (const batch of batches) for (const event of batch) fold.add(event);
  return fold.result();
}
