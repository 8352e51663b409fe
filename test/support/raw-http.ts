/**
 * @module test/support/raw-http
 * An HTTP/1.0 request over a bare TCP socket, for tests that must control reading byte by byte (a slow
 * client) or send bytes no HTTP client would (invalid UTF-8, a body that lies about its length). HTTP/1.0
 * makes the server answer without chunked encoding and close at the end, so the reply is easy to split.
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawExchange {
  socket: Socket;
  /** Resolves when the server closes the connection. */
  response: Promise<RawResponse>;
}

export function rawRequest(baseUrl: string, options: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; paused?: boolean }): RawExchange {
  const url = new URL(baseUrl);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  const headers = { host: url.host, 'content-length': String(body.length), ...options.headers };
  const head = `${options.method ?? 'POST'} ${options.path} HTTP/1.0\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  if (options.paused) socket.pause();
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const response = new Promise<RawResponse>((resolve, reject) => {
    // A server may answer early (413) and close while the body is still being sent: EPIPE or a reset then
    // follows a complete response, which is what the test wants to read.
    socket.once('error', (error) => (chunks.length > 0 ? resolve(splitResponse(Buffer.concat(chunks))) : reject(error)));
    socket.once('close', () => resolve(splitResponse(Buffer.concat(chunks))));
  });
  return { socket, response };
}

function splitResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end === -1 ? raw.length : end).toString('latin1').split('\r\n');
  const status = Number(head[0]?.split(' ')[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, body: end === -1 ? Buffer.alloc(0) : raw.subarray(end + 4) };
}
