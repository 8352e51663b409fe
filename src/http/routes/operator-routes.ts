/**
 * @module http/routes/operator-routes
 * Operator surfaces (issues 5, 6, 10): GET /metrics, GET /v1/status, GET/POST /v1/accounts and the
 * status page's static files. JSON endpoints need the gateway key when API_KEYS is set; no token
 * ever leaves through them (accounts are shown by hash).
 */
import { z } from 'zod';
import type { AccountView } from '../../chat/chat-ports.ts';
import type { CredentialResolver } from '../credentials.ts';
import { sendJson, sendText, type HttpContext } from '../http-context.ts';
import { parseWith } from '../openai-schema.ts';
import { readJsonBody } from '../read-json-body.ts';
import { statusPageAsset, statusPageSecurityHeaders } from '../status-page/serve-static.ts';

export interface OperatorDeps {
  credentials: CredentialResolver;
  version: string;
  dialectMode: string;
  bodyLimitBytes: number;
  listAccounts(): Promise<AccountView[]>;
  /** Imports an account from pasted text (token, cookie, localStorage JSON, cURL); checks it live first. */
  addAccount(text: string, signal: AbortSignal): Promise<AccountView & { warnings: string[] }>;
  errorCounts(): Record<string, number>;
  unknownUpstream(): Promise<Record<string, number>>;
  renderMetrics(): Promise<{ contentType: string; body: string }>;
  startedAt: number;
}

export function metricsRoute(deps: OperatorDeps) {
  return async (context: HttpContext) => {
    const rendered = await deps.renderMetrics();
    sendText(context, 200, rendered.body, rendered.contentType);
  };
}

export function statusRoute(deps: OperatorDeps) {
  return async (context: HttpContext) => {
    deps.credentials.requireGatewayKey(context.request.headers);
    sendJson(context, 200, {
      version: deps.version,
      dialectMode: deps.dialectMode,
      accounts: await deps.listAccounts(),
      errors: deps.errorCounts(),
      unknownUpstream: await deps.unknownUpstream(),
      uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
      gatewayKeyRequired: deps.credentials.hasGatewayKeys,
    });
  };
}

export function listAccountsRoute(deps: OperatorDeps) {
  return async (context: HttpContext) => {
    deps.credentials.requireGatewayKey(context.request.headers);
    sendJson(context, 200, { object: 'list', data: await deps.listAccounts() });
  };
}

const pasted = z.string().min(1).max(200_000).optional();
const addAccountSchema = z.object({ input: pasted, text: pasted, token: pasted }).refine(
  (body) => body.input !== undefined || body.text !== undefined || body.token !== undefined,
  'send {"input": "<token, cookie, localStorage JSON or cURL command>"}',
);

export function addAccountRoute(deps: OperatorDeps) {
  return async (context: HttpContext) => {
    deps.credentials.requireGatewayKey(context.request.headers);
    const body = parseWith(addAccountSchema, await readJsonBody(context.request, Math.min(deps.bodyLimitBytes, 1_000_000)));
    const { warnings, ...account } = await deps.addAccount((body.input ?? body.text ?? body.token) as string, context.signal);
    sendJson(context, 201, { account, warnings });
  };
}

export function statusPageRoute() {
  return (context: HttpContext) => {
    const asset = statusPageAsset(context.url.pathname);
    if (!asset) return sendText(context, 404, 'not found');
    context.record.firstByteAt ??= Date.now();
    context.response.writeHead(200, { ...context.baseHeaders, ...statusPageSecurityHeaders, 'content-type': asset.contentType, 'content-length': String(asset.body.length) });
    context.response.end(asset.body);
  };
}
