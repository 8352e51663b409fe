/**
 * @module http/routes/basic-routes
 * Small routes: GET /ping, GET /healthz, GET /v1/models, POST /token/check.
 */
import { z } from 'zod';
import type { ModelCatalog } from '../../chat/model-catalog.ts';
import type { CatalogModel } from '../../upstream/dialect.ts';
import type { CredentialResolver } from '../credentials.ts';
import { sendJson, sendText, type HttpContext } from '../http-context.ts';
import { parseWith } from '../openai-schema.ts';
import { readJsonBody } from '../read-json-body.ts';

export function pingRoute() {
  return (context: HttpContext) => sendText(context, 200, 'pong');
}

export function healthRoute(isShuttingDown: () => boolean) {
  return (context: HttpContext) =>
    isShuttingDown() ? sendJson(context, 503, { status: 'shutting_down' }) : sendJson(context, 200, { status: 'ok' });
}

export function modelsRoute(catalog: ModelCatalog, upstreamModels: (bearerTokens?: readonly string[]) => Promise<CatalogModel[]>, credentials: CredentialResolver) {
  return async (context: HttpContext) => {
    const created = 1_700_000_000;
    // Listing needs no credentials; when the caller sent Kimi tokens, they may fetch Kimi's own catalogue.
    let bearerTokens: string[] | undefined;
    try {
      bearerTokens = credentials.resolve(context.request.headers).bearerTokens;
    } catch {
      bearerTokens = undefined;
    }
    const ids = catalog.list(await upstreamModels(bearerTokens).catch(() => []));
    sendJson(context, 200, { object: 'list', data: ids.map((id) => ({ id, object: 'model', created, owned_by: 'kimi-free-api' })) });
  };
}

const tokenCheckSchema = z.object({ token: z.string().min(1, 'token must be a non-empty string') });

export function tokenCheckRoute(deps: { checkToken(token: string, signal: AbortSignal): Promise<boolean>; bodyLimitBytes: number }) {
  return async (context: HttpContext) => {
    const body = parseWith(tokenCheckSchema, await readJsonBody(context.request, deps.bodyLimitBytes));
    sendJson(context, 200, { live: await deps.checkToken(body.token.trim(), context.signal) });
  };
}
