/**
 * @module chat/tools/stream-chat-with-tools
 * The one entry point the three client APIs use: runs the chat use case with a tool plan. It rewrites
 * earlier calls in the history into the grammar (so the model sees its own form), adds the instructions,
 * and stacks the tool emulation, the stop-sequence cut and the response-format stage on the chat events. Repair rounds continue
 * the same upstream chat (protocol spec §3.8) with the same credentials, hence the same account.
 */
import { NotFoundError } from '../../errors.ts';
import { eachEvent, inBatchesOfOne, type ChatEvent } from '../../upstream/dialect.ts';
import { buildPrompt, textOf } from '../build-prompt.ts';
import type { ChatService, ChatStream } from '../chat-service.ts';
import type { ChatMessage, ChatRequest } from '../chat-request.ts';
import { estimateTokens } from '../estimate-tokens.ts';
import { cutAtStopSequences } from '../stop-sequences.ts';
import { enforceResponseFormat } from './structured-output.ts';
import { emulateToolCalls } from './tool-call-stream.ts';
import type { ChatOutputEvent, RepairRound } from './tool-events.ts';
import type { ToolGrammar } from './tool-grammar.ts';
import type { ToolPlan } from './tool-plan.ts';

export interface ToolStream extends Omit<ChatStream, 'batches'> {
  /** Without tools or a response format, the chat's own batches; otherwise one event per batch. */
  batches: AsyncIterable<readonly ChatOutputEvent[]>;
}

export interface ToolStreamHooks {
  createCallId?: () => string;
  /** Called with the problems each time a repair round starts. */
  onRepair?: (problems: readonly string[]) => void;
}

export function streamChatWithTools(chat: ChatService, request: ChatRequest, plan: ToolPlan, signal: AbortSignal, hooks: ToolStreamHooks = {}): ToolStream {
  const instructions = [request.instructions, plan.instructions].filter(Boolean).join('\n\n') || undefined;
  const messages = plan.hasTools ? rewriteToolHistory(request.messages, plan.grammar) : request.messages;
  const stream = chat.streamChat({ ...request, messages, instructions }, signal);
  // The spool travels too: a replayed exchange uploads the history's attachments again.
  const base = { model: request.model, useSearch: request.useSearch, bearerTokens: request.bearerTokens, spool: request.spool, estimateUsage: request.estimateUsage };
  const repair: RepairRound = ({ conversationId, instruction, previousAnswer }) =>
    continueOrReplay(
      () => eachEvent(chat.streamChat({ ...base, conversationId, messages: [{ role: 'user', content: instruction }] }, signal).batches),
      () =>
        eachEvent(
          chat.streamChat(
            { ...base, conversationId: request.conversationId, instructions: request.instructions, messages: [...messages, { role: 'assistant', content: previousAnswer }, { role: 'user', content: instruction }] },
            signal,
          ).batches,
        ),
    );
  const streamInfo = { model: stream.model, modelIsFallback: stream.modelIsFallback, meta: stream.meta };
  // Stop sequences cut the plain answer: after the tool stage (calls and their grammar are never scanned) and
  // before the format stage (which then checks the cut answer, as a client would get it).
  const cut = (batches: AsyncIterable<readonly ChatOutputEvent[]>) =>
    plan.stopSequences.length === 0
      ? batches
      : cutAtStopSequences(batches, {
          sequences: plan.stopSequences,
          estimateUsage: request.estimateUsage === false ? undefined : (answerText) => estimateCutUsage(messages, instructions, Boolean(request.conversationId), answerText),
        });
  if (!plan.hasTools && plan.responseFormat.kind === 'text') return { ...streamInfo, batches: cut(stream.batches) };
  // The tool and format stages work event by event.
  const answer = plan.hasTools
    ? cut(inBatchesOfOne(emulateToolCalls(eachEvent(stream.batches), { plan, repair, createCallId: hooks.createCallId, onRepair: hooks.onRepair })))
    : cut(stream.batches);
  if (plan.responseFormat.kind === 'text') return { ...streamInfo, batches: answer };
  // The format's repair answer is cut like the first one: the check runs on what the client would get.
  const formatRepair = (round: Parameters<RepairRound>[0]) => eachEvent(cut(inBatchesOfOne(repair(round))));
  const formatted = enforceResponseFormat(eachEvent(answer), { format: plan.responseFormat, validator: plan.formatValidator, repair: formatRepair, onRepair: hooks.onRepair });
  return { ...streamInfo, batches: inBatchesOfOne(formatted) };
}

/** A cut answer never reaches the chat service's usage count, so the stop stage asks for this estimate. */
async function estimateCutUsage(messages: ChatMessage[], instructions: string | undefined, isContinuation: boolean, answerText: string) {
  let promptText = '';
  try {
    promptText = buildPrompt(messages, { isContinuation, instructions }).text;
  } catch {
    // The chat service already built this prompt, so this does not happen; an estimate is not worth a failure.
  }
  const [promptTokens, completionTokens] = await Promise.all([estimateTokens(promptText), estimateTokens(answerText)]);
  return { type: 'usage' as const, promptTokens, completionTokens, isEstimate: true };
}

/**
 * The repair continues the answer's chat; when that chat is already gone (retention 0 deleted it when the
 * answer ended), the exchange is replayed in a new chat instead. Only a not-found before any event falls back.
 */
async function* continueOrReplay(continued: () => AsyncIterable<ChatEvent>, replayed: () => AsyncIterable<ChatEvent>): AsyncGenerator<ChatEvent> {
  const iterator = continued()[Symbol.asyncIterator]();
  let first: IteratorResult<ChatEvent>;
  try {
    first = await iterator.next();
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    yield* replayed();
    return;
  }
  if (first.done) return;
  yield first.value;
  yield* { [Symbol.asyncIterator]: () => iterator };
}

/** Assistant `tool_calls` become grammar blocks in the assistant's text, the form the model is asked to write. */
export function rewriteToolHistory(messages: readonly ChatMessage[], grammar: ToolGrammar): ChatMessage[] {
  return messages.map((message) => {
    if (message.role !== 'assistant' || !message.tool_calls?.length) return message;
    const calls = message.tool_calls.map((call) => grammar.formatCall({ id: call.id, name: call.function.name, arguments: call.function.arguments || '{}' }));
    const text = [textOf(message.content), ...calls].filter(Boolean).join('\n');
    return { ...message, content: text, tool_calls: undefined };
  });
}
