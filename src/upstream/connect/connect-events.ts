/**
 * @module upstream/connect/connect-events
 * Frame payloads of `ChatService/Chat` (protocol spec §3.6) to `ChatEvent`s: the pure mapper
 * `mapConnectFrame(state, payload, options)` and the end-of-stream rules (schemas: connect-frame-schema.ts).
 */
import { RateLimitError, UpstreamError, type GatewayError } from '../../errors.ts';
import type { ChatEvent } from '../dialect.ts';
import { cannotStartMarker, renderCitations, type CitationMode, type CitationScan } from './connect-citations.ts';
import { defaultQuotaRetryAfterMs, errorFromBlockException, gatewayErrorFromConnect, parseConnectError } from './connect-errors.ts';
import { frameSchema, knownBlockParts, knownTopLevel, type Block, type Frame, type SearchItemPayload } from './connect-frame-schema.ts';
import { addSources, emptySourceTable, sourceNumberForRef, type SearchItem, type SourceTable } from './connect-sources.ts';
import { isPlainObject } from '../../plain-object.ts';

export type UnknownKind = 'event' | 'op' | 'field' | 'enum';
export type UnknownObserver = (kind: UnknownKind, name: string) => void;
export interface UnknownReport {
  kind: UnknownKind;
  name: string;
}

export interface MapperOptions {
  citations: CitationMode;
  defaultRetryAfterMs: number;
  busyRetryAfterMs?: number;
  maxMarkerChars?: number;
}

/** The block text and reasoning currently stream into; `raw` is its upstream content so far. */
interface BlockCursor {
  readonly id: string | undefined;
  readonly raw: string;
  /** A newline is owed before this block's first character (it follows an earlier block). */
  readonly owesSeparator: boolean;
}

type Channel = 'text' | 'reasoning';

export interface ConnectStreamState {
  readonly lastEventOffset: number;
  readonly conversationId: string | undefined;
  readonly messageId: string | undefined;
  readonly blocks: Readonly<Record<Channel, BlockCursor | undefined>>;
  /** Held-back start of a citation marker, per channel (§3.7). */
  readonly pending: Readonly<Record<Channel, string>>;
  readonly hasContent: Readonly<Record<Channel, boolean>>;
  readonly sources: SourceTable;
  readonly isDone: boolean;
  readonly isCompleted: boolean;
  readonly quotaNotice: string | undefined;
  /** Unknowns this stream carried (`kind:name`, first few): they explain an answer that comes out empty (§3.6). */
  readonly unknownsSeen: readonly string[];
}

export interface FrameResult {
  state: ConnectStreamState;
  events: ChatEvent[];
  unknowns: UnknownReport[];
  error?: GatewayError;
}

export function initialStreamState(): ConnectStreamState {
  return {
    lastEventOffset: 0,
    conversationId: undefined,
    messageId: undefined,
    blocks: { text: undefined, reasoning: undefined },
    pending: { text: '', reasoning: '' },
    hasContent: { text: false, reasoning: false },
    sources: emptySourceTable,
    isDone: false,
    isCompleted: false,
    quotaNotice: undefined,
    unknownsSeen: [],
  };
}

/** How many distinct unknowns a stream remembers for its error message. */
const maxUnknownsSeen = 5;

const knownMessageStatuses = new Set(['MESSAGE_STATUS_GENERATING', 'MESSAGE_STATUS_COMPLETED']);
const knownToolStatuses = new Set(['STATUS_PENDING', 'STATUS_RUNNING', 'STATUS_DONE']);

/** Maps one data frame's JSON. Never throws: problems come back as `error` or `unknowns`. */
export function mapConnectFrame(state: ConnectStreamState, payload: unknown, options: MapperOptions): FrameResult {
  const result = mapFrame(state, payload, options);
  if (result.unknowns.length === 0) return result;
  return { ...result, state: rememberUnknowns(result.state, result.unknowns) };
}

function rememberUnknowns(state: ConnectStreamState, unknowns: UnknownReport[]): ConnectStreamState {
  let seen = state.unknownsSeen;
  for (const { kind, name } of unknowns) {
    const label = `${kind}:${name}`;
    if (seen.length < maxUnknownsSeen && !seen.includes(label)) seen = [...seen, label];
  }
  return seen === state.unknownsSeen ? state : { ...state, unknownsSeen: seen };
}

function mapFrame(state: ConnectStreamState, payload: unknown, options: MapperOptions): FrameResult {
  const unknowns: UnknownReport[] = [];
  const events: ChatEvent[] = [];
  const fast = contentFrameOf(payload);
  if (fast) {
    const advanced = advanceOffset(state, fast.eventOffset);
    if (!advanced) return { state, events, unknowns };
    state = advanced;
    const plain = fast.op === 'append' ? plainAppend(state, fast, events) : undefined;
    if (plain) return { state: plain, events, unknowns };
    return { state: mapBlock(state, fast.op, fast.block, options, events, unknowns), events, unknowns };
  }
  if (isPlainHeartbeat(payload)) return { state, events, unknowns };
  const closing = closingFrameOf(payload);
  if (closing) {
    const advanced = advanceOffset(state, closing.eventOffset);
    if (!advanced) return { state, events, unknowns };
    state = advanced;
    if (closing.kind === 'done') return { state: { ...state, isDone: true }, events, unknowns };
    return { state: closing.isCompleted ? { ...state, isCompleted: true } : state, events, unknowns };
  }
  const opening = openingFrameOf(payload);
  if (opening) {
    const advanced = advanceOffset(state, opening.eventOffset);
    if (!advanced) return { state, events, unknowns };
    state = startConversation(advanced, opening.chat && chatIdOf(advanced, opening.chat, unknowns), events);
    if (opening.message) state = mapMessage(state, opening.message, events, unknowns);
    return { state, events, unknowns };
  }
  const parsed = frameSchema.safeParse(payload);
  if (!parsed.success) return { state, events, unknowns: [{ kind: 'event', name: Array.isArray(payload) ? 'array' : typeof payload }] };
  const frame = parsed.data;
  for (const [key, value] of Object.entries(frame)) {
    if (!knownTopLevel.has(key) && value !== null && typeof value === 'object') unknowns.push({ kind: 'event', name: key });
  }
  if (frame.error !== undefined && frame.error !== null) return { state, events, unknowns, error: streamError(frame.error, options) };
  const isStateEvent = frame.heartbeat === undefined;
  if (!isStateEvent) return { state, events, unknowns };
  const advanced = advanceOffset(state, frame.eventOffset);
  if (!advanced) return { state, events, unknowns };
  state = advanced;
  const op = frame.op ?? 'set';
  if (op !== 'set' && op !== 'append') {
    unknowns.push({ kind: 'op', name: op });
    // Dropping a frame that carries answer text would end in a short answer that looks whole: fail instead.
    if (carriesAnswerText(frame.block)) return { state, events, unknowns, error: unknownOpWithText(op) };
    return { state, events, unknowns };
  }
  state = startConversation(state, frame.chat && chatIdOf(state, frame.chat, unknowns), events);
  if (frame.message) state = mapMessage(state, frame.message, events, unknowns);
  if (frame.block) {
    if (frame.block.exception) return { state, events, unknowns, error: errorFromBlockException(frame.block.exception, options.defaultRetryAfterMs) };
    state = mapBlock(state, op, frame.block, options, events, unknowns);
  }
  if (frame.notification) state = mapNotification(state, frame.notification, events, unknowns);
  if (frame.done !== undefined) state = { ...state, isDone: true };
  return { state, events, unknowns };
}

/**
 * End-of-stream rules (§3.6): the end frame may still carry an error after `done`; a transport end
 * without `done`, a COMPLETED status or the end frame is a truncation; a reply with no text and no reasoning is a failure.
 */
export function mapEndOfStream(
  state: ConnectStreamState,
  end: { sawEndFrame: true; payload: unknown } | { sawEndFrame: false },
  options: MapperOptions,
): { events: ChatEvent[]; error?: GatewayError } {
  const endError = end.sawEndFrame ? (end.payload as { error?: unknown } | null)?.error : undefined;
  if (endError !== undefined && endError !== null) {
    // §3.6: an end frame may carry an error even after `done`; it wins over everything streamed.
    return { events: [], error: streamError(endError, options) };
  }
  const events: ChatEvent[] = [];
  for (const channel of ['reasoning', 'text'] as const) {
    const tail = renderCitations(state.pending[channel], resolver(state), options.citations, true, options.maxMarkerChars).output;
    if (tail) events.push(delta(channel, tail));
  }
  // A message marked COMPLETED is whole even if the transport dropped before `done`.
  if (!end.sawEndFrame && !state.isDone && !state.isCompleted) {
    return { events, error: new UpstreamError('Kimi\'s answer stream ended before it was complete (no end-of-stream frame).', { isRetryable: true }) };
  }
  if (!state.hasContent.text && !state.hasContent.reasoning) {
    const error = state.quotaNotice
      ? new RateLimitError('insufficient_quota', `This Kimi account has used up its quota: ${state.quotaNotice}.`, { retryAfterMs: defaultQuotaRetryAfterMs })
      // Drift explains it when unknowns came instead of text: another account would get the same, so no failover.
      : new UpstreamError(emptyAnswerMessage(state.unknownsSeen), { isRetryable: state.unknownsSeen.length === 0 });
    return { events, error };
  }
  events.push({ type: 'finish', reason: 'stop' });
  return { events };
}

/** The unknowns seen are the likely reason for an empty answer: name them so the operator knows what drifted. */
function emptyAnswerMessage(unknownsSeen: readonly string[]): string {
  const base = 'Kimi returned an empty answer (no text, no reasoning, no error)';
  if (unknownsSeen.length === 0) return `${base}.`;
  return `${base}; it sent unknown ${unknownsSeen.join(', ')} frames instead (§3.6): the gateway needs an update — run doctor.`;
}

/** An op other than set/append whose block has text or reasoning in it (§3.6): not knowing how to apply it loses answer text. */
function carriesAnswerText(block: Block | undefined): boolean {
  return Boolean(block?.text?.content || block?.think?.content);
}

function unknownOpWithText(op: string): UpstreamError {
  const name = op.replace(/[^\w.-]/g, '?').slice(0, 40);
  return new UpstreamError(`Kimi sent answer text in an unknown op "${name}" (§3.6); the gateway needs an update — run doctor.`, {
    upstreamReason: `op:${name}`,
  });
}

/** `chat` keys of §3.6; any other key in a chat object without an id is reported, since it may be the id renamed. */
const knownChatKeys = new Set(['id', 'name', 'createTime', 'updateTime', 'files', 'lastRequest', 'status']);

/**
 * The id of a `chat` object (§3.6). Before the conversation is known, a chat object without `id` is drift: its
 * unknown keys are reported (the status page and metrics show them), and a renamed `chatId`/`chat_id` is still read,
 * so that the answer keeps its conversation id and the temporary chat can be continued and deleted.
 */
function chatIdOf(state: ConnectStreamState, chat: Record<string, unknown>, unknowns: UnknownReport[]): string | undefined {
  const id = lenientIdOf(chat.id);
  if (id !== undefined || state.conversationId !== undefined) return id;
  for (const key in chat) if (!knownChatKeys.has(key)) unknowns.push({ kind: 'field', name: `chat.${key}` });
  return lenientIdOf(chat.chatId) ?? lenientIdOf(chat.chat_id);
}

/** The first chat id seen is the answer's conversation. */
function startConversation(state: ConnectStreamState, chatId: string | undefined, events: ChatEvent[]): ConnectStreamState {
  if (!chatId || state.conversationId !== undefined) return state;
  events.push({ type: 'conversation-start', conversationId: chatId });
  return { ...state, conversationId: chatId };
}

function mapMessage(state: ConnectStreamState, message: NonNullable<Frame['message']>, events: ChatEvent[], unknowns: UnknownReport[]): ConnectStreamState {
  if (message.role === 'user') return state; // the echo of our own turn, never part of the answer (§4)
  if (message.role !== undefined && message.role !== 'assistant') unknowns.push({ kind: 'enum', name: `message.role:${message.role}` });
  if (message.role === 'assistant' && message.id && message.id !== state.messageId) {
    state = { ...state, messageId: message.id };
    events.push({ type: 'message-start', messageId: message.id });
  }
  if (message.status !== undefined) {
    if (!knownMessageStatuses.has(message.status)) unknowns.push({ kind: 'enum', name: `message.status:${message.status}` });
    if (message.status === 'MESSAGE_STATUS_COMPLETED') state = { ...state, isCompleted: true };
  }
  const chunks = [...(message.refs?.searchChunks ?? []), ...(message.refs?.usedSearchChunks ?? [])];
  return withSources(state, chunks, events);
}

/**
 * Most frames of an answer are text or reasoning appends, after one `set` that opens the block (§3.14).
 * Recognising exactly those shapes by hand skips the schema for them (zod was 6 % of the gateway's CPU while
 * streaming); anything else, even with one extra field, takes the full schema path, so unknown parts are still
 * reported.
 */
function contentFrameOf(payload: unknown): ContentFrame | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const frame = payload as Record<string, unknown>;
  const op = frame.op;
  if (op !== 'append' && op !== 'set') return undefined;
  const masks = op === 'append' ? contentAppendMasks : contentSetMasks;
  const channel = frame.mask === masks.text ? 'text' : frame.mask === masks.think ? 'think' : undefined;
  if (!channel) return undefined;
  if (!hasOnlyKeys(frame, contentFrameKeys)) return undefined;
  if (!isOffsetOrAbsent(frame.eventOffset)) return undefined;
  const block = frame.block as Record<string, unknown> | null | undefined;
  if (typeof block !== 'object' || block === null) return undefined;
  if (!hasOnlyKeys(block, channel === 'text' ? textBlockKeys : thinkBlockKeys)) return undefined;
  if (block.id !== undefined && typeof block.id !== 'string') return undefined;
  const part = block[channel] as Record<string, unknown> | null | undefined;
  if (typeof part !== 'object' || part === null) return undefined;
  if (!hasOnlyKeys(part, contentPartKeys)) return undefined;
  if (typeof part.content !== 'string') return undefined;
  return { op, eventOffset: frame.eventOffset as number | undefined, block: block as Block, channel: channel === 'think' ? 'reasoning' : 'text', text: part.content };
}

const contentAppendMasks = { text: 'block.text.content', think: 'block.think.content' };
const contentSetMasks = { text: 'block.text', think: 'block.think' };

interface ContentFrame {
  op: 'set' | 'append';
  eventOffset?: number;
  block: Block;
  channel: Channel;
  text: string;
}

/**
 * The two frames that close every answer (§3.14 a): `{"eventOffset":N,"done":{}}` and the assistant message's
 * status `set` (`message.status`), recognised by hand like the content frames; an unknown status takes the
 * schema path so that it is reported.
 */
function closingFrameOf(payload: unknown): { kind: 'done' | 'status'; eventOffset?: number; isCompleted?: boolean } | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const frame = payload as Record<string, unknown>;
  if (!isOffsetOrAbsent(frame.eventOffset)) return undefined;
  const eventOffset = frame.eventOffset as number | undefined;
  if (typeof frame.done === 'object' && frame.done !== null) {
    if (!hasOnlyKeys(frame, doneFrameKeys)) return undefined;
    return { kind: 'done', eventOffset };
  }
  if (frame.op !== 'set' || frame.mask !== 'message.status') return undefined;
  if (!hasOnlyKeys(frame, statusFrameKeys)) return undefined;
  const message = frame.message as Record<string, unknown> | null | undefined;
  if (typeof message !== 'object' || message === null) return undefined;
  if (!hasOnlyKeys(message, statusMessageKeys)) return undefined;
  if (message.id !== undefined && typeof message.id !== 'string') return undefined;
  if (typeof message.status !== 'string' || !knownMessageStatuses.has(message.status)) return undefined;
  return { kind: 'status', eventOffset, isCompleted: message.status === 'MESSAGE_STATUS_COMPLETED' };
}

/**
 * The common case of the common case: more text for the block already streaming, with nothing held back and
 * nothing that could start a citation marker or end in half a surrogate pair. The result is what mapBlock
 * returns for it (a test holds them equal), without the citation scan and the copies of every part of the state.
 */
function plainAppend(state: ConnectStreamState, append: ContentFrame, events: ChatEvent[]): ConnectStreamState | undefined {
  const { channel, text } = append;
  const cursor = state.blocks[channel];
  if (!cursor || cursor.owesSeparator || !state.hasContent[channel] || state.pending[channel] || !text) return undefined;
  if (append.block.id !== undefined && append.block.id !== cursor.id) return undefined;
  const last = text.charCodeAt(text.length - 1);
  if ((last >= 0xd800 && last <= 0xdbff) || !cannotStartMarker(text)) return undefined;
  events.push(delta(channel, text));
  return { ...state, blocks: { ...state.blocks, [channel]: { id: cursor.id, raw: cursor.raw + text, owesSeparator: false } } };
}

/**
 * The frames that open every answer (§3.14 a): the chat's `set`s (`chat.lastRequest`, `chat.name`) and the two
 * messages (the echo of the user's turn, the assistant's start), read by hand with the schema's leniency (an id may
 * be a number; a field of another type reads as absent). A message with search refs, or any other key, takes the
 * schema path.
 */
function openingFrameOf(payload: unknown): OpeningFrame | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const frame = payload as Record<string, unknown>;
  if (frame.op !== 'set' || !isOffsetOrAbsent(frame.eventOffset)) return undefined;
  if (!hasOnlyKeys(frame, openingFrameKeys)) return undefined;
  const { chat, message } = frame as { chat?: unknown; message?: unknown };
  if (chat === undefined && message === undefined) return undefined;
  if (chat !== undefined && !isPlainObject(chat)) return undefined;
  if (message !== undefined && (!isPlainObject(message) || 'refs' in message)) return undefined;
  const opening: OpeningFrame = { eventOffset: frame.eventOffset as number | undefined };
  if (chat) opening.chat = chat;
  if (message) {
    const { id, role, status } = message;
    opening.message = { id: lenientIdOf(id), role: typeof role === 'string' ? role : undefined, status: typeof status === 'string' ? status : undefined };
  }
  return opening;
}

interface OpeningFrame {
  eventOffset?: number;
  chat?: Record<string, unknown>;
  message?: { id?: string; role?: string; status?: string };
}

/** What the schema's `lenientId` reads: a string, or a number as its decimal string. */
function lenientIdOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  return typeof value === 'number' ? String(value) : undefined;
}

/** §3.6: offsets grow by one per state event; a repeated or older offset is a replayed duplicate (undefined: drop it). */
function advanceOffset(state: ConnectStreamState, eventOffset: number | undefined): ConnectStreamState | undefined {
  if (eventOffset === undefined) return state;
  if (eventOffset <= state.lastEventOffset) return undefined;
  return { ...state, lastEventOffset: eventOffset };
}

/** The offsets the hand-read frames accept; anything else (a string, a fraction) takes the schema path. */
function isOffsetOrAbsent(value: unknown): boolean {
  return value === undefined || (typeof value === 'number' && Number.isInteger(value));
}

/** The keys each hand-read shape may have: one more, even undefined, sends the frame through the schema. */
const contentFrameKeys = new Set(['op', 'mask', 'eventOffset', 'block']);
const textBlockKeys = new Set(['id', 'text']);
const thinkBlockKeys = new Set(['id', 'think']);
const contentPartKeys = new Set(['content']);
const doneFrameKeys = new Set(['eventOffset', 'done']);
const statusFrameKeys = new Set(['op', 'mask', 'eventOffset', 'message']);
const statusMessageKeys = new Set(['id', 'status']);
const openingFrameKeys = new Set(['op', 'mask', 'eventOffset', 'chat', 'message']);
const heartbeatFrameKeys = new Set(['heartbeat', 'eventOffset']);

function hasOnlyKeys(value: object, allowed: ReadonlySet<string>): boolean {
  for (const key in value) if (!allowed.has(key)) return false;
  return true;
}

/** `{"heartbeat":{}}`, optionally with `eventOffset` (§3.6): a third of a short answer's frames, and they carry nothing. */
function isPlainHeartbeat(payload: unknown): boolean {
  if (typeof payload !== 'object' || payload === null) return false;
  const frame = payload as Record<string, unknown>;
  const heartbeat = frame.heartbeat as Record<string, unknown> | null | undefined;
  if (typeof heartbeat !== 'object' || heartbeat === null) return false;
  for (const key in heartbeat) return false;
  if (!hasOnlyKeys(frame, heartbeatFrameKeys)) return false;
  return isOffsetOrAbsent(frame.eventOffset);
}

function mapBlock(
  state: ConnectStreamState,
  op: 'set' | 'append',
  block: Block,
  options: MapperOptions,
  events: ChatEvent[],
  unknowns: UnknownReport[],
): ConnectStreamState {
  for (const [key, value] of Object.entries(block)) {
    if (!knownBlockParts.has(key) && value !== null && typeof value === 'object') unknowns.push({ kind: 'field', name: `block.${key}` });
  }
  if (block.think) state = feedChannel(state, 'reasoning', op, block.id, block.think.content, options, events);
  if (block.text) state = feedChannel(state, 'text', op, block.id, block.text.content, options, events);
  if (block.tool) {
    if (block.tool.status !== undefined && !knownToolStatuses.has(block.tool.status)) unknowns.push({ kind: 'enum', name: `block.tool.status:${block.tool.status}` });
    const results = (block.tool.contents ?? []).map((entry) => entry.searchResult).filter((item) => item !== undefined);
    state = withSources(state, results, events);
  }
  if (block.search?.webPages) state = withSources(state, block.search.webPages, events);
  return state;
}

/** `set` replaces the block's content, `append` extends it; either may open the block (§3.6). */
function feedChannel(
  state: ConnectStreamState,
  channel: Channel,
  op: 'set' | 'append',
  blockId: string | undefined,
  incoming: string | undefined,
  options: MapperOptions,
  events: ChatEvent[],
): ConnectStreamState {
  const current = state.blocks[channel];
  const isNewBlock = !current || (blockId !== undefined && blockId !== current.id);
  let pending = state.pending[channel];
  let cursor: BlockCursor = isNewBlock ? { id: blockId, raw: '', owesSeparator: state.hasContent[channel] } : current;
  if (isNewBlock && pending) {
    // A marker never closes across blocks: release what the previous block held back.
    const tail = renderCitations(pending, resolver(state), options.citations, true, options.maxMarkerChars).output;
    if (tail) events.push(delta(channel, tail));
    pending = '';
  }
  const added = incoming ?? '';
  let fresh: string;
  if (op === 'append') {
    fresh = added;
    cursor = { ...cursor, raw: cursor.raw + added };
  } else {
    // A set that repeats what was streamed adds only its new tail; text already sent cannot be retracted.
    fresh = added.startsWith(cursor.raw) ? added.slice(cursor.raw.length) : '';
    cursor = { ...cursor, raw: added };
  }
  let hasContent = state.hasContent;
  if (fresh) {
    const scan = holdHighSurrogate(renderCitations(pending + fresh, resolver(state), options.citations, false, options.maxMarkerChars));
    const separator = cursor.owesSeparator ? '\n' : '';
    if (separator || scan.output) events.push(delta(channel, separator + scan.output));
    pending = scan.pending;
    cursor = { ...cursor, owesSeparator: false };
    if (!hasContent[channel]) hasContent = { ...hasContent, [channel]: true };
  }
  return { ...state, blocks: { ...state.blocks, [channel]: cursor }, pending: { ...state.pending, [channel]: pending }, hasContent };
}

function mapNotification(state: ConnectStreamState, notification: NonNullable<Frame['notification']>, events: ChatEvent[], unknowns: UnknownReport[]): ConnectStreamState {
  const type = notification.type ?? 'TYPE_UNSPECIFIED';
  if (type === 'TYPE_MODEL_DEGRADE') {
    events.push({ type: 'notice', kind: 'model-degrade', message: notification.message || 'Kimi answered with a lighter model because it is busy.' });
    return state;
  }
  const isQuota = /quota/i.test(notification.message ?? '') || JSON.stringify(notification).includes('"needUpgrade":true');
  if (isQuota) {
    // §3.13: a quota notice; fatal only when no answer follows (decided at the end of the stream).
    events.push({ type: 'notice', kind: 'quota', message: notification.message || 'Monthly quota used up.' });
    return { ...state, quotaNotice: notification.message || 'Monthly quota used up' };
  }
  unknowns.push({ kind: 'enum', name: `notification.type:${type}` });
  events.push({ type: 'notice', kind: type.replace(/^TYPE_/, '').toLowerCase().replace(/_/g, '-'), message: notification.message ?? '' });
  return state;
}

function withSources(state: ConnectStreamState, items: SearchItemPayload[], events: ChatEvent[]): ConnectStreamState {
  if (items.length === 0) return state;
  const flattened: SearchItem[] = items.map((item) => ({
    refIndex: item.refIndex,
    title: item.base?.title ?? item.title,
    url: item.base?.url ?? item.url,
    siteName: item.base?.siteName ?? item.siteName,
    snippet: item.base?.snippet ?? item.snippet,
  }));
  const { table, added } = addSources(state.sources, flattened);
  for (const source of added) events.push({ type: 'search-source', source });
  return table === state.sources ? state : { ...state, sources: table };
}

function streamError(value: unknown, options: MapperOptions): GatewayError {
  const info = parseConnectError(value) ?? { code: 'unknown', hasPaywall: false, needsUpgrade: false };
  return gatewayErrorFromConnect(info, { operation: 'chat', defaultRetryAfterMs: options.defaultRetryAfterMs, busyRetryAfterMs: options.busyRetryAfterMs });
}

/**
 * An emoji may arrive as two `\uXXXX` escapes in two frames; a delta ending in half a surrogate pair
 * would turn into U+FFFD once encoded, so that half waits for the next frame.
 */
function holdHighSurrogate(scan: CitationScan): CitationScan {
  const last = scan.output.charCodeAt(scan.output.length - 1);
  if (scan.pending || !(last >= 0xd800 && last <= 0xdbff)) return scan;
  return { output: scan.output.slice(0, -1), pending: scan.output.slice(-1) };
}

function resolver(state: ConnectStreamState): (ref: string) => number | undefined {
  return (ref) => sourceNumberForRef(state.sources, ref);
}

function delta(channel: Channel, text: string): ChatEvent {
  return channel === 'text' ? { type: 'text-delta', text } : { type: 'reasoning-delta', text };
}
