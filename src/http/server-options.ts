/**
 * @module http/server-options
 * How the gateway's node:http server treats connections before a route sees them: how long a client may take to
 * send its request, how large its headers may be, and the envelope it gets when Node refuses the request itself
 * (malformed request line, headers too large, request too slow), instead of Node's bare status line, in the
 * envelope of the API the request was for when its path is known.
 */
import { STATUS_CODES, type IncomingMessage, type ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors.ts';
import { renderErrorFor } from './anthropic/anthropic-errors.ts';

/** The documented header limit (errors.md: 431 over 64 KiB). */
export const HEADER_LIMIT_BYTES = 64 * 1024;

/**
 * Headers up to 64 KiB: `Authorization: Bearer T1,T2,…` with dozens of refresh tokens passes Node's default
 * 16 KiB. `requestTimeout` bounds how long the whole request (headers and body) may take to arrive, so a client
 * that stops sending mid-body does not hold a connection for ever; the answer, once the request has arrived,
 * is not limited by it. Node itself parses up to twice the limit: its own refusal comes before the request line is
 * handed over, so it cannot tell /v1/messages from the OpenAI routes; the app refuses 64 KiB to 128 KiB (see
 * refuseOversizedHeaders) where it knows the path.
 */
export function serverOptions(requestTimeoutMs: number): ServerOptions {
  return {
    keepAliveTimeout: 65_000,
    headersTimeout: Math.min(30_000, requestTimeoutMs),
    requestTimeout: requestTimeoutMs,
    // Node checks the two timeouts on this interval (default 30 s): a short timeout needs a shorter check.
    connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(requestTimeoutMs / 4))),
    maxHeaderSize: 2 * HEADER_LIMIT_BYTES,
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

/** Throws the 431 refusal when the request line and headers exceed the limit, counted as Node counts them (field and value bytes). */
export function refuseOversizedHeaders(request: IncomingMessage): void {
  // Node decodes header bytes as latin1, so string length is byte length.
  let bytes = request.url?.length ?? 0;
  for (const entry of request.rawHeaders) bytes += entry.length;
  if (bytes > HEADER_LIMIT_BYTES) throw refusalOf('HPE_HEADER_OVERFLOW');
}

/** The server's `clientError` listener: answers with an envelope when the socket can still take one, then closes it. */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A reset or a half-sent answer leaves nothing to say: the client is gone or already reading a response.
  const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean; req?: { url?: string } } })._httpMessage;
  const isAnswering = pending?.headersSent === true;
  if (error.code === 'ECONNRESET' || !socket.writable || isAnswering) {
    socket.destroy();
    return;
  }
  // A request whose headers arrived (a stalled body) has its route's envelope; before that, the path is unknown.
  const refusal = renderErrorFor(pending?.req?.url ?? '', refusalOf(error.code));
  const body = JSON.stringify(refusal.body);
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}
