/**
 * @module http/responses/responses-mapper
 * Pure mapping from the normalised output events to the Responses API: the semantic stream events
 * (response.created … response.completed, each with a sequence number) and the response object, which the
 * non-streaming path takes from the same mapper. Output items open and close in answer order: reasoning,
 * message text, function calls.
 */
import { randomBytes } from 'node:crypto';
import type { ChatOutputEvent } from '../../chat/tools/tool-events.ts';
import type { RenderedError } from '../error-envelope.ts';
import { RESPONSE_ID_PREFIX, UNSTORED_ID_PREFIX } from './responses-request.ts';

export type OutputItem =
  | { type: 'message'; id: string; status: ItemStatus; role: 'assistant'; content: { type: 'output_text'; text: string; annotations: never[]; logprobs: never[] }[] }
  | { type: 'reasoning'; id: string; status: ItemStatus; summary: never[]; content: { type: 'reasoning_text'; text: string }[] }
  | { type: 'function_call'; id: string; status: ItemStatus; call_id: string; name: string; arguments: string };

type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
  error: { code: string; message: string } | null;
  incomplete_details: { reason: string } | null;
  output: OutputItem[];
  output_text: string;
  usage: { input_tokens: number; input_tokens_details: { cached_tokens: number }; output_tokens: number; output_tokens_details: { reasoning_tokens: number }; total_tokens: number } | null;
  [field: string]: unknown;
}

export type StreamEvent = { type: string; sequence_number: number; [field: string]: unknown };

export interface ResponsesMapperOptions {
  /** Request fields echoed in the response object (model, instructions, tools, store, ...). */
  echo: Record<string, unknown>;
  /** store: false gives an id that cannot be continued. */
  isStored: boolean;
  createdAt?: number;
}

export interface ResponsesMapper {
  map(event: ChatOutputEvent): StreamEvent[];
  /** response.failed and an error event, for a failure after the first byte. */
  fail(error: RenderedError): StreamEvent[];
  /** The response object as it stands (complete after the finish event). */
  response(): ResponseObject;
}

export function createResponsesMapper(options: ResponsesMapperOptions): ResponsesMapper {
  const response: ResponseObject = {
    id: `${options.isStored ? RESPONSE_ID_PREFIX : UNSTORED_ID_PREFIX}${randomHex()}`,
    object: 'response',
    created_at: options.createdAt ?? Math.floor(Date.now() / 1000),
    status: 'in_progress',
    error: null,
    incomplete_details: null,
    ...options.echo,
    output: [],
    output_text: '',
    usage: null,
  };
  let sequence = 0;
  let hasStarted = false;
  let open: { item: OutputItem; index: number } | undefined;
  const callItems = new Map<number, { item: Extract<OutputItem, { type: 'function_call' }>; index: number }>();

  const emit = (type: string, fields: Record<string, unknown>): StreamEvent => ({ type, sequence_number: sequence++, ...fields });
  const snapshot = (): ResponseObject => structuredClone(response);

  function start(out: StreamEvent[]): void {
    if (hasStarted) return;
    hasStarted = true;
    out.push(emit('response.created', { response: snapshot() }), emit('response.in_progress', { response: snapshot() }));
  }

  function openItem(out: StreamEvent[], item: OutputItem): number {
    closeOpen(out);
    const index = response.output.push(item) - 1;
    out.push(emit('response.output_item.added', { output_index: index, item: structuredClone(item) }));
    if (item.type === 'message') {
      out.push(emit('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }));
      item.content.push({ type: 'output_text', text: '', annotations: [], logprobs: [] });
    } else if (item.type === 'reasoning') {
      out.push(emit('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: { type: 'reasoning_text', text: '' } }));
      item.content.push({ type: 'reasoning_text', text: '' });
    }
    if (item.type !== 'function_call') open = { item, index };
    return index;
  }

  function closeOpen(out: StreamEvent[], status: ItemStatus = 'completed'): void {
    if (!open) return;
    const { item, index } = open;
    open = undefined;
    if (item.type === 'message') {
      const part = item.content[0];
      out.push(emit('response.output_text.done', { item_id: item.id, output_index: index, content_index: 0, text: part.text, logprobs: [] }));
      out.push(emit('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part: structuredClone(part) }));
    } else if (item.type === 'reasoning') {
      const part = item.content[0];
      out.push(emit('response.reasoning_text.done', { item_id: item.id, output_index: index, content_index: 0, text: part.text }));
      out.push(emit('response.content_part.done', { item_id: item.id, output_index: index, content_index: 0, part: structuredClone(part) }));
    }
    item.status = status;
    out.push(emit('response.output_item.done', { output_index: index, item: structuredClone(item) }));
  }

  function map(event: ChatOutputEvent): StreamEvent[] {
    const out: StreamEvent[] = [];
    if (event.type === 'conversation-start' && !hasStarted && options.isStored) response.id = `${RESPONSE_ID_PREFIX}${event.conversationId}`;
    start(out);
    switch (event.type) {
      case 'reasoning-delta': {
        if (open?.item.type !== 'reasoning') openItem(out, { type: 'reasoning', id: `rs_${randomHex()}`, status: 'in_progress', summary: [], content: [] });
        const { item, index } = open!;
        (item as Extract<OutputItem, { type: 'reasoning' }>).content[0].text += event.text;
        out.push(emit('response.reasoning_text.delta', { item_id: item.id, output_index: index, content_index: 0, delta: event.text }));
        break;
      }
      case 'text-delta': {
        if (!event.text) break;
        if (open?.item.type !== 'message') openItem(out, { type: 'message', id: `msg_${randomHex()}`, status: 'in_progress', role: 'assistant', content: [] });
        const { item, index } = open!;
        (item as Extract<OutputItem, { type: 'message' }>).content[0].text += event.text;
        response.output_text += event.text;
        out.push(emit('response.output_text.delta', { item_id: item.id, output_index: index, content_index: 0, delta: event.text, logprobs: [] }));
        break;
      }
      case 'tool-call-start': {
        const item: Extract<OutputItem, { type: 'function_call' }> = { type: 'function_call', id: `fc_${randomHex()}`, status: 'in_progress', call_id: event.id, name: event.name, arguments: '' };
        callItems.set(event.index, { item, index: openItem(out, item) });
        break;
      }
      case 'tool-call-delta': {
        const call = callItems.get(event.index);
        if (!call) break;
        call.item.arguments += event.argumentsDelta;
        out.push(emit('response.function_call_arguments.delta', { item_id: call.item.id, output_index: call.index, delta: event.argumentsDelta }));
        break;
      }
      case 'tool-call-end': {
        const call = callItems.get(event.index);
        if (!call) break;
        call.item.arguments = event.arguments;
        call.item.status = 'completed';
        out.push(emit('response.function_call_arguments.done', { item_id: call.item.id, output_index: call.index, name: call.item.name, arguments: event.arguments }));
        out.push(emit('response.output_item.done', { output_index: call.index, item: structuredClone(call.item) }));
        break;
      }
      case 'usage':
        response.usage = {
          input_tokens: event.promptTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: event.completionTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: event.promptTokens + event.completionTokens,
        };
        break;
      case 'finish': {
        const isCut = event.reason === 'length' || event.reason === 'content-filter';
        closeOpen(out, isCut ? 'incomplete' : 'completed');
        response.status = isCut ? 'incomplete' : 'completed';
        if (isCut) response.incomplete_details = { reason: event.reason === 'length' ? 'max_output_tokens' : 'content_filter' };
        out.push(emit(isCut ? 'response.incomplete' : 'response.completed', { response: snapshot() }));
        break;
      }
      default:
        break;
    }
    return out;
  }

  function fail(error: RenderedError): StreamEvent[] {
    const out: StreamEvent[] = [];
    start(out);
    closeOpen(out, 'incomplete');
    const { code, message, type, param } = error.body.error;
    response.status = 'failed';
    response.error = { code, message };
    out.push(emit('response.failed', { response: snapshot() }));
    out.push(emit('error', { code, message, param, error: { type, code, message, param } }));
    return out;
  }

  return { map, fail, response: snapshot };
}

function randomHex(): string {
  return randomBytes(12).toString('hex');
}
