/**
 * @module http/anthropic/anthropic-mapper
 * Pure mapping from the normalised output events to Anthropic Messages: the stream (message_start, ping,
 * content_block_start/delta/stop, message_delta, message_stop) and the message object, which the
 * non-streaming path takes from the same mapper. Reasoning becomes `thinking` blocks, calls `tool_use`.
 */
import { randomBytes } from 'node:crypto';
import type { ChatOutputEvent, OutputFinishReason } from '../../chat/tools/tool-events.ts';

export type ContentBlock =
  | { type: 'text'; text: string }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown };

export interface AnthropicMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ContentBlock[];
  stop_reason: 'end_turn' | 'max_tokens' | 'tool_use' | 'refusal' | 'stop_sequence' | null;
  stop_sequence: string | null;
  usage: { input_tokens: number; output_tokens: number; cache_creation_input_tokens: number; cache_read_input_tokens: number };
}

export type AnthropicStreamEvent = { type: string; [field: string]: unknown };

export interface AnthropicMapper {
  map(event: ChatOutputEvent): AnthropicStreamEvent[];
  /** The message as it stands; complete once `isFinished` (after the finish event). */
  message(): AnthropicMessage;
  readonly isFinished: boolean;
}

/** The gateway cannot sign Kimi's reasoning; clients must send thinking blocks back unchanged, which is all this is for. */
export const THINKING_SIGNATURE = 'kimi-free-api:unsigned';

export function createAnthropicMapper(options: { model: string }): AnthropicMapper {
  const message: AnthropicMessage = {
    id: `msg_${randomBytes(12).toString('hex')}`,
    type: 'message',
    role: 'assistant',
    model: options.model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
  let hasStarted = false;
  let isFinished = false;
  let open: { index: number; kind: 'text' | 'thinking' } | undefined;
  const toolBlocks = new Map<number, { index: number; partialJson: string }>();

  function start(out: AnthropicStreamEvent[]): void {
    if (hasStarted) return;
    hasStarted = true;
    out.push({ type: 'message_start', message: { ...structuredClone(message), content: [] } }, { type: 'ping' });
  }

  function openBlock(out: AnthropicStreamEvent[], block: ContentBlock): number {
    closeOpen(out);
    const index = message.content.push(block) - 1;
    const announced = block.type === 'tool_use' ? { ...block, input: {} } : block.type === 'thinking' ? { type: 'thinking', thinking: '', signature: '' } : { type: 'text', text: '' };
    out.push({ type: 'content_block_start', index, content_block: announced });
    if (block.type !== 'tool_use') open = { index, kind: block.type };
    return index;
  }

  function closeOpen(out: AnthropicStreamEvent[]): void {
    if (!open) return;
    const { index, kind } = open;
    open = undefined;
    if (kind === 'thinking') {
      (message.content[index] as Extract<ContentBlock, { type: 'thinking' }>).signature = THINKING_SIGNATURE;
      out.push({ type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: THINKING_SIGNATURE } });
    }
    out.push({ type: 'content_block_stop', index });
  }

  function map(event: ChatOutputEvent): AnthropicStreamEvent[] {
    const out: AnthropicStreamEvent[] = [];
    start(out);
    switch (event.type) {
      case 'reasoning-delta': {
        if (!event.text) break;
        if (open?.kind !== 'thinking') openBlock(out, { type: 'thinking', thinking: '', signature: '' });
        (message.content[open!.index] as Extract<ContentBlock, { type: 'thinking' }>).thinking += event.text;
        out.push({ type: 'content_block_delta', index: open!.index, delta: { type: 'thinking_delta', thinking: event.text } });
        break;
      }
      case 'text-delta': {
        if (!event.text) break;
        if (open?.kind !== 'text') openBlock(out, { type: 'text', text: '' });
        (message.content[open!.index] as Extract<ContentBlock, { type: 'text' }>).text += event.text;
        out.push({ type: 'content_block_delta', index: open!.index, delta: { type: 'text_delta', text: event.text } });
        break;
      }
      case 'tool-call-start':
        toolBlocks.set(event.index, { index: openBlock(out, { type: 'tool_use', id: event.id, name: event.name, input: {} }), partialJson: '' });
        break;
      case 'tool-call-delta': {
        const tool = toolBlocks.get(event.index);
        if (!tool) break;
        tool.partialJson += event.argumentsDelta;
        out.push({ type: 'content_block_delta', index: tool.index, delta: { type: 'input_json_delta', partial_json: event.argumentsDelta } });
        break;
      }
      case 'tool-call-end': {
        const tool = toolBlocks.get(event.index);
        if (!tool) break;
        (message.content[tool.index] as Extract<ContentBlock, { type: 'tool_use' }>).input = JSON.parse(event.arguments);
        out.push({ type: 'content_block_stop', index: tool.index });
        break;
      }
      case 'usage':
        message.usage.input_tokens = event.promptTokens;
        message.usage.output_tokens = event.completionTokens;
        break;
      case 'finish':
        closeOpen(out);
        message.stop_reason = event.stopSequence !== undefined ? 'stop_sequence' : toStopReason(event.reason);
        message.stop_sequence = event.stopSequence ?? null;
        isFinished = true;
        out.push(
          { type: 'message_delta', delta: { stop_reason: message.stop_reason, stop_sequence: message.stop_sequence }, usage: { input_tokens: message.usage.input_tokens, output_tokens: message.usage.output_tokens } },
          { type: 'message_stop' },
        );
        break;
      default:
        break;
    }
    return out;
  }

  return {
    map,
    message: () => structuredClone(message),
    get isFinished() {
      return isFinished;
    },
  };
}

export function toStopReason(reason: OutputFinishReason): AnthropicMessage['stop_reason'] {
  if (reason === 'tool-calls') return 'tool_use';
  if (reason === 'length') return 'max_tokens';
  if (reason === 'content-filter') return 'refusal';
  return 'end_turn';
}
