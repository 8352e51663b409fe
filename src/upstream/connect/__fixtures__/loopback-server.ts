/**
 * @module upstream/connect/__fixtures__/loopback-server
 * A tiny real HTTP server on 127.0.0.1:0 for the connect dialect's tests: records each request
 * (method, path, headers, exact body bytes) and answers with a per-test handler.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUpstreamHttp, type UpstreamHttp } from '../../upstream-http.ts';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export type LoopbackHandler = (request: RecordedRequest, response: ServerResponse) => void | Promise<void>;

export interface LoopbackServer {
  url: string;
  requests: RecordedRequest[];
  /** Replaces the handler (tests reuse one server across cases). */
  handle(handler: LoopbackHandler): void;
  close(): Promise<void>;
}

export async function startLoopbackServer(handler: LoopbackHandler = notFound): Promise<LoopbackServer> {
  let current = handler;
  const requests: RecordedRequest[] = [];
  const server = createServer(async (incoming, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const recorded = {
      method: incoming.method ?? 'GET',
      path: incoming.url ?? '/',
      headers: incoming.headers,
      body: Buffer.concat(chunks),
    };
    requests.push(recorded);
    try {
      await current(recorded, response);
    } catch (error) {
      response.destroy(error as Error);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    handle: (next) => {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The shared undici client with test-sized timeouts. */
export function testUpstreamHttp(): UpstreamHttp {
  return createUpstreamHttp({
    connectTimeoutMs: 2_000,
    firstByteTimeoutMs: 5_000,
    idleTimeoutMs: 5_000,
    defaultRetryAfterMs: 60_000,
    userAgent: 'kimi-free-api-test',
  });
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

function notFound(_request: RecordedRequest, response: ServerResponse): void {
  sendJson(response, 404, { code: 'not_found', message: 'no handler' });
}
