/**
 * @module chat/build-prompt
 * Turns an OpenAI message history into the one user message Kimi reads (protocol spec §3.8 item 3,
 * §2.4: only one message is honoured), and collects the attachments to upload. Pure.
 */
import { InvalidRequestError } from '../errors.ts';
import type { AttachmentReference, ChatMessage, ContentPart } from './chat-request.ts';

export interface BuiltPrompt {
  text: string;
  attachments: AttachmentReference[];
}

export interface BuildPromptOptions {
  /** True when continuing an upstream chat: Kimi already has the history, send only the new turn. */
  isContinuation: boolean;
  instructions?: string;
}

const roleLabels: Record<ChatMessage['role'], string> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
  tool: 'tool',
  function: 'tool',
};

export function buildPrompt(messages: ChatMessage[], options: BuildPromptOptions): BuiltPrompt {
  const lastUserIndex = findLastIndex(messages, (message) => message.role === 'user');
  if (lastUserIndex === -1 && !messages.some((message) => message.role === 'tool')) {
    throw new InvalidRequestError('messages must contain at least one user message.', { param: 'messages' });
  }
  const turnStart = options.isContinuation ? firstIndexOfCurrentTurn(messages) : 0;
  const turn = messages.slice(turnStart);
  const attachments = collectAttachments(messages, turnStart, lastUserIndex);
  const transcriptNeeded = turn.length > 1 || turn[0].role !== 'user';
  const body = transcriptNeeded
    ? turn.map((message) => formatTurn(message)).filter(Boolean).join('\n\n')
    : textOf(turn[0].content);
  const text = options.instructions ? `${body}\n\n${options.instructions}` : body;
  if (!text.trim() && attachments.length === 0) {
    throw new InvalidRequestError('The last user message is empty.', { param: 'messages' });
  }
  return { text, attachments };
}

/** Joins the text parts of a message's content; non-text parts are handled as attachments. */
export function textOf(content: ChatMessage['content']): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .map((part) => (isTextPart(part) ? part.text : ''))
    .filter(Boolean)
    .join('\n');
}

function formatTurn(message: ChatMessage): string {
  const text = textOf(message.content);
  const calls = (message.tool_calls ?? [])
    .map((call) => `[called ${call.function.name}(${call.function.arguments}) as ${call.id}]`)
    .join('\n');
  const result = resultLabel(message);
  const combined = [result + text, calls].filter(Boolean).join('\n');
  return combined ? `${roleLabels[message.role]}: ${combined}` : '';
}

/** Which call a result answers: its id, or for a legacy `function` message without one, the function's name. */
function resultLabel(message: ChatMessage): string {
  if (message.role === 'tool' && message.tool_call_id) return `[result of ${message.tool_call_id}] `;
  if (message.role === 'function' && message.name) return `[result of ${message.name}] `;
  return '';
}

/**
 * On a continuation, the new turn starts after the last assistant message (its tool results and
 * the new user message); Kimi already holds everything before it. An assistant message at the very end is
 * the client's prefill for this turn, not an earlier answer: the turn then starts after the assistant message
 * before the last user message, so the new question is not lost.
 */
function firstIndexOfCurrentTurn(messages: ChatMessage[]): number {
  const isAssistant = (message: ChatMessage) => message.role === 'assistant';
  const endsWithPrefill = isAssistant(messages[messages.length - 1]);
  const lastUser = findLastIndex(messages, (message) => message.role === 'user');
  const answeredBefore = endsWithPrefill && lastUser >= 0 ? findLastIndex(messages.slice(0, lastUser), isAssistant) : findLastIndex(messages, isAssistant);
  return answeredBefore + 1 < messages.length ? answeredBefore + 1 : messages.length - 1;
}

function collectAttachments(messages: ChatMessage[], turnStart: number, lastUserIndex: number): AttachmentReference[] {
  const found: AttachmentReference[] = [];
  messages.forEach((message, messageIndex) => {
    // Earlier messages' attachments are sent once, with the flattened history (§ issue 4).
    const isInScope = messageIndex >= turnStart || messageIndex === lastUserIndex;
    if (!isInScope || typeof message.content === 'string' || message.content === null) return;
    for (const part of message.content) {
      const reference = attachmentOf(part, messageIndex);
      if (reference) found.push(reference);
    }
  });
  return found;
}

function attachmentOf(part: ContentPart, messageIndex: number): AttachmentReference | undefined {
  if (part.type === 'image_url') {
    const value = (part as { image_url?: { url?: unknown } | string }).image_url;
    const url = typeof value === 'string' ? value : value?.url;
    if (typeof url !== 'string' || !url) throw missingUrl(messageIndex, 'image_url');
    return { url, kind: 'image', messageIndex };
  }
  if (part.type === 'file') {
    const filePart = part as { file_url?: { url?: unknown } | string; file?: { file_data?: unknown; filename?: unknown; url?: unknown } };
    const fromFileUrl = typeof filePart.file_url === 'string' ? filePart.file_url : filePart.file_url?.url;
    const fromFile = filePart.file?.url ?? filePart.file?.file_data;
    const url = typeof fromFileUrl === 'string' ? fromFileUrl : typeof fromFile === 'string' ? asDataUrl(fromFile) : undefined;
    if (!url) throw missingUrl(messageIndex, 'file');
    const fileName = typeof filePart.file?.filename === 'string' ? filePart.file.filename : undefined;
    return { url, kind: 'document', fileName, messageIndex };
  }
  return undefined;
}

/** OpenAI's `file.file_data` is often bare base64; the type is decided later from the bytes. */
function asDataUrl(value: string): string {
  return /^(data:|https?:)/i.test(value) ? value : `data:application/octet-stream;base64,${value}`;
}

function missingUrl(messageIndex: number, type: string): InvalidRequestError {
  return new InvalidRequestError(`messages[${messageIndex}] has a ${type} part without a URL or data URL.`, {
    param: `messages[${messageIndex}].content`,
  });
}

function isTextPart(part: ContentPart): part is { type: 'text'; text: string } {
  return (part.type === 'text' || part.type === 'input_text') && typeof (part as { text?: unknown }).text === 'string';
}

function findLastIndex<T>(items: T[], predicate: (item: T) => boolean): number {
  for (let index = items.length - 1; index >= 0; index -= 1) if (predicate(items[index])) return index;
  return -1;
}
