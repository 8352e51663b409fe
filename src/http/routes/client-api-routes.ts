/**
 * @module http/routes/client-api-routes
 * The routes of the other client APIs (Responses, Anthropic Messages) in one list, for `extraRoutes` in
 * routes.ts / main.ts. Each is a translator over the same chat pipeline.
 */
import type { ChatService } from '../../chat/chat-service.ts';
import type { Route } from '../app.ts';
import type { CredentialResolver } from '../credentials.ts';
import { anthropicCountTokensRoute, anthropicMessagesRoute } from './anthropic-messages.ts';
import { responsesRoute } from './responses.ts';

export interface ClientApiDeps {
  chat: ChatService;
  credentials: CredentialResolver;
  bodyLimitBytes: number;
  log?: { error(record: object, message: string): void };
  /** Told when a tool-call or response-format repair round starts (log it; count it in metrics). */
  onRepair?: (problems: readonly string[]) => void;
}

export function clientApiRoutes(deps: ClientApiDeps): Route[] {
  return [
    { method: 'POST', path: '/v1/responses', handler: responsesRoute(deps) },
    { method: 'POST', path: '/v1/messages', handler: anthropicMessagesRoute(deps) },
    { method: 'POST', path: '/v1/messages/count_tokens', handler: anthropicCountTokensRoute(deps) },
  ];
}
