/**
 * @module chat/chat-request
 * The use case's input, independent of any client API: the OpenAI-style message list (the common
 * denominator that the Responses and Anthropic translators also produce) plus gateway switches.
 */

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool' | 'function';

export type ContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } | string }
  | { type: 'file'; file_url?: { url: string } | string; file?: { file_data?: string; filename?: string; url?: string } }
  | { type: string; [key: string]: unknown };

export interface ToolCallRecord {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: ChatRole;
  content: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCallRecord[];
  tool_call_id?: string;
}

export interface ChatRequest {
  model?: string;
  messages: ChatMessage[];
  /** Continue this upstream chat (response `id` of an earlier answer). */
  conversationId?: string;
  /** Body `use_search: true` (seed compatibility). */
  useSearch?: boolean;
  /** Per-request Kimi tokens (`Authorization: Bearer T1,T2`); undefined when the server pool is used. */
  bearerTokens?: string[];
  /** False when nobody will read `usage` (a stream without include_usage): skips the tokenizer's work. */
  estimateUsage?: boolean;
  /** Extra instructions a protocol translator adds (tool grammar, JSON mode); appended to the prompt. */
  instructions?: string;
  /**
   * This request's spooled attachment strings: large base64 data the HTTP layer wrote to temporary files while
   * reading the body, standing in the messages as `kfa-spool:<id>` placeholders (inside a data URL:
   * `data:image/png;base64,kfa-spool:<id>`). Only ids issued for this request resolve, so a client cannot name
   * another request's file.
   */
  spool?: { resolve(placeholder: string): SpooledDataUrl | undefined };
}

/** One spooled string: its base64 text in a private temporary file (deleted when the response closes). */
export interface SpooledDataUrl {
  path: string;
  /** Bytes of base64 text in the file (the data URL header is not stored). */
  sizeBytes: number;
  /** The media type the data URL declared; undefined for bare base64 or a header without one. */
  mediaType: string | undefined;
}

export interface AttachmentReference {
  url: string;
  kind: 'image' | 'document';
  fileName?: string;
  /** Index of the message that carried it (for error params). */
  messageIndex: number;
}
