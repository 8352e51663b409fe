/**
 * @module chat/tools/structured-output
 * `response_format` json_object / json_schema: the instruction, and a stream stage that holds the answer's
 * text until it is complete, checks that it is one JSON value (a JSON object for json_object) matching the
 * schema, and emits it. A failing answer gets one repair round on the same chat; after that the answer
 * fails with 502 `response_format_invalid`. Answers that end in tool calls are passed through untouched.
 */
import { UpstreamError } from '../../errors.ts';
import type { CompiledSchema } from './schema-validator.ts';
import type { ChatOutputEvent, OutputFinishReason, RepairRound, ResponseFormat } from './tool-events.ts';

export interface EnforceFormatOptions {
  format: ResponseFormat;
  validator: CompiledSchema | undefined;
  /** A repair round; its events may already have passed other stages (the stop-sequence cut). */
  repair?: (request: Parameters<RepairRound>[0]) => AsyncIterable<ChatOutputEvent>;
  onRepair?: (problems: readonly string[]) => void;
}

export function renderFormatInstructions(format: ResponseFormat): string {
  if (format.kind === 'text') return '';
  const rule = 'Reply with the JSON only: no text before or after it, no code fence, no comments.';
  if (format.kind === 'json-object') return ['## Answer format', 'Answer with exactly one JSON object.', rule].join('\n');
  return [
    '## Answer format',
    `Answer with exactly one JSON value that matches this JSON Schema ("${format.name}"${format.description ? `: ${format.description}` : ''}):`,
    JSON.stringify(format.schema),
    rule,
  ].join('\n');
}

export type JsonCheck = { isValid: true; json: string } | { isValid: false; problem: string };

/** The JSON in an answer (a surrounding code fence is tolerated), checked against the format. */
export function checkJsonAnswer(text: string, format: ResponseFormat, validator: CompiledSchema | undefined): JsonCheck {
  const json = text.trim().replace(/^```[\w-]*[ \t]*\r?\n([\s\S]*?)\r?\n?```$/, '$1').trim();
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    return { isValid: false, problem: `it is not valid JSON (${(error as Error).message})` };
  }
  if (format.kind === 'json-object' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    return { isValid: false, problem: 'it is not a JSON object' };
  }
  if (validator) {
    const check = validator.check(value);
    if (!check.isValid) return { isValid: false, problem: `it does not match the schema: ${check.problem}` };
  }
  return { isValid: true, json };
}

export async function* enforceResponseFormat(events: AsyncIterable<ChatOutputEvent>, options: EnforceFormatOptions): AsyncGenerator<ChatOutputEvent> {
  const held: ChatOutputEvent[] = [];
  const textParts: string[] = [];
  let conversationId: string | undefined;
  let finishReason: OutputFinishReason | undefined;
  for await (const event of events) {
    if (event.type === 'conversation-start') conversationId ??= event.conversationId;
    if (event.type === 'text-delta') textParts.push(event.text);
    else if (event.type === 'finish') finishReason = event.reason;
    else if (event.type === 'reasoning-delta' || event.type.startsWith('tool-call')) {
      // Reasoning and calls are not the answer: they stream at once (with the meta events held before them).
      yield* held.splice(0);
      yield event;
    } else held.push(event);
  }
  if (finishReason === undefined || finishReason === 'tool-calls') {
    if (textParts.length) yield { type: 'text-delta', text: textParts.join('') };
    yield* held;
    if (finishReason) yield { type: 'finish', reason: finishReason };
    return;
  }
  let check = checkJsonAnswer(textParts.join(''), options.format, options.validator);
  if (!check.isValid) {
    if (!options.repair || !conversationId) throw invalidFormat(check.problem, false);
    options.onRepair?.([check.problem]);
    const repaired = await collectRepair(options.repair({ conversationId, instruction: renderFormatRepair(check.problem, options.format), previousAnswer: textParts.join('') }), held);
    check = checkJsonAnswer(repaired, options.format, options.validator);
    if (!check.isValid) throw invalidFormat(check.problem, true);
  }
  const usage = held.filter((event) => event.type === 'usage');
  yield* held.filter((event) => event.type !== 'usage');
  yield { type: 'text-delta', text: check.json };
  yield* sumUsage(usage);
  yield { type: 'finish', reason: finishReason };
}

/** The repair answer's text; its message id and usage join the held events, everything else is dropped. */
async function collectRepair(events: AsyncIterable<ChatOutputEvent>, held: ChatOutputEvent[]): Promise<string> {
  const parts: string[] = [];
  for await (const event of events) {
    if (event.type === 'text-delta') parts.push(event.text);
    if (event.type === 'message-start' || event.type === 'usage') held.push(event);
  }
  return parts.join('');
}

function sumUsage(events: ChatOutputEvent[]): ChatOutputEvent[] {
  const usages = events.filter((event): event is Extract<ChatOutputEvent, { type: 'usage' }> => event.type === 'usage');
  if (usages.length === 0) return [];
  return [{
    type: 'usage',
    promptTokens: usages.reduce((sum, event) => sum + event.promptTokens, 0),
    completionTokens: usages.reduce((sum, event) => sum + event.completionTokens, 0),
    isEstimate: usages.some((event) => event.isEstimate),
  }];
}

function renderFormatRepair(problem: string, format: ResponseFormat): string {
  return [`Your previous answer could not be used: ${problem}.`, 'Answer again, following the format exactly.', '', renderFormatInstructions(format)].join('\n');
}

function invalidFormat(problem: string, afterRepair: boolean): UpstreamError {
  return new UpstreamError(`Kimi's answer is not the requested JSON${afterRepair ? ' even after one repair round' : ''}: ${problem.slice(0, 400)}.`, { code: 'response_format_invalid' });
}
