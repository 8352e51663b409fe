/**
 * @module http/routes/chat-completions
 * POST /v1/chat/completions: validate, run the chat use case, then stream SSE chunks or answer with
 * the folded completion. One pipeline: the non-streaming answer folds the same events.
 */
import type { ChatService } from '../../chat/chat-service.ts';
import { foldChatOutputBatches } from '../../chat/tools/fold-tool-events.ts';
import { streamChatWithTools } from '../../chat/tools/stream-chat-with-tools.ts';
import type { CredentialResolver } from '../credentials.ts';
import { answerHeaders, sendJson, type HttpContext } from '../http-context.ts';
import { chatCompletionRequestSchema, parseWith, toChatMessages } from '../openai-schema.ts';
import { readChatBody } from '../read-json-body.ts';
import { streamResponse } from '../stream-response.ts';
import { createSseChunkEncoder, toChatCompletion } from '../to-openai.ts';
import { chatToolFields, planChatTools, usesLegacyFunctions } from './chat-completions-tools.ts';

const requestSchema = chatCompletionRequestSchema.extend(chatToolFields);

export interface ChatCompletionsDeps {
  chat: ChatService;
  credentials: CredentialResolver;
  bodyLimitBytes: number;
}

export function chatCompletionsRoute(deps: ChatCompletionsDeps) {
  return async (context: HttpContext): Promise<void> => {
    const credentials = deps.credentials.resolve(context.request.headers);
    // Large base64 attachments are spooled to temporary files while the body is read (issue 4: memory).
    const { value, spool } = await readChatBody(context, deps.bodyLimitBytes);
    const body = parseWith(requestSchema, value);
    const model = body.model?.trim() || 'kimi';
    context.record.model = model;
    const messages = toChatMessages(body.messages);
    const toolPlan = planChatTools(body, messages, Boolean(body.conversation_id));
    // Older LangChain and Dify clients send `functions` and read the answer's `function_call`.
    const legacyFunctionCall = usesLegacyFunctions(body);
    const stream = streamChatWithTools(
      deps.chat,
      {
        model,
        messages,
        conversationId: body.conversation_id ?? undefined,
        useSearch: body.use_search ?? undefined,
        bearerTokens: credentials.bearerTokens,
        spool,
        estimateUsage: !body.stream || body.stream_options?.include_usage === true,
      },
      toolPlan,
      context.signal,
    );
    const headers = answerHeaders(context, { model: model, isFallback: stream.modelIsFallback });
    try {
      if (body.stream) {
        const encoder = createSseChunkEncoder({ model, includeUsage: body.stream_options?.include_usage === true, legacyFunctionCall });
        await streamResponse(context, {
          batches: stream.batches,
          encode: encoder.encode,
          encodeError: (rendered) => `data: ${JSON.stringify(rendered.body)}\n\n`,
          trailer: 'data: [DONE]\n\n',
          headers,
          accountId: () => stream.meta.accountId,
        });
        return;
      }
      const result = await foldChatOutputBatches(stream.batches);
      sendJson(context, 200, toChatCompletion(result, model, undefined, { legacyFunctionCall }), headers);
    } finally {
      context.record.account = stream.meta.accountId;
    }
  };
}
