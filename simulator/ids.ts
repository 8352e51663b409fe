/**
 * @module simulator/ids
 * Identifier generators in the shapes Kimi uses on the wire (protocol spec §2.3, §3.4, §3.14):
 * 20-char xid strings, UUID-shaped chat/message ids and 19-digit decimal device/session ids.
 */
import { randomBytes, randomInt } from 'node:crypto';

const BASE32_HEX = '0123456789abcdefghijklmnopqrstuv';

/** A 20-character xid (4 bytes of time + 8 random bytes, base32hex lowercase), like `d5ig6pin7541vtcbh9t0`. */
export function newXid(nowMs: number = Date.now()): string {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(Math.floor(nowMs / 1000) >>> 0, 0);
  randomBytes(8).copy(bytes, 4);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_HEX[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  // 96 bits = 19 full symbols + 1 bit left over, padded to the 20th symbol as xid does.
  if (bits > 0) out += BASE32_HEX[(value << (5 - bits)) & 31];
  return out;
}

let uuidCounter = randomInt(0, 0xfff);

/**
 * A UUID-shaped id such as `1a0a4ba7-0db2-835e-8000-09e4fa50aa86`: time-ordered prefix, a counter so ids made in
 * the same millisecond still sort, and random tail. Only the shape matters to clients (spec §1, 2026 rows).
 */
export function newUuidLikeId(nowMs: number = Date.now()): string {
  const time = Math.floor(nowMs).toString(16).padStart(12, '0').slice(-12);
  uuidCounter = (uuidCounter + 1) & 0xfff;
  const tail = randomBytes(6).toString('hex');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-8${uuidCounter.toString(16).padStart(3, '0')}-8000-${tail}`;
}

/** A 19-digit decimal string starting with `prefix` (device ids ≈ 7.0e18, session ids ≈ 1.7e18; spec §2.1). */
export function newDecimalId(prefix: string): string {
  let digits = prefix;
  while (digits.length < 19) digits += String(randomInt(0, 10));
  return digits;
}

export const UUID_LIKE_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const XID_PATTERN = /^[0-9a-v]{20}$/;
