/**
 * @module doctor/wire-tap
 * An `UpstreamHttp` that passes every call to the real one and keeps a copy of the exchange (request, status,
 * headers and the response bytes as the dialect reads them), labelled with the doctor step that made it. The
 * doctor checks these copies strictly and records them (redacted) as fixtures.
 */
import { Readable } from 'node:stream';
import type { UpstreamHttp, UpstreamRequest, UpstreamResponse } from '../upstream/upstream-http.ts';

/** Response bytes kept per exchange; a larger answer is kept truncated (the doctor's answers are tiny). */
const maxCapturedBytes = 2 * 1024 * 1024;

export interface WireExchange {
  step: string;
  target: string;
  method: string;
  url: string;
  requestHeaders: Record<string, string>;
  /** The request body when it was text or bytes; undefined for none or a streamed upload. */
  requestBody?: Uint8Array;
  status?: number;
  responseHeaders?: UpstreamResponse['headers'];
  /** The response bytes the caller consumed (all of them unless it left early). */
  responseBody: Buffer;
  isTruncated: boolean;
  /** The transport error, when the request failed before an answer. */
  error?: string;
  startedAt: number;
}

export interface WireTap {
  readonly http: UpstreamHttp;
  readonly exchanges: readonly WireExchange[];
  /** Labels the exchanges made from now on. */
  setStep(step: string, target: string): void;
}

export function createWireTap(inner: UpstreamHttp): WireTap {
  const exchanges: WireExchange[] = [];
  let label = { step: 'start', target: '' };

  async function send(request: UpstreamRequest): Promise<UpstreamResponse> {
    const exchange: WireExchange = {
      ...label,
      method: request.method ?? 'GET',
      url: request.url,
      requestHeaders: { ...request.headers },
      requestBody: typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : request.body instanceof Uint8Array ? request.body : undefined,
      responseBody: Buffer.alloc(0),
      isTruncated: false,
      startedAt: Date.now(),
    };
    exchanges.push(exchange);
    let response: UpstreamResponse;
    try {
      response = await inner.send(request);
    } catch (error) {
      exchange.error = error instanceof Error ? error.message : String(error);
      throw error;
    }
    exchange.status = response.statusCode;
    exchange.responseHeaders = response.headers;
    return { ...response, body: tapBody(response.body, exchange) };
  }

  return {
    http: { send, options: inner.options, close: () => inner.close() },
    exchanges,
    setStep(step, target) {
      label = { step, target };
    },
  };
}

/**
 * The same bytes, copied as they pass. Leaving early or destroying the copy destroys the original, so the
 * dialect's clean-up still frees the connection.
 */
function tapBody(body: UpstreamResponse['body'], exchange: WireExchange): UpstreamResponse['body'] {
  const chunks: Buffer[] = [];
  let kept = 0;
  async function* copy(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of body) {
        const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        if (kept < maxCapturedBytes) {
          chunks.push(buffer.subarray(0, maxCapturedBytes - kept));
          kept += Math.min(buffer.length, maxCapturedBytes - kept);
          if (kept >= maxCapturedBytes) exchange.isTruncated = true;
        }
        exchange.responseBody = Buffer.concat(chunks);
        yield buffer;
      }
    } finally {
      if (!body.readableEnded) body.destroy();
    }
  }
  const readable = Readable.from(copy(), { objectMode: false });
  // The dialects use these BodyReadable helpers besides async iteration.
  const helpers = {
    dump: async () => {
      for await (const _chunk of readable) {
        // discard
      }
    },
    text: async () => {
      const parts: Buffer[] = [];
      for await (const chunk of readable) parts.push(chunk as Buffer);
      return Buffer.concat(parts).toString('utf8');
    },
  };
  return Object.assign(readable, helpers, { json: async () => JSON.parse(await helpers.text()) as unknown }) as unknown as UpstreamResponse['body'];
}
