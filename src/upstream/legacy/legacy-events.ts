/**
 * @module upstream/legacy/legacy-events
 * Lenient schemas of legacy SSE payloads and the pure mapping from payload to ChatEvent (protocol spec §2.5,
 * §9 D7, D14), plus the decision taken when one upstream segment ends (finish, continue after `length`, fail).
 */
import { z } from 'zod';
import { UpstreamError, type GatewayError } from '../../errors.ts';
import type { ChatEvent, FinishReason } from '../dialect.ts';
import { errorBodyFromJson, legacyErrorFromBody } from './legacy-errors.ts';
import type { LegacySsePayload, LegacyUnknownHandler } from './legacy-sse.ts';

const envelopeSchema = z.looseObject({ event: z.string().min(1) });
const idSchema = z.looseObject({ id: z.string().optional() });
const textSchema = z.looseObject({ text: z.string().optional() });
const searchSchema = z.looseObject({
  msg: z
    .looseObject({
      type: z.string().optional(),
      title: z.string().optional(),
      url: z.string().optional(),
      site_name: z.string().optional(),
      snippet: z.string().optional(),
    })
    .optional(),
});

/** Events that carry nothing for the answer: search decision, UI zones, suggestions, auto-title (§2.5, §9 D7). */
const ignoredEvents = new Set(['debug', 'zone_set', 'chat_prompt', 'rename', 'ref_docs', 'done', 'ping']);
/** search_plus steps other than a result (progress markers). */
const searchProgressTypes = new Set(['start', 'start_res', 'end', 'end_res', 'searching', 'answer']);

export interface LegacyStreamState {
  /** Latest `req.id`: the segment to continue after a `length` cut (§2.4). */
  segmentId: string | undefined;
  /** First `resp.id`: the assistant message; continuations keep it. */
  messageId: string | undefined;
  hasText: boolean;
  hasReasoning: boolean;
  /** Source urls in the order they were numbered (index = position + 1). */
  sourceUrls: readonly string[];
  /** `length` arrived in the current segment. */
  isLengthCut: boolean;
  /** How the current segment ended, when it did. */
  ending: 'all-done' | 'content-filter' | undefined;
}

export interface LegacyStep {
  state: LegacyStreamState;
  events: ChatEvent[];
  error?: GatewayError;
}

export interface LegacyMapContext {
  onUnknown: LegacyUnknownHandler;
  defaultRetryAfterMs: number;
}

export function initialLegacyStreamState(): LegacyStreamState {
  return {
    segmentId: undefined,
    messageId: undefined,
    hasText: false,
    hasReasoning: false,
    sourceUrls: [],
    isLengthCut: false,
    ending: undefined,
  };
}

/** State for the next (continuation) segment: everything is kept except the segment's own end markers. */
export function startNextSegment(state: LegacyStreamState): LegacyStreamState {
  return { ...state, isLengthCut: false, ending: undefined };
}

/** Maps one payload. Pure: returns the next state, the events to emit and, for `error`, the error to throw. */
export function mapLegacyPayload(state: LegacyStreamState, payload: LegacySsePayload, context: LegacyMapContext): LegacyStep {
  const envelope = envelopeSchema.safeParse(withSseEventName(payload));
  if (!envelope.success) {
    context.onUnknown('payload', 'no-event');
    return { state, events: [] };
  }
  const data = envelope.data;
  switch (data.event) {
    case 'req':
      return withParsed(state, idSchema, data, context, (parsed) => ({
        state: parsed.id ? { ...state, segmentId: parsed.id } : state,
        events: [],
      }));
    case 'resp':
      return withParsed(state, idSchema, data, context, (parsed) =>
        parsed.id && !state.messageId
          ? { state: { ...state, messageId: parsed.id }, events: [{ type: 'message-start', messageId: parsed.id }] }
          : { state, events: [] },
      );
    case 'cmpl':
      return withParsed(state, textSchema, data, context, (parsed) =>
        parsed.text ? { state: { ...state, hasText: true }, events: [{ type: 'text-delta', text: parsed.text }] } : { state, events: [] },
      );
    case 'k1':
      return withParsed(state, textSchema, data, context, (parsed) =>
        parsed.text
          ? { state: { ...state, hasReasoning: true }, events: [{ type: 'reasoning-delta', text: parsed.text }] }
          : { state, events: [] },
      );
    case 'search_plus':
      return withParsed(state, searchSchema, data, context, (parsed) => mapSearch(state, parsed.msg, context));
    case 'length':
      return { state: { ...state, isLengthCut: true }, events: [] };
    case 'all_done':
      return { state: { ...state, ending: state.ending ?? 'all-done' }, events: [] };
    case 'error':
      return mapError(state, data, context);
    default:
      if (!ignoredEvents.has(data.event)) context.onUnknown('event', data.event);
      return { state, events: [] };
  }
}

/** What to do once a segment's body has ended (§2.4 continuation, §2.5 `all_done`). */
export type SegmentOutcome = { action: 'finish'; reason: FinishReason } | { action: 'continue'; segmentId: string };

export function decideAfterSegment(state: LegacyStreamState, continuationsUsed: number, maxContinuations: number): SegmentOutcome {
  if (state.ending === 'content-filter') return { action: 'finish', reason: 'content-filter' };
  if (state.isLengthCut) {
    // A `length` cut is honoured even when the body closed before `all_done`: the answer is known to go on.
    if (state.segmentId && continuationsUsed < maxContinuations) return { action: 'continue', segmentId: state.segmentId };
    return { action: 'finish', reason: 'length' };
  }
  if (state.ending !== 'all-done') {
    throw new UpstreamError('Kimi ended the answer stream early (no all_done event); the answer is incomplete.', {
      isRetryable: true,
    });
  }
  if (!state.hasText && !state.hasReasoning) {
    throw new UpstreamError('Kimi finished without producing any answer text.', { isRetryable: true });
  }
  return { action: 'finish', reason: 'stop' };
}

function mapSearch(
  state: LegacyStreamState,
  message: z.infer<typeof searchSchema>['msg'],
  context: LegacyMapContext,
): Omit<LegacyStep, 'error'> {
  const type = message?.type ?? '';
  if (type !== 'get_res') {
    if (!searchProgressTypes.has(type)) context.onUnknown('search', type || 'missing-type');
    return { state, events: [] };
  }
  const url = message?.url?.trim();
  if (!url || state.sourceUrls.includes(url)) return { state, events: [] };
  const sourceUrls = [...state.sourceUrls, url];
  const source = {
    index: sourceUrls.length,
    title: message?.title?.trim() || url,
    url,
    ...(message?.site_name ? { siteName: message.site_name } : {}),
    ...(message?.snippet ? { snippet: message.snippet } : {}),
  };
  return { state: { ...state, sourceUrls }, events: [{ type: 'search-source', source }] };
}

function mapError(state: LegacyStreamState, data: Record<string, unknown>, context: LegacyMapContext): LegacyStep {
  const body = errorBodyFromJson(data) ?? { errorType: undefined, message: undefined };
  // A moderation stop after some text is a content filter on the answer, not a failed request (§2.8).
  if (body.errorType === 'chat.forbidden' && state.hasText) {
    return { state: { ...state, ending: 'content-filter' }, events: [] };
  }
  const error = legacyErrorFromBody(body, { kind: 'stream', defaultRetryAfterMs: context.defaultRetryAfterMs });
  return { state, events: [], error };
}

/** Uses the SSE `event:` field when the JSON lacks its own `event` discriminator. */
function withSseEventName(payload: LegacySsePayload): unknown {
  const data = payload.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return data;
  if ('event' in data || !payload.sseEvent || payload.sseEvent === 'message') return data;
  return { ...data, event: payload.sseEvent };
}

function withParsed<T>(
  state: LegacyStreamState,
  schema: z.ZodType<T>,
  data: Record<string, unknown> & { event: string },
  context: LegacyMapContext,
  map: (parsed: T) => Omit<LegacyStep, 'error'>,
): LegacyStep {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    context.onUnknown('payload', data.event);
    return { state, events: [] };
  }
  return map(parsed.data);
}
