/**
 * @module http/routes/anthropic-messages
 * POST /v1/messages and POST /v1/messages/count_tokens (the Anthropic Messages API) as a translator over the
 * one chat pipeline. Credentials come from `x-api-key` or Bearer (bearer-tokens.ts); every error, before or
 * after the first byte, is written in Anthropic's envelope, so these handlers answer errors themselves.
 */
import { randomBytes } from 'node:crypto';
import { buildPrompt } from '../../chat/build-prompt.ts';
import type { ChatService } from '../../chat/chat-service.ts';
import { estimateTokens } from '../../chat/estimate-tokens.ts';
import type { ChatOutputEvent } from '../../chat/tools/tool-events.ts';
import { streamChatWithTools } from '../../chat/tools/stream-chat-with-tools.ts';
import { parseStopSequences } from '../../chat/stop-sequences.ts';
import { checkToolResults, planTools } from '../../chat/tools/tool-plan.ts';
import { UpstreamError } from '../../errors.ts';
import { createAnthropicMapper, type AnthropicStreamEvent } from '../anthropic/anthropic-mapper.ts';
import { anthropicRequestSchema, translateAnthropicRequest } from '../anthropic/anthropic-request.ts';
import { renderAnthropicError, toAnthropic } from '../anthropic/anthropic-errors.ts';
import type { CredentialResolver } from '../credentials.ts';
import { answerHeaders, isClientGone, sendJson, type HttpContext } from '../http-context.ts';
import { parseWith } from '../openai-schema.ts';
import { readChatBody } from '../read-json-body.ts';
import { closingAtEnd, streamResponse } from '../stream-response.ts';

export interface AnthropicRouteDeps {
  chat: ChatService;
  credentials: CredentialResolver;
  bodyLimitBytes: number;
  /** Logs errors nobody anticipated (the app's own handler never sees them here). */
  log?: { error(record: object, message: string): void };
  onRepair?: (problems: readonly string[]) => void;
}

/** Anthropic documents no maximum; a bound keeps the held-back tail and the scan cheap. */
const maxStopSequences = 32;

export function anthropicMessagesRoute(deps: AnthropicRouteDeps) {
  return withAnthropicErrors(deps, async (context) => {
    const credentials = deps.credentials.resolve(context.request.headers);
    // Large base64 attachments are spooled to temporary files while the body is read (issue 4: memory).
    const { value, spool } = await readChatBody(context, deps.bodyLimitBytes);
    const body = parseWith(anthropicRequestSchema, value);
    context.record.model = body.model;
    const translated = translateAnthropicRequest(body);
    const plan = planTools({ ...translated.tools, stopSequences: parseStopSequences(body.stop_sequences, 'stop_sequences', maxStopSequences) });
    checkToolResults(translated.messages, (index) => translated.messageParams[index]);
    const stream = streamChatWithTools(
      deps.chat,
      { model: translated.model, messages: translated.messages, useSearch: translated.useSearch || undefined, bearerTokens: credentials.bearerTokens, spool },
      plan,
      context.signal,
      { createCallId: () => `toolu_${randomBytes(12).toString('hex')}`, onRepair: deps.onRepair },
    );
    const mapper = createAnthropicMapper({ model: body.model });
    const headers = answerHeaders(context, { model: body.model, isFallback: stream.modelIsFallback });
    try {
      if (body.stream) {
        await streamResponse(context, {
          batches: stream.batches,
          ...closingAtEnd((event: ChatOutputEvent) => encodeEvents(mapper.map(event))),
          encodeError: (rendered) => encodeEvents([{ ...toAnthropic(rendered).body }]),
          headers,
          accountId: () => stream.meta.accountId,
        });
        return;
      }
      for await (const batch of stream.batches) for (const event of batch) mapper.map(event);
      if (!mapper.isFinished) throw new UpstreamError('Kimi ended the answer without finishing it.', { isRetryable: true });
      sendJson(context, 200, mapper.message(), headers);
    } finally {
      context.record.account = stream.meta.accountId;
    }
  });
}

/** Counts the prompt Kimi would receive (history, system, tool instructions) with the o200k estimate. */
export function anthropicCountTokensRoute(deps: AnthropicRouteDeps) {
  return withAnthropicErrors(deps, async (context) => {
    deps.credentials.resolve(context.request.headers);
    // Spooled too, so a large image costs no memory here either; the files go when the response closes.
    const body = parseWith(anthropicRequestSchema, (await readChatBody(context, deps.bodyLimitBytes)).value);
    const translated = translateAnthropicRequest(body);
    const plan = planTools(translated.tools);
    const prompt = buildPrompt(translated.messages, { isContinuation: false, instructions: plan.instructions });
    sendJson(context, 200, { input_tokens: await estimateTokens(prompt.text) }, context.baseHeaders);
  });
}

function encodeEvents(events: readonly AnthropicStreamEvent[]): string {
  return events.map((event) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`).join('');
}

function withAnthropicErrors(deps: AnthropicRouteDeps, handler: (context: HttpContext) => Promise<void>) {
  return async (context: HttpContext): Promise<void> => {
    try {
      await handler(context);
    } catch (error) {
      if (isClientGone(context)) {
        context.record.outcome = 'client-closed';
        return;
      }
      const rendered = renderAnthropicError(error);
      context.record.errorCode = rendered.body.error.code;
      if (!rendered.isExpected) deps.log?.error({ err: error, requestId: context.requestId }, 'unexpected error');
      if (context.response.headersSent) {
        if (!context.response.writableEnded) context.response.end();
        return;
      }
      if (context.request.complete === false) context.request.resume();
      sendJson(context, rendered.status, rendered.body, rendered.headers);
    }
  };
}
