/**
 * @module upstream/connect/connect-stream
 * One `ChatService/Chat` call as an async iterable of `ChatEvent` batches (protocol spec §3.2, §3.5, §3.6):
 * sends one envelope, decodes frames from the byte stream as they arrive (one batch per read), and applies
 * the end-of-stream rules. Leaving the loop early destroys the upstream body.
 */
import { UpstreamError, type GatewayError } from '../../errors.ts';
import type { ChatEvent, ChatEventBatch, KimiPrompt, Session, StreamReplyOptions } from '../dialect.ts';
import { createProgressDeadline, describeBody, headerText, parseJsonSafely, readBodyRuns, type UpstreamResponse } from '../upstream-http.ts';
import { connectHeaders, type ConnectSettings } from './connect-auth.ts';
import { buildChatRequest } from './connect-chat-request.ts';
import { errorFromResponse, gatewayErrorFromConnect, parseConnectError, redact, type ConnectErrorContext } from './connect-errors.ts';
import { initialStreamState, mapConnectFrame, mapEndOfStream, type MapperOptions, type UnknownReport } from './connect-events.ts';
import { ConnectFrameDecoder, encodeEnvelope, type ConnectFrame } from './connect-framing.ts';
import { errorContext } from './connect-rpc.ts';

const chatPath = '/apiv2/kimi.gateway.chat.v1.ChatService/Chat';
/** How much of a body that is not a stream is read to describe it. */
const maxNotAStreamBytes = 64 * 1024;

export interface StreamExtras {
  maxFrameBytes: number;
  report: (unknown: UnknownReport) => void;
}

export async function* streamChat(
  settings: ConnectSettings,
  session: Session,
  prompt: KimiPrompt,
  replyOptions: StreamReplyOptions,
  signal: AbortSignal,
  extras: StreamExtras,
): AsyncGenerator<ChatEventBatch, void, undefined> {
  const url = `${settings.baseUrl}${chatPath}`;
  const context = { ...errorContext(settings, { operation: 'chat', conversationId: prompt.conversation?.id }), path: chatPath };
  const response = await settings.http.send({
    url,
    method: 'POST',
    headers: { ...connectHeaders(settings, session.identity, session.accessToken), 'content-type': 'application/connect+json' },
    body: encodeEnvelope(JSON.stringify(buildChatRequest(prompt))),
    signal,
  });
  try {
    if (response.statusCode < 200 || response.statusCode >= 300) throw await errorFromResponse(response, context);
    const contentType = headerText(response.headers['content-type']);
    if (!contentType.toLowerCase().startsWith('application/connect+json')) throw await notAStream(response, url, contentType, context);

    const options: MapperOptions = { citations: replyOptions.citations, defaultRetryAfterMs: settings.defaultRetryAfterMs, busyRetryAfterMs: settings.busyRetryAfterMs };
    const decoder = new ConnectFrameDecoder(extras.maxFrameBytes);
    const utf8 = new TextDecoder('utf-8');
    let state = initialStreamState();
    let end: { sawEndFrame: true; payload: unknown } | { sawEndFrame: false } = { sawEndFrame: false };
    const deadline = createProgressDeadline(settings.http.options, url);
    reading: for await (const run of bodyRuns(response, url)) {
      const batch: ChatEvent[] = [];
      const frames: ConnectFrame[] = [];
      let unreadableHeader: unknown;
      try {
        for (const chunk of run) decoder.decode(chunk, frames);
      } catch (error) {
        unreadableHeader = error;
      }
      // What this run carried reaches the client even when a later frame in it fails or ends the stream.
      let failure: GatewayError | undefined;
      for (const frame of frames) {
        // Frames are complete here, so decoding never splits a UTF-8 sequence.
        const payload = frame.payload.length === 0 ? {} : parseJsonSafely(utf8.decode(frame.payload));
        if (payload === undefined) {
          failure = new UpstreamError('Kimi sent a stream frame that is not JSON.', { isRetryable: true });
          break;
        }
        if (frame.isEndStream) {
          end = { sawEndFrame: true, payload };
          break;
        }
        const result = mapConnectFrame(state, payload, options);
        state = result.state;
        for (const unknown of result.unknowns) extras.report(unknown);
        for (const event of result.events) batch.push(event);
        if (result.error) {
          failure = result.error;
          break;
        }
      }
      // A frame header that cannot be read (compressed, unknown flags, too large) ends the stream after the frames before it.
      if (unreadableHeader !== undefined && !failure && !end.sawEndFrame) failure = unreadableHeader as GatewayError;
      if (batch.length > 0) {
        yield batch;
        deadline.progressed();
      }
      if (failure) throw failure;
      if (end.sawEndFrame) break reading;
      if (batch.length === 0) deadline.check();
    }
    if (!end.sawEndFrame && decoder.bufferedBytes > 0) {
      throw new UpstreamError('Kimi\'s answer stream broke off in the middle of a frame.', { isRetryable: true });
    }
    const finish = mapEndOfStream(state, end, options);
    if (finish.events.length > 0) yield finish.events;
    if (finish.error) throw finish.error;
  } finally {
    // Consumer gone, error or end frame: release the connection now rather than at garbage collection.
    if (!response.body.readableEnded) response.body.destroy();
  }
}

/** The body's chunks, all those already received at a time, with socket failures and idle timeouts mapped to gateway errors. */
function bodyRuns(response: UpstreamResponse, url: string): AsyncGenerator<Uint8Array[]> {
  return readBodyRuns(response.body, url);
}

/**
 * A 200 that is not a Connect stream: a unary-style Connect error, an HTML page from a proxy, or Connect frames under
 * another content type. Read as bytes so that a binary body is measured (never quoted: it would put NUL bytes and the
 * account's chat ids into the client's error) with its exact size.
 */
async function notAStream(response: UpstreamResponse, url: string, contentType: string, context: ConnectErrorContext): Promise<GatewayError> {
  const body = await readBodyBytes(response, url);
  const info = parseConnectError(parseJsonSafely(Buffer.from(body).toString('utf8')));
  if (info) return gatewayErrorFromConnect(info, context);
  const snippet = redact(describeBody(body, contentType));
  const shownType = contentType.replace(/[^\w./+;= -]/g, '').slice(0, 80);
  return new UpstreamError(
    `Kimi answered the chat with ${shownType || 'no content type'} instead of a Connect stream${snippet ? `: ${snippet}` : ''}.`,
    { isRetryable: true },
  );
}

/** The body's first bytes (bounded: an answer under the wrong content type may be a whole stream). */
async function readBodyBytes(response: UpstreamResponse, url: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const run of readBodyRuns(response.body, url)) {
    for (const chunk of run) {
      chunks.push(chunk.subarray(0, maxNotAStreamBytes - total));
      total = Math.min(maxNotAStreamBytes, total + chunk.byteLength);
    }
    if (total >= maxNotAStreamBytes) break;
  }
  return Buffer.concat(chunks);
}
