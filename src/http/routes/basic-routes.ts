/**
 * @module http/routes/basic-routes
 * Small routes: GET /ping, GET /healthz, GET /v1/models, POST /token/check.
 */
import { z } from 'zod';
import type { ModelCatalog } from '../../chat/model-catalog.ts';
import { NotFoundError } from '../../errors.ts';
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

/** A fixed `created` for every model: Kimi publishes no dates, and a fixed value keeps the list stable for caches. */
const modelCreated = 1_700_000_000;

export function modelsRoute(catalog: ModelCatalog, upstreamModels: (bearerTokens?: readonly string[]) => Promise<CatalogModel[]>, credentials: CredentialResolver) {
  return async (context: HttpContext) => {
    // Listing needs no credentials; when the caller sent Kimi tokens, they may fetch Kimi's own catalogue.
    let bearerTokens: string[] | undefined;
    try {
      bearerTokens = credentials.resolve(context.request.headers).bearerTokens;
    } catch {
      bearerTokens = undefined;
    }
    const ids = catalog.list(await upstreamModels(bearerTokens).catch(() => []));
    sendJson(context, 200, { object: 'list', data: ids.map((id) => ({ id, object: 'model', created: modelCreated, owned_by: 'kimi-free-api' })) });
  };
}

/**
 * GET /v1/models/{id} (the openai SDK's `models.retrieve`): a model this gateway knows by that name, or 404
 * `model_not_found`. Chat requests still answer an unknown name with the default model (x-kimi-model-fallback).
 */
export function modelRoute(catalog: ModelCatalog) {
  return (context: HttpContext) => {
    const id = decodedSegment(context.path.slice('/v1/models/'.length));
    if (catalog.resolve(id).isFallback) {
      throw new NotFoundError(`The model "${id.slice(0, 80)}" is not known here; GET /v1/models lists the known ones (chat requests with an unknown name are answered by the default model).`, { code: 'model_not_found', param: 'model' });
    }
    sendJson(context, 200, { id, object: 'model', created: modelCreated, owned_by: 'kimi-free-api' });
  };
}

/** A path segment as the client meant it; a malformed %-escape is taken literally rather than thrown. */
function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const tokenCheckSchema = z.object({ token: z.string().min(1, 'token must be a non-empty string') });

export function tokenCheckRoute(deps: { checkToken(token: string, signal: AbortSignal): Promise<boolean>; bodyLimitBytes: number; credentials: CredentialResolver }) {
  return async (context: HttpContext) => {
    // It calls Kimi with the token it is given: with API_KEYS set, only key holders may make the gateway do that.
    deps.credentials.requireGatewayKey(context.request.headers);
    const body = parseWith(tokenCheckSchema, await readJsonBody(context.request, deps.bodyLimitBytes));
    sendJson(context, 200, { live: await deps.checkToken(body.token.trim(), context.signal) });
  };
}
