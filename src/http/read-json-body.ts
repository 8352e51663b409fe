/**
 * @module http/read-json-body
 * Reads a JSON request body with a byte limit enforced while reading, a content-type check and a
 * strict UTF-8 decode, so bad input becomes a 400/413/415 envelope and never a crash.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError, InvalidRequestError } from '../errors.ts';

export async function readJsonBody(request: IncomingMessage, limitBytes: number): Promise<unknown> {
  const contentType = String(request.headers['content-type'] ?? '').toLowerCase();
  if (!contentType.includes('application/json') && !contentType.includes('+json')) {
    throw new GatewayError({ status: 415, type: 'invalid_request_error', code: 'unsupported_media_type', message: `Send the body as JSON with "Content-Type: application/json" (got "${contentType.slice(0, 60) || 'none'}").` });
  }
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw tooLarge(limitBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request) {
    total += (chunk as Buffer).length;
    if (total > limitBytes) {
      request.resume();
      throw tooLarge(limitBytes);
    }
    chunks.push(chunk as Buffer);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new InvalidRequestError('The request body is not valid UTF-8.', { code: 'invalid_json' });
  }
  if (!text.trim()) throw new InvalidRequestError('The request body is empty; send a JSON object.', { code: 'invalid_json' });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidRequestError(`The request body is not valid JSON: ${(error as Error).message}`, { code: 'invalid_json' });
  }
}

function tooLarge(limitBytes: number): GatewayError {
  return new GatewayError({ status: 413, type: 'invalid_request_error', code: 'request_too_large', message: `The request body is larger than the ${limitBytes}-byte limit (BODY_LIMIT_BYTES).` });
}
