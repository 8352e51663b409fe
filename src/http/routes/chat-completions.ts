/**
 * @module http/routes/chat-completions
 * POST /v1/chat/completions: validate, run the chat use case, then stream SSE chunks or answer with
 * the folded completion. One pipeline: the non-streaming answer folds the same events.
 */
import type { ChatService } from '../../chat/chat-service.ts';
import { foldChatOutputEvents } from '../../chat/tools/fold-tool-events.ts';
import { streamChatWithTools } from '../../chat/tools/stream-chat-with-tools.ts';
import type { CredentialResolver } from '../credentials.ts';
import { sendJson, type HttpContext } from '../http-context.ts';
import { chatCompletionRequestSchema, parseWith, toChatMessages } from '../openai-schema.ts';
import { readJsonBody } from '../read-json-body.ts';
import { writeSse } from '../sse-writer.ts';
import { createChunkMapper, toChatCompletion } from '../to-openai.ts';
import { chatToolFields, planChatTools } from './chat-completions-tools.ts';

const requestSchema = chatCompletionRequestSchema.extend(chatToolFields);

export interface ChatCompletionsDeps {
  chat: ChatService;
  credentials: CredentialResolver;
  bodyLimitBytes: number;
}

export function chatCompletionsRoute(deps: ChatCompletionsDeps) {
  return async (context: HttpContext): Promise<void> => {
    const credentials = deps.credentials.resolve(context.request.headers);
    const body = parseWith(requestSchema, await readJsonBody(context.request, deps.bodyLimitBytes));
    const model = body.model?.trim() || 'kimi';
    context.record.model = model;
    const messages = toChatMessages(body.messages);
    const toolPlan = planChatTools(body, messages, Boolean(body.conversation_id));
    const stream = streamChatWithTools(
      deps.chat,
      {
        model,
        messages,
        conversationId: body.conversation_id ?? undefined,
        useSearch: body.use_search ?? undefined,
        bearerTokens: credentials.bearerTokens,
      },
      toolPlan,
      context.signal,
    );
    const headers: Record<string, string> = { ...context.baseHeaders };
    if (stream.modelIsFallback) headers['x-kimi-model-fallback'] = `unknown model "${model.slice(0, 80)}"; answered with the default model`;
    try {
      if (body.stream) {
        const mapper = createChunkMapper({ model, includeUsage: body.stream_options?.include_usage === true });
        const outcome = await writeSse({
          response: context.response,
          events: stream.events,
          encode: (event) => {
            const chunks = mapper.map(event);
            return chunks.length ? chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join('') : '';
          },
          encodeError: (rendered) => `data: ${JSON.stringify(rendered.body)}\n\n`,
          trailer: 'data: [DONE]\n\n',
          signal: context.signal,
          headers,
        });
        context.record.firstByteAt ??= Date.now();
        context.record.outcome = outcome.kind;
        if (outcome.kind === 'failed') context.record.errorCode = (outcome.error as { code?: string }).code ?? 'internal_error';
        return;
      }
      const result = await foldChatOutputEvents(stream.events);
      sendJson(context, 200, toChatCompletion(result, model), headers);
    } finally {
      context.record.account = stream.meta.accountId;
    }
  };
}
