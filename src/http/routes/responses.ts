/**
 * @module http/routes/responses
 * POST /v1/responses (the OpenAI Responses API) as a translator over the one chat pipeline: input items to
 * chat messages, the tool layer for function tools and text.format, and the output events to the
 * Responses stream or response object. `previous_response_id` continues the upstream chat (the response
 * id is `resp_<chat id>`, so the account affinity of conversation_id applies); `store: false` answers get an
 * id that cannot be continued, and their chat is deleted as the retention setting says.
 */
import { randomBytes } from 'node:crypto';
import type { ChatService } from '../../chat/chat-service.ts';
import { NotFoundError, UpstreamError } from '../../errors.ts';
import type { ChatOutputEvent } from '../../chat/tools/tool-events.ts';
import { streamChatWithTools } from '../../chat/tools/stream-chat-with-tools.ts';
import { checkToolResults, planTools } from '../../chat/tools/tool-plan.ts';
import type { CredentialResolver } from '../credentials.ts';
import { answerHeaders, sendJson, type HttpContext } from '../http-context.ts';
import { parseWith } from '../openai-schema.ts';
import { readChatBody } from '../read-json-body.ts';
import { createResponsesMapper, type StreamEvent } from '../responses/responses-mapper.ts';
import { responsesRequestSchema, translateResponsesRequest, type ResponsesRequest } from '../responses/responses-request.ts';
import { closingAtEnd, streamResponse } from '../stream-response.ts';

export interface ResponsesRouteDeps {
  chat: ChatService;
  credentials: CredentialResolver;
  bodyLimitBytes: number;
  /** Told when a tool or format repair round starts (logs, metrics). */
  onRepair?: (problems: readonly string[]) => void;
}

export function responsesRoute(deps: ResponsesRouteDeps) {
  return async (context: HttpContext): Promise<void> => {
    const credentials = deps.credentials.resolve(context.request.headers);
    // Large base64 attachments are spooled to temporary files while the body is read (issue 4: memory).
    const { value, spool } = await readChatBody(context, deps.bodyLimitBytes);
    const body = parseWith(responsesRequestSchema, value);
    const model = body.model?.trim() || 'kimi';
    context.record.model = model;
    const translated = translateResponsesRequest(body);
    const plan = planTools(translated.tools);
    if (!translated.conversationId) checkToolResults(translated.messages, (index) => `${translated.messageParams[index]}.call_id`);
    const stream = streamChatWithTools(
      deps.chat,
      { model, messages: translated.messages, conversationId: translated.conversationId, useSearch: translated.useSearch || undefined, bearerTokens: credentials.bearerTokens, spool },
      plan,
      context.signal,
      { createCallId: () => `call_${randomBytes(12).toString('hex')}`, onRepair: deps.onRepair },
    );
    const mapper = createResponsesMapper({ echo: echoFields(body, model), isStored: body.store !== false });
    const headers = answerHeaders(context, { model: model, isFallback: stream.modelIsFallback });
    try {
      if (body.stream) {
        await streamResponse(context, {
          batches: stream.batches,
          ...closingAtEnd((event: ChatOutputEvent) => encodeEvents(mapper.map(event))),
          encodeError: (rendered) => encodeEvents(mapper.fail(rendered)),
          headers,
          accountId: () => stream.meta.accountId,
        });
        return;
      }
      for await (const batch of stream.batches) for (const event of batch) mapper.map(event);
      const response = mapper.response();
      if (response.status === 'in_progress') throw new UpstreamError('Kimi ended the answer without finishing it.', { isRetryable: true });
      sendJson(context, 200, response, headers);
    } catch (error) {
      throw inResponsesTerms(error, body);
    } finally {
      context.record.account = stream.meta.accountId;
    }
  };
}

/** The chat a response id names is gone (its retention ended): say so about the parameter this API was sent. */
function inResponsesTerms(error: unknown, body: ResponsesRequest): unknown {
  if (!(error instanceof NotFoundError) || error.code !== 'conversation_not_found') return error;
  const param = body.previous_response_id ? 'previous_response_id' : 'conversation';
  return new NotFoundError(`The response named in ${param} no longer exists upstream (its chat was deleted after CHAT_RETENTION_SECONDS); send the history instead.`, { code: 'response_not_found', param, cause: error });
}

function encodeEvents(events: StreamEvent[]): string {
  return events.map((event) => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`).join('');
}

/** The request fields a response object repeats (the SDKs read several of them back). */
function echoFields(body: ResponsesRequest, model: string): Record<string, unknown> {
  return {
    background: false,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: body.metadata ?? {},
    model,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    store: body.store !== false,
    temperature: body.temperature ?? 1,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? 1,
    truncation: 'disabled',
    user: body.user ?? null,
  };
}
