/**
 * @module chat/tools/tool-call-stream
 * Tool-calling emulation over the normalised chat events: parses the answer with the plan's grammar as it
 * streams, releases plain text at once, validates each call (known tool, allowed by tool_choice, arguments
 * matching the schema) and emits it as tool-call events. A broken, invalid or missing call gets at most one
 * repair round on the same upstream chat; after that the answer fails with 502 `tool_call_invalid`.
 * Never emits a call with broken JSON, and never lets the grammar's raw text into the content.
 */
import { randomBytes } from 'node:crypto';
import { UpstreamError } from '../../errors.ts';
import type { ChatEvent, FinishReason } from '../../upstream/dialect.ts';
import type { ChatOutputEvent, RepairRound, ToolCallEvent } from './tool-events.ts';
import type { GrammarToken, ToolCallParser } from './tool-grammar.ts';
import type { ToolPlan } from './tool-plan.ts';

export interface EmulateToolCallsOptions {
  plan: ToolPlan;
  /** Re-asks the model on the same chat; without it, the first problem is final. */
  repair?: RepairRound;
  /** Call ids in the client API's style (`call_…`, `toolu_…`). */
  createCallId?: () => string;
  /** Told once per repair round (for logs and the measured repair rate). */
  onRepair?: (problems: readonly string[]) => void;
}

export const ARGUMENT_DELTA_CHARS = 512;

interface Round {
  parser: ToolCallParser;
  isRepair: boolean;
  problems: string[];
  /** With tool_choice required/named: text held until a call shows that the answer is usable. */
  heldText: string[];
  hasEnded: boolean;
}

export async function* emulateToolCalls(events: AsyncIterable<ChatEvent>, options: EmulateToolCallsOptions): AsyncGenerator<ChatOutputEvent> {
  const { plan } = options;
  const { choice, parallelToolCalls } = plan.prompt;
  const mustCall = choice.kind === 'required' || choice.kind === 'function';
  const createCallId = options.createCallId ?? (() => `call_${randomId()}`);
  const heldMeta: ChatOutputEvent[] = [];
  const emittedCalls = new Set<string>();
  let callCount = 0;
  let conversationId: string | undefined;
  let finishReason: FinishReason | undefined;
  let usage: { promptTokens: number; completionTokens: number; isEstimate: boolean } | undefined;
  const rawAnswer: string[] = [];

  function newRound(isRepair: boolean): Round {
    return { parser: plan.grammar.createParser(), isRepair, problems: [], heldText: [], hasEnded: false };
  }

  function onEvent(event: ChatEvent, round: Round): ChatOutputEvent[] {
    switch (event.type) {
      case 'conversation-start':
        conversationId ??= event.conversationId;
        if (!round.isRepair) heldMeta.push(event);
        return [];
      case 'message-start':
        heldMeta.push(event);
        return [];
      case 'search-source':
      case 'notice':
        if (!round.isRepair) heldMeta.push(event);
        return [];
      case 'reasoning-delta':
        return round.isRepair ? [] : [event];
      case 'usage':
        usage = usage
          ? { promptTokens: usage.promptTokens + event.promptTokens, completionTokens: usage.completionTokens + event.completionTokens, isEstimate: usage.isEstimate || event.isEstimate }
          : { promptTokens: event.promptTokens, completionTokens: event.completionTokens, isEstimate: event.isEstimate };
        return [];
      case 'text-delta':
        if (!round.isRepair) rawAnswer.push(event.text);
        return onTokens(round.parser.push(event.text), round);
      case 'finish':
        if (!round.isRepair) finishReason = event.reason;
        round.hasEnded = true;
        return onTokens(round.parser.end(), round);
    }
  }

  function onTokens(tokens: GrammarToken[], round: Round): ChatOutputEvent[] {
    const produced: ChatOutputEvent[] = [];
    for (const token of tokens) {
      if (token.type === 'text') {
        if (round.isRepair) continue;
        if (mustCall && callCount === 0) round.heldText.push(token.text);
        else produced.push({ type: 'text-delta', text: token.text });
      } else if (token.type === 'malformed-call') {
        round.problems.push(`the call${token.name ? ` to "${token.name}"` : ''} is malformed: ${token.reason}`);
      } else {
        const problem = checkCall(token.name, token.arguments);
        if (problem) {
          round.problems.push(problem);
          continue;
        }
        const argumentsText = JSON.stringify(token.arguments);
        const signature = `${token.name}\u0000${argumentsText}`;
        // A repair may repeat calls that were already accepted; and without parallel calls one is enough.
        if ((round.isRepair && emittedCalls.has(signature)) || (!parallelToolCalls && callCount > 0)) continue;
        emittedCalls.add(signature);
        if (round.heldText.length > 0) produced.push({ type: 'text-delta', text: round.heldText.splice(0).join('') });
        produced.push(...callEvents(callCount, createCallId(), token.name, argumentsText));
        callCount += 1;
      }
    }
    return produced;
  }

  function checkCall(name: string, argumentsValue: Record<string, unknown>): string | undefined {
    const validator = plan.validators.get(name);
    if (!validator) return `the call names the tool "${name}", which does not exist (the tools are: ${[...plan.validators.keys()].join(', ')})`;
    if (choice.kind === 'function' && name !== choice.name) return `the call names "${name}", but the tool "${choice.name}" must be called`;
    const check = validator.check(argumentsValue);
    return check.isValid ? undefined : `the arguments of "${name}" do not match its schema: ${check.problem}`;
  }

  function withMeta(produced: ChatOutputEvent[]): ChatOutputEvent[] {
    return produced.length > 0 && heldMeta.length > 0 ? [...heldMeta.splice(0), ...produced] : produced;
  }

  async function* runRound(source: AsyncIterable<ChatEvent>, round: Round): AsyncGenerator<ChatOutputEvent> {
    for await (const event of source) yield* withMeta(onEvent(event, round));
    if (!round.hasEnded) yield* withMeta(onTokens(round.parser.end(), round));
  }

  const first = newRound(false);
  yield* runRound(events, first);
  if (finishReason === undefined) {
    // The upstream ended without finishing; pass that on unchanged (consumers report it as an error).
    yield* heldMeta.splice(0);
    return;
  }
  const problems = [...first.problems];
  if (problems.length === 0 && mustCall && callCount === 0) problems.push(missingCallProblem(choice));
  if (problems.length > 0) {
    if (!options.repair || !conversationId) throw invalidCall(problems, false);
    options.onRepair?.(problems);
    const instruction = plan.grammar.renderRepair(problems, plan.prompt);
    const repair = newRound(true);
    const callsBefore = callCount;
    yield* runRound(options.repair({ conversationId, instruction, previousAnswer: rawAnswer.join('') }), repair);
    if (repair.problems.length > 0) throw invalidCall(repair.problems, true);
    if (callCount === callsBefore) throw invalidCall([...problems, 'the repaired answer contains no usable tool call'], true);
  }
  yield* heldMeta.splice(0);
  if (usage) yield { type: 'usage', ...usage };
  yield { type: 'finish', reason: callCount > 0 ? 'tool-calls' : finishReason };
}

function callEvents(index: number, id: string, name: string, argumentsText: string): ToolCallEvent[] {
  const events: ToolCallEvent[] = [{ type: 'tool-call-start', index, id, name }];
  for (let offset = 0; offset < argumentsText.length; ) {
    let end = Math.min(offset + ARGUMENT_DELTA_CHARS, argumentsText.length);
    // Never between the halves of a surrogate pair: a client that decodes each delta alone (Python, Go) would get
    // two broken halves instead of the character.
    if (end < argumentsText.length && isHighSurrogate(argumentsText.charCodeAt(end - 1))) end += 1;
    events.push({ type: 'tool-call-delta', index, argumentsDelta: argumentsText.slice(offset, end) });
    offset = end;
  }
  events.push({ type: 'tool-call-end', index, arguments: argumentsText });
  return events;
}

function missingCallProblem(choice: ToolPlan['prompt']['choice']): string {
  return choice.kind === 'function' ? `it called no tool, but the tool "${choice.name}" must be called` : 'it called no tool, but a tool call is required';
}

function invalidCall(problems: readonly string[], afterRepair: boolean): UpstreamError {
  const summary = problems.slice(0, 3).join('; ').slice(0, 600);
  return new UpstreamError(`Kimi's tool call could not be used${afterRepair ? ' even after one repair round' : ''}: ${summary}.`, { code: 'tool_call_invalid' });
}

/** 24 characters from [A-Za-z0-9], as OpenAI's call ids have. */
export function randomId(length = 24): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(length), (byte) => alphabet[byte % alphabet.length]).join('');
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
