/**
 * @module simulator/connect-framing
 * The simulator's own Connect envelope code (spec §3.2): 1 flag byte + 4-byte big-endian length + JSON.
 * Independent of the gateway's decoder on purpose.
 */

export const FLAG_DATA = 0x00;
export const FLAG_END_STREAM = 0x02;

export function encodeEnvelope(flags: number, payload: string | Uint8Array): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

export function encodeJsonEnvelope(flags: number, value: unknown): Buffer {
  return encodeEnvelope(flags, JSON.stringify(value));
}

export type SingleEnvelopeResult = { ok: true; json: string } | { ok: false; reason: string };

/**
 * Decodes a request body that must be exactly one uncompressed data envelope. A bare JSON body fails here,
 * which is how the real server's `invalid_argument` for missing envelopes arises (spec §3.2, §3.12).
 */
export function decodeSingleEnvelope(body: Buffer): SingleEnvelopeResult {
  if (body.length < 5) return { ok: false, reason: 'request body is shorter than an envelope header' };
  const flags = body.readUInt8(0);
  if (flags !== FLAG_DATA) return { ok: false, reason: `unexpected envelope flags 0x${flags.toString(16).padStart(2, '0')}` };
  const length = body.readUInt32BE(1);
  if (length !== body.length - 5) return { ok: false, reason: 'envelope length does not match the body' };
  return { ok: true, json: body.subarray(5).toString('utf8') };
}
