/**
 * @module doctor/wire-shapes
 * Small readers over captured exchanges shared by the strict checks: which exchange hit which RPC, its JSON,
 * its Connect frames, and a one-line summary of an HTTP answer ("HTTP 404 unimplemented: no route …").
 */
import { ConnectFrameDecoder } from '../upstream/connect/connect-framing.ts';
import { describeBody, parseJsonSafely } from '../upstream/upstream-http.ts';
import { redactText } from './wire-fixture.ts';
import type { WireExchange } from './wire-tap.ts';
import { isPlainObject } from '../plain-object.ts';

export interface DecodedFrames {
  data: unknown[];
  end?: unknown;
  hasEndFrame: boolean;
  /** Bytes after the last whole frame, or the decoder's complaint. */
  problem?: string;
}

export function exchangeTo(exchanges: readonly WireExchange[], pathSuffix: string | RegExp): WireExchange | undefined {
  return exchanges.findLast((exchange) => {
    const path = pathOf(exchange.url);
    return typeof pathSuffix === 'string' ? path.endsWith(pathSuffix) : pathSuffix.test(path);
  });
}

export function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

export function jsonOf(exchange: WireExchange): unknown {
  return parseJsonSafely(exchange.responseBody.toString('utf8'));
}

export function contentType(exchange: WireExchange): string {
  const raw = exchange.responseHeaders?.['content-type'];
  return (Array.isArray(raw) ? raw[0] : (raw ?? '')).toLowerCase();
}

export function decodeFrames(body: Buffer): DecodedFrames {
  const decoder = new ConnectFrameDecoder();
  const result: DecodedFrames = { data: [], hasEndFrame: false };
  try {
    for (const frame of decoder.push(body)) {
      const json = parseJsonSafely(Buffer.from(frame.payload).toString('utf8'));
      if (frame.isEndStream) {
        result.hasEndFrame = true;
        result.end = json;
      } else result.data.push(json);
    }
    if (decoder.bufferedBytes > 0) result.problem = `${decoder.bufferedBytes} bytes of an incomplete frame at the end`;
  } catch (error) {
    result.problem = error instanceof Error ? error.message : String(error);
  }
  return result;
}

/** "HTTP 404 unimplemented: no route for POST /apiv2/…" — status, Connect code and message, redacted, short. */
export function describeAnswer(exchange: WireExchange): string {
  if (exchange.error) return `no answer (${exchange.error})`;
  const json = jsonOf(exchange);
  const code = isPlainObject(json) ? (json.code ?? json.error_type) : undefined;
  const message = isPlainObject(json) ? (json.message ?? json.msg) : undefined;
  let said = [code, message].filter((part) => typeof part === 'string' && part).join(': ');
  if (!said && exchange.responseBody.length > 0) said = exchange.responseBody.toString('utf8').replace(/\s+/g, ' ').trim();
  const summary = `HTTP ${exchange.status}${said ? ` ${said}` : ''}`;
  return redactText(summary.length > 160 ? `${summary.slice(0, 157)}…` : summary, new Map());
}

/** Object-valued keys of a JSON object, as a short list for "got fields [...]". */
export function keysOf(value: unknown): string {
  return isPlainObject(value) ? `[${Object.keys(value).join(', ')}]` : JSON.stringify(value)?.slice(0, 60) ?? 'nothing';
}

/** "an HTML page ("Kimi app")" for a body that is not JSON (a front end's page at an API path), redacted. */
export function describeNonJson(exchange: WireExchange): string {
  const said = describeBody(exchange.responseBody.toString('utf8'), contentType(exchange));
  return redactText(said || 'an empty body', new Map());
}
