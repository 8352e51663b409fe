/**
 * @module simulator/legacy-script
 * Pure builder of a legacy completion SSE stream (spec §2.5, §2.6, §2.8, §9 D7/D13) and its fault variants.
 */
import type { ScenarioName } from './scenarios.ts';
import type { MessageStatus } from './simulator-types.ts';
import { splitIntoPieces, type SearchSourceSpec } from './reply-text.ts';

export type LegacyItem =
  | { kind: 'event'; value: Record<string, unknown> }
  /** Raw SSE text (comments, a non-JSON data line). */
  | { kind: 'raw'; text: string }
  | { kind: 'stall' }
  /** `: keep-alive` comments and ping events only, from here until the client leaves. */
  | { kind: 'keep-alive' }
  | { kind: 'reset' };

export interface LegacyPlan {
  segmentId: string;
  groupId: string;
  responseId: string;
  userText: string;
  refs: string[];
  thinkingText?: string;
  search?: { query: string; sources: SearchSourceSpec[] };
  replyText: string;
  /** Auto title, sent as `rename` on the first turn (§9 D7). */
  rename?: string;
}

export interface LegacyScript {
  items: LegacyItem[];
  finalStatus?: MessageStatus;
  /** Text held back by a `length` cut, for the continuation request. */
  remainder?: string;
}

export const TIRED_MESSAGE = 'Kimi 现在有点累了，晚一点再来问问我吧！';
export const OVERLOAD_TEXT = '算力不够，请稍后再试';
export const TOO_LONG_MESSAGE = '当前对话过长，请开启新对话';

const event = (value: Record<string, unknown>): LegacyItem => ({ kind: 'event', value });
const cmpl = (text: string): LegacyItem => event({ event: 'cmpl', idx_s: 0, idx_z: 0, text, view: 'cmpl' });
const errorEvent = (errorType: string, message: string, detail: string): LegacyItem =>
  event({ event: 'error', error: { error_type: errorType, message, detail } });

function preamble(plan: LegacyPlan): LegacyItem[] {
  return [
    event({ event: 'req', id: plan.segmentId, group_id: plan.groupId, content: plan.userText, refs: plan.refs }),
    event({ event: 'resp', id: plan.responseId, group_id: plan.groupId }),
    { kind: 'raw', text: ': keep-alive\n\n' },
  ];
}

function searchEvents(search: NonNullable<LegacyPlan['search']>): LegacyItem[] {
  return [
    event({ event: 'debug', message: { need2search: true, search_target: search.query, search_language: 'zh-cn' } }),
    event({ event: 'search_plus', msg: { type: 'start' } }),
    ...search.sources.map((source, index) =>
      event({ event: 'search_plus', msg: { type: 'get_res', successNum: index + 1, title: source.title, url: source.url } }),
    ),
  ];
}

function body(plan: LegacyPlan, textLimit = Infinity): LegacyItem[] {
  return [
    ...preamble(plan),
    ...(plan.search ? searchEvents(plan.search) : []),
    ...(plan.thinkingText === undefined ? [] : splitIntoPieces(plan.thinkingText).map((text) => event({ event: 'k1', text }))),
    ...splitIntoPieces(plan.replyText).slice(0, textLimit).map(cmpl),
  ];
}

export function buildLegacyScript(plan: LegacyPlan, scenario: ScenarioName): LegacyScript {
  const rename = plan.rename === undefined ? [] : [event({ event: 'rename', text: plan.rename })];
  switch (scenario) {
    case 'legacy-length': {
      const points = Array.from(plan.replyText);
      const half = Math.ceil(points.length / 2);
      const shown = points.slice(0, half).join('');
      return {
        items: [...body({ ...plan, replyText: shown }), event({ event: 'length' }), ...rename, event({ event: 'all_done' })],
        finalStatus: 'completed',
        remainder: points.slice(half).join(''),
      };
    }
    case 'legacy-error-mid-stream':
      return { items: [...body(plan, 3), errorEvent('openai.completion.stream', TIRED_MESSAGE, 'runtime error')], finalStatus: 'failed' };
    case 'legacy-overload':
      return { items: [...preamble(plan), errorEvent('openai.completion.stream', OVERLOAD_TEXT, 'overloaded')], finalStatus: 'failed' };
    case 'legacy-token-too-long':
      return { items: [...preamble(plan).slice(0, 1), errorEvent('openai.completion.token_length_too_long', TOO_LONG_MESSAGE, 'token length too long')], finalStatus: 'failed' };
    case 'heartbeats-only':
      return { items: [...preamble(plan), { kind: 'keep-alive' }], finalStatus: 'interrupted' };
    case 'text-then-heartbeats':
      return { items: [...body(plan, 3), { kind: 'keep-alive' }], finalStatus: 'interrupted' };
    case 'reset-after-first-byte':
    case 'stall-between-chunks':
      return { items: [...body(plan, 3), { kind: scenario === 'reset-after-first-byte' ? 'reset' : 'stall' }], finalStatus: 'interrupted' };
    case 'non-json-frame':
      return { items: [...body(plan, 2), { kind: 'raw', text: 'data: this is not json {\n\n' }, event({ event: 'all_done' })], finalStatus: 'interrupted' };
    default:
      return { items: [...body(plan), ...rename, event({ event: 'all_done' })], finalStatus: 'completed' };
  }
}

/** The continuation of a `length` cut (spec §2.4): the rest of the text, then all_done. */
export function buildContinuationScript(responseId: string, groupId: string, remainder: string): LegacyScript {
  return {
    items: [event({ event: 'resp', id: responseId, group_id: groupId }), ...splitIntoPieces(remainder).map(cmpl), event({ event: 'all_done' })],
    finalStatus: 'completed',
  };
}
