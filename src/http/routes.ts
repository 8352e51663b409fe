/**
 * @module http/routes
 * The route table: every public path in one place, so a newcomer sees the whole API at a glance.
 */
import type { ChatService } from '../chat/chat-service.ts';
import type { ModelCatalog } from '../chat/model-catalog.ts';
import type { CatalogModel } from '../upstream/dialect.ts';
import type { Route } from './app.ts';
import type { CredentialResolver } from './credentials.ts';
import { healthRoute, modelRoute, modelsRoute, pingRoute, tokenCheckRoute } from './routes/basic-routes.ts';
import { chatCompletionsRoute } from './routes/chat-completions.ts';
import { addAccountRoute, listAccountsRoute, metricsRoute, statusPageRoute, statusRoute, type OperatorDeps } from './routes/operator-routes.ts';

export interface RouteDeps {
  chat: ChatService;
  catalog: ModelCatalog;
  credentials: CredentialResolver;
  bodyLimitBytes: number;
  upstreamModels(bearerTokens?: readonly string[]): Promise<CatalogModel[]>;
  checkToken(token: string, signal: AbortSignal): Promise<boolean>;
  isShuttingDown(): boolean;
  operator: Omit<OperatorDeps, 'credentials' | 'bodyLimitBytes'>;
  /** Routes contributed by other API translators (Responses, Anthropic Messages). */
  extraRoutes?: Route[];
}

export function buildRoutes(deps: RouteDeps): Route[] {
  const operator: OperatorDeps = { ...deps.operator, credentials: deps.credentials, bodyLimitBytes: deps.bodyLimitBytes };
  const statusPage = statusPageRoute();
  return [
    { method: 'POST', path: '/v1/chat/completions', handler: chatCompletionsRoute({ chat: deps.chat, credentials: deps.credentials, bodyLimitBytes: deps.bodyLimitBytes }) },
    { method: 'GET', path: '/v1/models', handler: modelsRoute(deps.catalog, deps.upstreamModels, deps.credentials) },
    { method: 'GET', path: '/v1/models/*', handler: modelRoute(deps.catalog) },
    { method: 'POST', path: '/token/check', handler: tokenCheckRoute({ checkToken: deps.checkToken, bodyLimitBytes: deps.bodyLimitBytes, credentials: deps.credentials }) },
    { method: 'GET', path: '/ping', handler: pingRoute() },
    { method: 'GET', path: '/healthz', handler: healthRoute(deps.isShuttingDown) },
    { method: 'GET', path: '/metrics', handler: metricsRoute(operator) },
    { method: 'GET', path: '/v1/status', handler: statusRoute(operator) },
    { method: 'GET', path: '/v1/accounts', handler: listAccountsRoute(operator) },
    { method: 'POST', path: '/v1/accounts', handler: addAccountRoute(operator) },
    { method: 'GET', path: '/', handler: statusPage },
    { method: 'GET', path: '/index.html', handler: statusPage },
    { method: 'GET', path: '/status-page.js', handler: statusPage },
    { method: 'GET', path: '/status-page.css', handler: statusPage },
    ...(deps.extraRoutes ?? []),
  ];
}
