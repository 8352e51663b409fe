/**
 * @module doctor/wire-fixture
 * Turns a captured exchange into a fixture a user can attach to a bug report: bodies decoded (Connect frames,
 * JSON, SSE text) and every token, cookie, JWT and account identifier redacted. Redaction happens here, where
 * fixtures are made, so no recorder can ever see a secret (style.md habit 11).
 */
import { ConnectFrameDecoder } from '../upstream/connect/connect-framing.ts';
import type { WireExchange } from './wire-tap.ts';

export interface WireFixture {
  step: string;
  /** Account id (a hash) or host. */
  target: string;
  request: { method: string; url: string; headers: Record<string, string>; body?: unknown };
  response?: { status: number; headers: Record<string, string>; body?: unknown; isTruncated?: boolean };
  error?: string;
}

/** Values to replace wherever they appear (tokens the doctor handled, identity claims), with their label. */
export type SecretValues = ReadonlyMap<string, string>;

const secretHeaders = new Set(['authorization', 'cookie', 'set-cookie', 'x-msh-device-id', 'x-msh-session-id', 'x-traffic-id', 'x-msh-shield-data', 'proxy-authorization']);
const secretKey = /token|secret|password|cookie|authorization|credential|^sig$|nickname|avatar|phone|email|mobile/i;
/** Anything that starts like a base64url JSON object: every JWT, and its fragments. */
const jwtLike = /eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}/g;

export function fixtureFromExchange(exchange: WireExchange, secrets: SecretValues): WireFixture {
  const fixture: WireFixture = {
    step: exchange.step,
    target: exchange.target,
    request: {
      method: exchange.method,
      url: redactUrl(exchange.url),
      headers: redactHeaders(exchange.requestHeaders),
      ...(exchange.requestBody ? { body: decodeBody(exchange.requestBody, contentTypeOf(exchange.requestHeaders)) } : {}),
    },
  };
  if (exchange.status !== undefined) {
    const headers = redactHeaders(exchange.responseHeaders ?? {});
    fixture.response = {
      status: exchange.status,
      headers,
      ...(exchange.responseBody.length > 0 ? { body: decodeBody(exchange.responseBody, contentTypeOf(headers)) } : {}),
      ...(exchange.isTruncated ? { isTruncated: true } : {}),
    };
  }
  if (exchange.error) fixture.error = exchange.error;
  // A second pass over the whole text catches a secret in any place the structural pass did not know.
  return JSON.parse(redactText(JSON.stringify(fixture), secrets)) as WireFixture;
}

/** Replaces the known secret values and anything JWT-shaped. */
export function redactText(text: string, secrets: SecretValues): string {
  let result = text;
  for (const [value, label] of [...secrets].sort((a, b) => b[0].length - a[0].length)) {
    if (value.length >= 6) result = result.split(value).join(label);
  }
  return result.replace(jwtLike, '[jwt]');
}

function redactHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(', ') : String(raw);
    const lower = name.toLowerCase();
    if (!secretHeaders.has(lower)) result[lower] = value;
    else if (lower === 'authorization') result[lower] = value.replace(/^(\w+)\s.*$/, '$1 [redacted]');
    else if (lower === 'cookie' || lower === 'set-cookie') result[lower] = value.replace(/=([^;,]*)/g, '=[redacted]');
    else result[lower] = '[redacted]';
  }
  return result;
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, '[redacted]');
    return parsed.toString().replace(/%5Bredacted%5D/g, '[redacted]');
  } catch {
    return '[unparsable url]';
  }
}

function contentTypeOf(headers: Record<string, string | string[] | undefined>): string {
  const raw = headers['content-type'] ?? headers['Content-Type'];
  return (Array.isArray(raw) ? raw[0] : (raw ?? '')).toLowerCase();
}

/** Connect streams as a list of frames, JSON as JSON, text as text; binary as its size only. */
function decodeBody(bytes: Uint8Array, contentType: string): unknown {
  if (contentType.includes('connect+json')) return decodeFrames(bytes);
  const text = Buffer.from(bytes).toString('utf8');
  if (text.includes('\uFFFD') && !contentType.includes('text') && !contentType.includes('json')) return `<${bytes.length} bytes>`;
  try {
    return redactJson(JSON.parse(text));
  } catch {
    return text.length > 64 * 1024 ? `${text.slice(0, 64 * 1024)}…` : text;
  }
}

function decodeFrames(bytes: Uint8Array): unknown {
  const decoder = new ConnectFrameDecoder();
  try {
    const frames = decoder.push(bytes).map((frame) => {
      const text = Buffer.from(frame.payload).toString('utf8');
      let json: unknown;
      try {
        json = redactJson(JSON.parse(text));
      } catch {
        json = { notJson: text };
      }
      return { flag: frame.isEndStream ? 'end-stream' : 'data', json };
    });
    return decoder.bufferedBytes > 0 ? { frames, incompleteTailBytes: decoder.bufferedBytes } : { frames };
  } catch (error) {
    return { undecodable: error instanceof Error ? error.message : String(error), bytes: bytes.length };
  }
}

/** Values under secret-sounding keys (`refresh_token`, `accessToken`, …) are replaced, whatever they look like. */
export function redactJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactJson);
  if (value === null || typeof value !== 'object') return value;
  const result: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    result[key] = secretKey.test(key) && typeof child === 'string' && child !== '' ? '[redacted]' : redactJson(child);
  }
  return result;
}
