/**
 * @module http/server-options
 * How the gateway's node:http server treats connections before a route sees them: how long a client may take to
 * send its request, how large its headers may be, and the envelope it gets when Node refuses the request itself
 * (malformed request line, headers too large, request too slow), instead of Node's bare status line.
 */
import { STATUS_CODES, type ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors.ts';

/**
 * Headers up to 64 KiB: `Authorization: Bearer T1,T2,…` with dozens of refresh tokens passes Node's default
 * 16 KiB. `requestTimeout` bounds how long the whole request (headers and body) may take to arrive, so a client
 * that stops sending mid-body does not hold a connection for ever; the answer, once the request has arrived,
 * is not limited by it.
 */
export function serverOptions(requestTimeoutMs: number): ServerOptions {
  return {
    keepAliveTimeout: 65_000,
    headersTimeout: Math.min(30_000, requestTimeoutMs),
    requestTimeout: requestTimeoutMs,
    // Node checks the two timeouts on this interval (default 30 s): a short timeout needs a shorter check.
    connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(requestTimeoutMs / 4))),
    maxHeaderSize: 64 * 1024,
  };
}

/** What each of Node's refusals means for the client, as one error envelope. */
function refusalOf(code: string | undefined): GatewayError {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new GatewayError({ status: 431, type: 'invalid_request_error', code: 'headers_too_large', message: 'The request headers are larger than 64 KiB.' });
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new GatewayError({ status: 408, type: 'invalid_request_error', code: 'request_timeout', message: 'The request did not arrive in full in time (REQUEST_TIMEOUT_MS).' });
  }
  return new GatewayError({ status: 400, type: 'invalid_request_error', code: 'invalid_request', message: 'The request is not valid HTTP/1.1.' });
}

/** The server's `clientError` listener: answers with an envelope when the socket can still take one, then closes it. */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A reset or a half-sent answer leaves nothing to say: the client is gone or already reading a response.
  const isAnswering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (error.code === 'ECONNRESET' || !socket.writable || isAnswering) {
    socket.destroy();
    return;
  }
  const refusal = refusalOf(error.code);
  const body = JSON.stringify(refusal.toEnvelope());
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}
