/**
 * @module upstream/legacy/legacy-test-server
 * Test support only: a tiny node:http server on 127.0.0.1:0 that records requests and lets each test script
 * the legacy host's answers, plus the shared UpstreamHttp and dialect factory the legacy tests use.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUpstreamHttp, type UpstreamHttp } from '../upstream-http.ts';
import type { ModelChoice, Session } from '../dialect.ts';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  bodyText: string;
  json: unknown;
}

export type RouteHandler = (request: IncomingMessage, response: ServerResponse, body: Buffer) => unknown;

export interface LoopbackServer {
  url: string;
  requests: RecordedRequest[];
  /** Route by `METHOD /path` (exact); unmatched requests get 599 so a test sees the surprise. */
  routes: Map<string, RouteHandler>;
  /** Handles a request before the body is read (streaming uploads); return true when handled. */
  rawHandler?: (request: IncomingMessage, response: ServerResponse) => boolean;
  close(): Promise<void>;
}

export async function startLoopbackServer(): Promise<LoopbackServer> {
  const requests: RecordedRequest[] = [];
  const routes = new Map<string, RouteHandler>();
  const server: Server = createServer(async (request, response) => {
    if (loopback.rawHandler?.(request, response)) return;
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const bodyText = body.toString('utf8');
    const path = (request.url ?? '/').split('?')[0];
    requests.push({ method: request.method ?? 'GET', path, headers: request.headers, bodyText, json: safeJson(bodyText) });
    const handler = routes.get(`${request.method} ${path}`);
    if (!handler) {
      response.writeHead(599).end('no route');
      return;
    }
    await handler(request, response, body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const loopback: LoopbackServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    routes,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return loopback;
}

export function sendJson(response: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(value));
}

export function sendSse(response: ServerResponse, text: string): void {
  response.writeHead(200, { 'content-type': 'text/event-stream' }).end(text);
}

export function readFixture(name: string): string {
  return readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8');
}

export function createTestHttp(overrides: { idleTimeoutMs?: number } = {}): UpstreamHttp {
  return createUpstreamHttp({
    connectTimeoutMs: 2_000,
    firstByteTimeoutMs: 5_000,
    idleTimeoutMs: overrides.idleTimeoutMs ?? 5_000,
    defaultRetryAfterMs: 45_000,
    userAgent: 'legacy-dialect-test',
  });
}

/** An unsigned JWT-shaped token with the given claims (signatures are not checked, src/jwt.ts). */
export function fakeJwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS512', typ: 'JWT' })}.${part(claims)}.c2lnbmF0dXJl`;
}

export const testSession: Session = {
  dialect: 'legacy',
  accessToken: 'access-token-for-tests',
  accessExpiresAt: undefined,
  identity: { userId: 'cuser00000000000000a', deviceId: '7000000000000000001', sessionId: '1700000000000000001' },
};

export function modelChoice(overrides: Partial<ModelChoice> = {}): ModelChoice {
  return { publicId: 'kimi', thinking: false, search: false, silentSearch: false, ...overrides };
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
