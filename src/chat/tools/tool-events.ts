/**
 * @module chat/tools/tool-events
 * The vocabulary of the tool layer, types only: normalised tool definitions and choices (what every client
 * API translates its own shapes into) and the output events, which extend the dialect's ChatEvent with
 * tool calls and the finish reason `tool-calls`.
 */
import type { ChatEvent, FinishReason } from '../../upstream/dialect.ts';

/** A JSON Schema document, as sent by the client (object schemas in practice). */
export type JsonSchema = Record<string, unknown> | boolean;

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object; `{ type: 'object' }` when the client sent none. */
  parameters: JsonSchema;
}

export type ToolChoice =
  | { kind: 'auto' }
  | { kind: 'none' }
  | { kind: 'required' }
  | { kind: 'function'; name: string };

/** `response_format` / `text.format` / forced JSON: what the final text must be. */
export type ResponseFormat =
  | { kind: 'text' }
  | { kind: 'json-object' }
  | { kind: 'json-schema'; name: string; schema: JsonSchema; description?: string; strict?: boolean };

export type OutputFinishReason = FinishReason | 'tool-calls';

export type ToolCallEvent =
  /** A call begins; `id` is ours (clients send it back with the result). */
  | { type: 'tool-call-start'; index: number; id: string; name: string }
  /** A piece of the arguments JSON text; the pieces of one call concatenate to `arguments` of its end event. */
  | { type: 'tool-call-delta'; index: number; argumentsDelta: string }
  /** The call is complete; `arguments` is valid JSON that matched the tool's schema. */
  | { type: 'tool-call-end'; index: number; arguments: string };

export type ChatOutputEvent =
  | Exclude<ChatEvent, { type: 'finish' }>
  | ToolCallEvent
  /** `stopSequence`: the client stop sequence the answer was cut at (chat/stop-sequences.ts); reason is then `stop`. */
  | { type: 'finish'; reason: OutputFinishReason; stopSequence?: string };

/**
 * A repair round: re-asks the model on the same upstream chat and returns the new answer's events.
 * `previousAnswer` (the raw text of the failed answer) lets it replay the exchange in a new chat when the
 * first one is already gone (CHAT_RETENTION_SECONDS=0 deletes it as soon as the answer ends).
 */
export type RepairRound = (request: { conversationId: string; instruction: string; previousAnswer: string }) => AsyncIterable<ChatEvent>;
